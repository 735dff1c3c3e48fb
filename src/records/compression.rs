//! The four record compressions (gzip, snappy, lz4, zstd) in both directions,
//! with every decoder bounded by a shared [`Budget`] of decompressed bytes so a
//! small payload cannot expand without limit.
//!
//! Snappy comes in two framings: raw snappy blocks (librdkafka, Go clients)
//! and the xerial "snappy-java" stream the Java client writes (an 8-byte magic
//! `82 'SNAPPY' 00`, two int32 version fields, then int32-length-prefixed raw
//! blocks). Decoding tells them apart by the magic; encoding writes xerial,
//! as the Java client does, unless asked for raw.

use std::cell::RefCell;
use std::io::{Read, Write};

use super::lz4;

/// The compression codec in the low three attribute bits. Codes 5..=7 are
/// unassigned and kept as [`Compression::Unknown`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Compression {
    #[default]
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
    Unknown(u8),
}

impl Compression {
    pub fn from_code(code: u8) -> Compression {
        match code & 0x07 {
            0 => Compression::None,
            1 => Compression::Gzip,
            2 => Compression::Snappy,
            3 => Compression::Lz4,
            4 => Compression::Zstd,
            n => Compression::Unknown(n),
        }
    }

    pub fn code(self) -> u8 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
            Compression::Unknown(n) => n & 0x07,
        }
    }

    /// The name used in JSON and in Kafka's `compression.type` setting.
    pub fn name(self) -> Option<&'static str> {
        match self {
            Compression::None => Some("none"),
            Compression::Gzip => Some("gzip"),
            Compression::Snappy => Some("snappy"),
            Compression::Lz4 => Some("lz4"),
            Compression::Zstd => Some("zstd"),
            Compression::Unknown(_) => None,
        }
    }

    pub fn from_name(name: &str) -> Option<Compression> {
        [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ]
        .into_iter()
        .find(|c| c.name() == Some(name))
    }
}

impl std::fmt::Display for Compression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "unknown codec {}", self.code()),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("decompressed size exceeds the limit of {limit} bytes")]
    LimitExceeded { limit: usize },
    #[error("{0}")]
    Corrupt(String),
    #[error("unknown compression codec {0}")]
    Unknown(u8),
}

/// Decompressed bytes still allowed for one record set. Every decoder charges
/// what it produces, failed attempts included, so the work per record set is
/// bounded too.
#[derive(Clone, Debug)]
pub struct Budget {
    limit: usize,
    used: usize,
}

impl Budget {
    pub fn new(limit: usize) -> Budget {
        Budget { limit, used: 0 }
    }

