//! The LZ4 frame format (lz4 "Frame format" spec v1.6) as Kafka uses it,
//! built on lz4_flex's block codec, plus the XXH32 hash the frame needs.
//!
//! We parse frames ourselves because Kafka's magic 0 messages carry a
//! header checksum computed over the frame magic as well as the descriptor
//! (KAFKA-3160; KIP-57 fixed it from magic 1 on). Decoding accepts either
//! checksum for any magic; encoding writes the broken one only on request.

use super::compression::{Budget, CodecError};

const FRAME_MAGIC: u32 = 0x184D_2204;
/// Skippable frames use magics 0x184D2A50..=0x184D2A5F.
const SKIPPABLE_MASK: u32 = 0xFFFF_FFF0;
const SKIPPABLE_MAGIC: u32 = 0x184D_2A50;
/// Linked blocks may refer back this far into earlier output.
const WINDOW: usize = 64 * 1024;
/// No LZ4 sequence expands more than this (a 1-byte token of a max-length
/// match costs a byte per 255 output bytes); used to refuse absurd blocks
/// before allocating for them.
const MAX_RATIO: usize = 255;

// ---- XXH32 ----------------------------------------------------------------

const P1: u32 = 2_654_435_761;
const P2: u32 = 2_246_822_519;
const P3: u32 = 3_266_489_917;
const P4: u32 = 668_265_263;
const P5: u32 = 374_761_393;

#[inline]
fn lane(acc: u32, input: u32) -> u32 {
    acc.wrapping_add(input.wrapping_mul(P2))
        .rotate_left(13)
        .wrapping_mul(P1)
}

fn le32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    for (dst, src) in a.iter_mut().zip(b) {
        *dst = *src;
    }
    u32::from_le_bytes(a)
}

/// XXH32 of `data` with `seed`, as the LZ4 frame format specifies it.
pub fn xxh32(data: &[u8], seed: u32) -> u32 {
    let mut stripes = data.chunks_exact(16);
    let mut h = if data.len() >= 16 {
        let mut v = [
            seed.wrapping_add(P1).wrapping_add(P2),
            seed.wrapping_add(P2),
            seed,
            seed.wrapping_sub(P1),
        ];
        for stripe in &mut stripes {
            for (acc, word) in v.iter_mut().zip(stripe.chunks_exact(4)) {
                *acc = lane(*acc, le32(word));
            }
        }
        v[0].rotate_left(1)
            .wrapping_add(v[1].rotate_left(7))
            .wrapping_add(v[2].rotate_left(12))
            .wrapping_add(v[3].rotate_left(18))
    } else {
        seed.wrapping_add(P5)
    };
    // The spec adds the length modulo 2^32.
    h = h.wrapping_add(data.len() as u32);
    let tail = stripes.remainder();
    let mut words = tail.chunks_exact(4);
    for word in &mut words {
        h = h
            .wrapping_add(le32(word).wrapping_mul(P3))
            .rotate_left(17)
            .wrapping_mul(P4);
    }
    for &b in words.remainder() {
        h = h
            .wrapping_add(u32::from(b).wrapping_mul(P5))
            .rotate_left(11)
            .wrapping_mul(P1);
    }
    h ^= h >> 15;
    h = h.wrapping_mul(P2);
    h ^= h >> 13;
    h = h.wrapping_mul(P3);
    h ^ (h >> 16)
}

/// The header checksum byte: second byte of XXH32 over the descriptor.
fn header_checksum(bytes: &[u8]) -> u8 {
    (xxh32(bytes, 0) >> 8).to_le_bytes()[0]
}

// ---- decoding ---------------------------------------------------------------

fn corrupt(at: usize, what: impl std::fmt::Display) -> CodecError {
    CodecError::Corrupt(format!("lz4 frame at byte {at}: {what}"))
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], CodecError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        match end.and_then(|e| self.buf.get(self.pos..e).map(|s| (e, s))) {
            Some((e, s)) => {
                self.pos = e;
                Ok(s)
            }
            None => Err(corrupt(
                self.pos,
                format_args!("{what} needs {n} bytes, {} left", self.buf.len() - self.pos),
            )),
        }
    }

    fn u32le(&mut self, what: &str) -> Result<u32, CodecError> {
        self.take(4, what).map(le32)
    }
}

/// Decompresses one or more concatenated LZ4 frames (skippable frames are
/// skipped). Output is charged to `budget` block by block.
pub fn decompress(input: &[u8], budget: &mut Budget) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::new();
    let mut r = Reader { buf: input, pos: 0 };
    if input.is_empty() {
        return Err(corrupt(0, "empty payload"));
    }
    while r.pos < input.len() {
        let frame_start = r.pos;
        let magic = r.u32le("magic")?;
        if magic & SKIPPABLE_MASK == SKIPPABLE_MAGIC {
            let len = r.u32le("skippable frame size")?;
            r.take(
                usize::try_from(len).unwrap_or(usize::MAX),
                "skippable frame",
            )?;
            continue;
        }
        if magic != FRAME_MAGIC {
            return Err(corrupt(
                frame_start,
                format_args!("bad magic {magic:#010x}"),
            ));
        }
        decode_frame(&mut r, frame_start, &mut out, budget)?;
    }
    Ok(out)
}