    pub fn remaining(&self) -> usize {
        self.limit.saturating_sub(self.used)
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    pub fn charge(&mut self, n: usize) -> Result<(), CodecError> {
        self.used = self.used.saturating_add(n);
        if self.used > self.limit {
            Err(self.exceeded())
        } else {
            Ok(())
        }
    }

    pub fn exceeded(&self) -> CodecError {
        CodecError::LimitExceeded { limit: self.limit }
    }
}

/// Decompresses a whole record payload.
pub fn decompress(
    codec: Compression,
    input: &[u8],
    budget: &mut Budget,
) -> Result<Vec<u8>, CodecError> {
    match codec {
        Compression::None => {
            budget.charge(input.len())?;
            Ok(input.to_vec())
        }
        Compression::Gzip => {
            let reader = flate2::read::MultiGzDecoder::new(input);
            read_bounded(reader, input.len(), budget, "gzip")
        }
        Compression::Snappy => snappy_decompress(input, budget),
        Compression::Lz4 => lz4::decompress(input, budget),
        Compression::Zstd => ZSTD_CONTEXT.with(|cell| match cell.try_borrow_mut() {
            Ok(mut context) => zstd_decompress(input, budget, &mut context),
            // Not reentrant, so never borrowed here; were it, a context of
            // its own does the same work.
            Err(_) => zstd_decompress(input, budget, &mut None),
        }),
        Compression::Unknown(n) => Err(CodecError::Unknown(n)),
    }
}

thread_local! {
    /// One zstd decompression context per thread, reused for every batch:
    /// making one allocates and initialises its tables (about 100 KB),
    /// more work than a small batch's decompression. Each use starts a new
    /// session on it (`zstd::stream::raw::Decoder::with_context`), so
    /// nothing carries over from one batch to the next, a failed one
    /// included.
    static ZSTD_CONTEXT: RefCell<Option<zstd::zstd_safe::DCtx<'static>>> =
        const { RefCell::new(None) };
}

/// A zstd payload, decompressed with `context` (made on first use).
fn zstd_decompress(
    input: &[u8],
    budget: &mut Budget,
    context: &mut Option<zstd::zstd_safe::DCtx<'static>>,
) -> Result<Vec<u8>, CodecError> {
    let corrupt = |e: std::io::Error| CodecError::Corrupt(format!("zstd: {e}"));
    if context.is_none() {
        *context = zstd::zstd_safe::DCtx::try_create();
    }
    let Some(context) = context.as_mut() else {
        return Err(CodecError::Corrupt(
            "zstd: cannot allocate a decompression context".into(),
        ));
    };
    let mut decoder = zstd::stream::read::Decoder::with_context(input, context);
    // A frame may demand a window as large as it likes; refuse any larger
    // than the whole budget could ever fill. Set on every use: the
    // context keeps parameters across sessions.
    let log = usize::BITS - budget.limit().max(1 << 10).leading_zeros();
    decoder.window_log_max(log.clamp(10, 27)).map_err(corrupt)?;
    read_bounded(decoder, input.len(), budget, "zstd")
}

/// Reads a streaming decoder to the end, but never more than the budget
/// allows (plus one byte, to tell "exactly at the limit" from "over it").
fn read_bounded(
    reader: impl Read,
    input_len: usize,
    budget: &mut Budget,
    name: &str,
) -> Result<Vec<u8>, CodecError> {
    let allowed = budget.remaining();
    let mut out = Vec::with_capacity(input_len.saturating_mul(4).min(allowed).min(1 << 20));
    let result = reader
        .take(u64::try_from(allowed).unwrap_or(u64::MAX).saturating_add(1))
        .read_to_end(&mut out);
    budget.charge(out.len())?;
    match result {
        Ok(_) => Ok(out),
        Err(e) => Err(CodecError::Corrupt(format!("{name}: {e}"))),
    }
}

const XERIAL_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
/// The block size snappy-java's output stream uses by default.
const XERIAL_BLOCK: usize = 32 * 1024;
/// A snappy element of n input bytes never yields more than this many times
/// n output bytes (a 3-byte copy emits at most 64), so a claimed length
/// beyond it is a lie and is refused before allocating.
const SNAPPY_MAX_RATIO: usize = 22;

fn snappy_decompress(input: &[u8], budget: &mut Budget) -> Result<Vec<u8>, CodecError> {
    let Some(body) = input.strip_prefix(&XERIAL_MAGIC[..]) else {
        let mut out = Vec::new();
        snappy_block(input, 0, &mut out, budget)?;
        return Ok(out);
    };
    // Two int32 fields (version, minimum compatible version) follow.
    let mut pos = XERIAL_MAGIC.len() + 8;
    if body.len() < 8 {
        return Err(CodecError::Corrupt(format!(
            "snappy (xerial) header needs {} bytes, payload has {}",
            XERIAL_MAGIC.len() + 8,
            input.len()
        )));
    }
    let mut out = Vec::new();
    while pos < input.len() {
        let len = input
            .get(pos..pos + 4)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(i32::from_be_bytes)
            .ok_or_else(|| {
                CodecError::Corrupt(format!(
                    "snappy (xerial) block length at byte {pos} is cut short"
                ))
            })?;
        let block = usize::try_from(len)
            .ok()
            .and_then(|n| input.get(pos + 4..(pos + 4).checked_add(n)?))
            .ok_or_else(|| {
                CodecError::Corrupt(format!(
                    "snappy (xerial) block at byte {pos} claims {len} bytes, {} left",
                    input.len() - pos - 4
                ))
            })?;
        snappy_block(block, pos + 4, &mut out, budget)?;
        pos += 4 + block.len();
    }
    Ok(out)
}

/// Appends one raw snappy block's output to `out`.
fn snappy_block(
    block: &[u8],
    at: usize,
    out: &mut Vec<u8>,
    budget: &mut Budget,
) -> Result<(), CodecError> {
    let corrupt = |e: snap::Error| CodecError::Corrupt(format!("snappy block at byte {at}: {e}"));
    let claimed = snap::raw::decompress_len(block).map_err(corrupt)?;
    if claimed
        > block
            .len()
            .saturating_mul(SNAPPY_MAX_RATIO)
            .saturating_add(16)
    {
        return Err(CodecError::Corrupt(format!(
            "snappy block at byte {at} claims {claimed} bytes from {} compressed bytes",
            block.len()
        )));
    }
    budget.charge(claimed)?;
    let before = out.len();
    out.resize(before + claimed, 0);
    let dst = out.get_mut(before..).unwrap_or_default();
    match snap::raw::Decoder::new().decompress(block, dst) {
        Ok(n) => {
            out.truncate(before + n);
            Ok(())
        }
        Err(e) => {
            out.truncate(before);
            Err(corrupt(e))
        }
    }
}

/// How snappy output is framed when encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SnappyFraming {
    /// snappy-java's stream format, as the Java client writes it.
    #[default]
    Xerial,
    /// One raw snappy block, as librdkafka writes it.
    Raw,
}

/// Encoder settings that real clients differ on.
#[derive(Clone, Copy, Debug, Default)]
pub struct CompressOptions {
    pub snappy: SnappyFraming,
    /// Header checksum over the frame magic too (Kafka magic 0 messages).
    pub lz4_broken_checksum: bool,
}

/// Compresses a whole record payload.
pub fn compress(
    codec: Compression,
    data: &[u8],
    opts: CompressOptions,
) -> Result<Vec<u8>, CodecError> {
    let io = |e: std::io::Error| CodecError::Corrupt(format!("{codec} encoder: {e}"));
    match codec {
        Compression::None => Ok(data.to_vec()),
        Compression::Gzip => {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            enc.write_all(data).map_err(io)?;
            enc.finish().map_err(io)
        }
        Compression::Snappy => {
            let mut enc = snap::raw::Encoder::new();
            let block = |enc: &mut snap::raw::Encoder, chunk: &[u8]| {
                enc.compress_vec(chunk)
                    .map_err(|e| CodecError::Corrupt(format!("snappy encoder: {e}")))
            };
            match opts.snappy {
                SnappyFraming::Raw => block(&mut enc, data),
                SnappyFraming::Xerial => {
                    let mut out = XERIAL_MAGIC.to_vec();
                    // version 1, minimum compatible version 1
                    out.extend_from_slice(&1i32.to_be_bytes());
                    out.extend_from_slice(&1i32.to_be_bytes());
                    for chunk in data.chunks(XERIAL_BLOCK) {
                        let packed = block(&mut enc, chunk)?;
                        let len = i32::try_from(packed.len())
                            .map_err(|_| CodecError::Corrupt("snappy block too large".into()))?;
                        out.extend_from_slice(&len.to_be_bytes());
                        out.extend_from_slice(&packed);
                    }
                    Ok(out)
                }
            }
        }
        Compression::Lz4 => Ok(lz4::compress(data, opts.lz4_broken_checksum)),
        Compression::Zstd => zstd::bulk::compress(data, 3).map_err(io),
        Compression::Unknown(n) => Err(CodecError::Unknown(n)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Compression; 4] = [
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    fn sample() -> Vec<u8> {
        (0..100_000u32)
            .flat_map(|i| (i % 1000).to_be_bytes())
            .collect()
    }

    #[test]
    fn every_codec_round_trips() {
        let data = sample();
        for codec in ALL {
            let packed = compress(codec, &data, CompressOptions::default()).unwrap();
            let mut budget = Budget::new(1 << 30);
            assert_eq!(
                decompress(codec, &packed, &mut budget).unwrap(),
                data,
                "{codec}"
            );
        }
    }

    #[test]
    fn raw_and_xerial_snappy_both_decode() {
        let data = sample();
        for snappy in [SnappyFraming::Raw, SnappyFraming::Xerial] {
            let opts = CompressOptions {
                snappy,
                ..Default::default()
            };
            let packed = compress(Compression::Snappy, &data, opts).unwrap();
            assert_eq!(
                packed.starts_with(&XERIAL_MAGIC),
                snappy == SnappyFraming::Xerial
            );
            let out = decompress(Compression::Snappy, &packed, &mut Budget::new(1 << 30)).unwrap();
            assert_eq!(out, data);
        }
    }

    #[test]
    fn every_codec_stops_at_the_budget() {
        let data = vec![0u8; 10 << 20];
        for codec in ALL {
            let packed = compress(codec, &data, CompressOptions::default()).unwrap();
            let mut budget = Budget::new(1 << 20);
            let err = decompress(codec, &packed, &mut budget).unwrap_err();
            assert_eq!(err, CodecError::LimitExceeded { limit: 1 << 20 }, "{codec}");
        }
    }

    #[test]
    fn snappy_block_claiming_absurd_length_is_refused_before_allocating() {
        // varint length 0xFFFFFFFF followed by nothing useful
        let block = [0xff, 0xff, 0xff, 0xff, 0x0f, 0x00];
        let err =
            decompress(Compression::Snappy, &block, &mut Budget::new(usize::MAX)).unwrap_err();
        assert!(matches!(err, CodecError::Corrupt(_)), "{err}");
    }

    #[test]
    fn garbage_is_corrupt_for_every_codec() {
        let junk = [0x13u8; 64];
        for codec in ALL {
            let err = decompress(codec, &junk, &mut Budget::new(1 << 20)).unwrap_err();
            assert!(matches!(err, CodecError::Corrupt(_)), "{codec}: {err}");
        }
    }
}