fn decode_frame(
    r: &mut Reader<'_>,
    frame_start: usize,
    out: &mut Vec<u8>,
    budget: &mut Budget,
) -> Result<(), CodecError> {
    let desc_start = r.pos;
    let flg = r.take(1, "FLG")?.first().copied().unwrap_or(0);
    let bd = r.take(1, "BD")?.first().copied().unwrap_or(0);
    if flg >> 6 != 1 {
        return Err(corrupt(
            desc_start,
            format_args!("unsupported frame version {}", flg >> 6),
        ));
    }
    let independent = flg & 0x20 != 0;
    let block_checksum = flg & 0x10 != 0;
    let content_size = flg & 0x08 != 0;
    let content_checksum = flg & 0x04 != 0;
    let dict_id = flg & 0x01 != 0;
    let block_max = match (bd >> 4) & 0x07 {
        4 => 64 * 1024,
        5 => 256 * 1024,
        6 => 1024 * 1024,
        7 => 4 * 1024 * 1024,
        other => {
            return Err(corrupt(
                desc_start + 1,
                format_args!("invalid block maximum size code {other}"),
            ))
        }
    };
    let mut declared_size = None;
    if content_size {
        let b = r.take(8, "content size")?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        declared_size = Some(u64::from_le_bytes(a));
    }
    if dict_id {
        r.take(4, "dictionary id")?;
    }
    let hc_at = r.pos;
    let hc = r.take(1, "header checksum")?.first().copied().unwrap_or(0);
    let descriptor = r.buf.get(desc_start..hc_at).unwrap_or_default();
    let with_magic = r.buf.get(frame_start..hc_at).unwrap_or_default();
    if hc != header_checksum(descriptor) && hc != header_checksum(with_magic) {
        return Err(corrupt(
            hc_at,
            format_args!(
                "header checksum {hc:#04x} matches neither {:#04x} (spec) nor {:#04x} (Kafka magic 0)",
                header_checksum(descriptor),
                header_checksum(with_magic)
            ),
        ));
    }

    let frame_out_start = out.len();
    loop {
        let block_at = r.pos;
        let word = r.u32le("block size")?;
        if word == 0 {
            break; // EndMark
        }
        let stored = word & 0x8000_0000 != 0;
        let size = usize::try_from(word & 0x7FFF_FFFF).unwrap_or(usize::MAX);
        if size > block_max {
            return Err(corrupt(
                block_at,
                format_args!("block of {size} bytes exceeds the frame's maximum {block_max}"),
            ));
        }
        let data = r.take(size, "block data")?;
        if block_checksum {
            let want = r.u32le("block checksum")?;
            let got = xxh32(data, 0);
            if want != got {
                return Err(corrupt(
                    block_at,
                    format_args!("block checksum {want:#010x}, computed {got:#010x}"),
                ));
            }
        }
        if stored {
            budget.charge(data.len())?;
            out.extend_from_slice(data);
            continue;
        }
        // Room for the block's output: never more than the frame allows,
        // the data could produce, or the budget has left.
        let room = block_max
            .min(size.saturating_mul(MAX_RATIO).saturating_add(16))
            .min(budget.remaining().saturating_add(1));
        let before = out.len();
        out.resize(before + room, 0);
        let (prev, dst) = out.split_at_mut(before);
        let result = if independent {
            lz4_flex::block::decompress_into(data, dst)
        } else {
            // Linked blocks may copy from the last 64 KiB of this frame.
            let frame_prev = prev.get(frame_out_start..).unwrap_or_default();
            let dict = frame_prev
                .get(frame_prev.len().saturating_sub(WINDOW)..)
                .unwrap_or_default();
            lz4_flex::block::decompress_into_with_dict(data, dst, dict)
        };
        match result {
            Ok(n) => {
                out.truncate(before + n);
                budget.charge(n)?;
            }
            Err(lz4_flex::block::DecompressError::OutputTooSmall { .. })
                if room > budget.remaining() =>
            {
                out.truncate(before);
                return Err(budget.exceeded());
            }
            Err(e) => {
                out.truncate(before);
                return Err(corrupt(block_at, format_args!("block: {e}")));
            }
        }
    }
    if content_checksum {
        let at = r.pos;
        let want = r.u32le("content checksum")?;
        let got = xxh32(out.get(frame_out_start..).unwrap_or_default(), 0);
        if want != got {
            return Err(corrupt(
                at,
                format_args!("content checksum {want:#010x}, computed {got:#010x}"),
            ));
        }
    }
    if let Some(declared) = declared_size {
        let got = (out.len() - frame_out_start) as u64;
        if declared != got {
            return Err(corrupt(
                desc_start,
                format_args!("content size says {declared} bytes, frame holds {got}"),
            ));
        }
    }
    Ok(())
}

// ---- encoding ---------------------------------------------------------------

/// Encodes `data` as one LZ4 frame the way Kafka's Java client does:
/// independent 64 KiB blocks, no block or content checksums. With
/// `broken_checksum` the header checksum also covers the frame magic, as
/// magic 0 messages require.
pub fn compress(data: &[u8], broken_checksum: bool) -> Vec<u8> {
    const BLOCK: usize = 64 * 1024;
    let mut out = Vec::with_capacity(data.len() / 2 + 16);
    out.extend_from_slice(&FRAME_MAGIC.to_le_bytes());
    // FLG: version 01, block independence; BD: 64 KiB maximum block size.
    out.extend_from_slice(&[0x60, 0x40]);
    let hc = if broken_checksum {
        header_checksum(&out)
    } else {
        header_checksum(out.get(4..).unwrap_or_default())
    };
    out.push(hc);
    for chunk in data.chunks(BLOCK) {
        let packed = lz4_flex::block::compress(chunk);
        if packed.len() < chunk.len() {
            out.extend_from_slice(&(packed.len() as u32).to_le_bytes());
            out.extend_from_slice(&packed);
        } else {
            // Incompressible: store the block with the high bit set.
            out.extend_from_slice(&(chunk.len() as u32 | 0x8000_0000).to_le_bytes());
            out.extend_from_slice(chunk);
        }
    }
    out.extend_from_slice(&0u32.to_le_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xxh32_matches_reference_vectors() {
        assert_eq!(xxh32(b"", 0), 0x02CC_5D05);
        assert_eq!(xxh32(b"a", 0), 0x550D_7456);
        assert_eq!(xxh32(b"abc", 0), 0x32D1_53FF);
        assert_eq!(
            xxh32(b"Nobody inspects the spammish repetition", 0),
            0xE229_3B2F
        );
    }

    #[test]
    fn header_checksum_matches_lz4_cli_frames() {
        // `lz4` CLI frames start 04 22 4D 18 64 40 A7 (content checksum on).
        assert_eq!(header_checksum(&[0x64, 0x40]), 0xA7);
    }

    fn budget() -> Budget {
        Budget::new(1 << 30)
    }

    #[test]
    fn frame_round_trips_with_both_checksums() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        for broken in [false, true] {
            let frame = compress(&data, broken);
            assert_eq!(decompress(&frame, &mut budget()).unwrap(), data);
        }
    }

    #[test]
    fn broken_checksum_differs_from_spec_checksum() {
        let good = compress(b"x", false);
        let broken = compress(b"x", true);
        assert_ne!(good[6], broken[6]);
        let mut bad = good.clone();
        bad[6] ^= 0xff;
        assert!(decompress(&bad, &mut budget()).is_err());
    }

    #[test]
    fn incompressible_block_is_stored() {
        let data: Vec<u8> = (0..1000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect();
        let frame = compress(&data, false);
        assert_eq!(decompress(&frame, &mut budget()).unwrap(), data);
    }

    #[test]
    fn linked_blocks_use_earlier_output_as_dictionary() {
        // Hand-built frame: FLG 0x40 (linked blocks), two blocks, where the
        // second is a single match reaching back into the first.
        let mut f = FRAME_MAGIC.to_le_bytes().to_vec();
        f.extend_from_slice(&[0x40, 0x40]);
        f.push(header_checksum(&[0x40, 0x40]));
        // Block 1: literals "abcdefgh" (token 0x80, no match).
        let b1 = [0x80, b'a', b'b', b'c', b'd', b'e', b'f', b'g', b'h'];
        f.extend_from_slice(&(b1.len() as u32).to_le_bytes());
        f.extend_from_slice(&b1);
        // Block 2: 0 literals, match offset 8 length 4+4=8, then the
        // mandatory 5 trailing literals.
        let b2 = [0x04, 0x08, 0x00, 0x50, b'v', b'w', b'x', b'y', b'z'];
        f.extend_from_slice(&(b2.len() as u32).to_le_bytes());
        f.extend_from_slice(&b2);
        f.extend_from_slice(&0u32.to_le_bytes());
        assert_eq!(
            decompress(&f, &mut budget()).unwrap(),
            b"abcdefghabcdefghvwxyz"
        );
    }

    #[test]
    fn output_beyond_budget_is_refused() {
        let data = vec![0u8; 1 << 20];
        let frame = compress(&data, false);
        let mut small = Budget::new(100_000);
        let err = decompress(&frame, &mut small).unwrap_err();
        assert!(matches!(err, CodecError::LimitExceeded { .. }), "{err}");
    }
}
