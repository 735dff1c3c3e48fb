//! Kafka's primitive types on the wire (protocol guide, "Protocol Primitive
//! Types"): a bounded, borrowing-free cursor over a frame that never reads
//! past its end, and the matching writers. Every read error carries the
//! absolute byte offset in the frame where it happened.

use bytes::{BufMut, Bytes};

/// Why a primitive could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WireErrorKind {
    #[error("needs {needed} bytes but only {remaining} are left")]
    Truncated { needed: usize, remaining: usize },
    #[error("varint runs past {0} bytes")]
    VarintTooLong(usize),
    #[error("invalid length {0}")]
    InvalidLength(i64),
    #[error("length {claimed} exceeds the {remaining} bytes left")]
    LengthExceeds { claimed: u64, remaining: usize },
    #[error("count {claimed} exceeds the {remaining} bytes left")]
    CountExceeds { claimed: u64, remaining: usize },
    #[error("string is not valid UTF-8")]
    InvalidUtf8,
}

/// A read error at an absolute byte offset.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{kind} (byte {offset})")]
pub struct WireError {
    pub offset: usize,
    pub kind: WireErrorKind,
}

pub type WireResult<T> = Result<T, WireError>;

/// The big-endian `i32` at `at` in `bytes`, if they reach that far.
pub(crate) fn read_i32(bytes: &[u8], at: usize) -> Option<i32> {
    let raw = bytes.get(at..at + 4)?;
    Some(i32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]))
}

/// The big-endian `i16` at `at` in `bytes`, if they reach that far.
pub(crate) fn read_i16(bytes: &[u8], at: usize) -> Option<i16> {
    let raw = bytes.get(at..at + 2)?;
    Some(i16::from_be_bytes([raw[0], raw[1]]))
}

/// A cursor over a byte buffer. Sub-readers share the buffer (`Bytes` is
/// reference counted) and keep absolute offsets, so a nested parser cannot
/// read past its bounds and still reports where it failed in the frame.
#[derive(Clone, Debug)]
pub struct Reader {
    data: Bytes,
    pos: usize,
    origin: usize,
}

impl Reader {
    pub fn new(data: Bytes) -> Reader {
        Reader::at(data, 0)
    }

    /// A reader whose first byte sits at `origin` in the enclosing frame.
    pub fn at(data: Bytes, origin: usize) -> Reader {
        Reader {
            data,
            pos: 0,
            origin,
        }
    }

    /// The absolute offset of the next byte.
    #[inline]
    pub fn offset(&self) -> usize {
        self.origin + self.pos
    }

    /// Where the reader stands, to come back to with [`Reader::rewind`]:
    /// cheaper than a clone, which shares the bytes.
    #[inline]
    pub fn mark(&self) -> usize {
        self.pos
    }

    /// Goes back to a [`Reader::mark`] of this reader.
    #[inline]
    pub fn rewind(&mut self, mark: usize) {
        self.pos = mark.min(self.data.len());
    }

    #[inline]
    pub fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// The bytes not read yet, without consuming them.
    #[inline]
    pub fn rest(&self) -> &[u8] {
        &self.data[self.pos..]
    }

    pub fn error(&self, kind: WireErrorKind) -> WireError {
        WireError {
            offset: self.offset(),
            kind,
        }
    }

    #[inline]
    fn slice(&mut self, len: usize) -> WireResult<&[u8]> {
        // Two bounds checks, each of which the compiler then relies on:
        // the rest, and `len` bytes of it.
        let start = self.pos;
        match self.data.get(start..).and_then(|rest| rest.get(..len)) {
            Some(bytes) => {
                self.pos = start + len;
                Ok(bytes)
            }
            None => Err(self.truncated(len)),
        }
    }

    #[cold]
    fn truncated(&self, needed: usize) -> WireError {
        self.error(WireErrorKind::Truncated {
            needed,
            remaining: self.remaining(),
        })
    }

    #[inline]
    fn array<const N: usize>(&mut self) -> WireResult<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.slice(N)?);
        Ok(out)
    }

    /// The bytes not read yet as a shared slice, without consuming them.
    pub fn rest_bytes(&self) -> Bytes {
        self.data.slice(self.pos..)
    }

    /// Takes `len` bytes without copying them.
    #[inline]
    pub fn take(&mut self, len: usize) -> WireResult<Bytes> {
        let start = self.pos;
        self.slice(len)?;
        Ok(self.data.slice(start..self.pos))
    }

    /// Takes `len` bytes as a bounded sub-reader.
    pub fn sub_reader(&mut self, len: usize) -> WireResult<Reader> {
        let origin = self.offset();
        Ok(Reader::at(self.take(len)?, origin))
    }

    /// All the bytes the reader was given, read or not.
    pub fn into_bytes(self) -> Bytes {
        self.data
    }

    /// Takes everything that is left.
    pub fn take_rest(&mut self) -> Bytes {
        let start = self.pos;
        self.pos = self.data.len();
        self.data.slice(start..)
    }

    #[inline]
    pub fn skip(&mut self, len: usize) -> WireResult<()> {
        // One check: `pos` never passes the end, so `remaining` is exact.
        if len > self.remaining() {
            return Err(self.truncated(len));
        }
        self.pos += len;
        Ok(())
    }

    #[inline]
    pub fn u8(&mut self) -> WireResult<u8> {
        Ok(self.array::<1>()?[0])
    }

    #[inline]
    pub fn i8(&mut self) -> WireResult<i8> {
        Ok(i8::from_be_bytes(self.array()?))
    }

    #[inline]
    pub fn i16(&mut self) -> WireResult<i16> {
        Ok(i16::from_be_bytes(self.array()?))
    }

    #[inline]
    pub fn u16(&mut self) -> WireResult<u16> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    #[inline]
    pub fn i32(&mut self) -> WireResult<i32> {
        Ok(i32::from_be_bytes(self.array()?))
    }

    #[inline]
    pub fn u32(&mut self) -> WireResult<u32> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    #[inline]
    pub fn i64(&mut self) -> WireResult<i64> {
        Ok(i64::from_be_bytes(self.array()?))
    }

    #[inline]
    pub fn f64(&mut self) -> WireResult<f64> {
        Ok(f64::from_be_bytes(self.array()?))
    }

    #[inline]
    pub fn uuid(&mut self) -> WireResult<[u8; 16]> {
        self.array()
    }

    /// An unsigned LEB128 varint of at most `max_bytes` bytes.
    fn leb128(&mut self, max_bytes: usize) -> WireResult<u64> {
        let start = self.offset();
        let mut value = 0u64;
        for index in 0..max_bytes {
            let byte = self.u8()?;
            value |= u64::from(byte & 0x7f) << (7 * index);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(WireError {
            offset: start,
            kind: WireErrorKind::VarintTooLong(max_bytes),
        })
    }

    pub fn unsigned_varint(&mut self) -> WireResult<u32> {
        // Five 7-bit groups hold 35 bits; the top bits of the last group are
        // dropped exactly as Kafka's ByteUtils.readUnsignedVarint drops them.
        Ok(self.leb128(5)? as u32)
    }

    pub fn varint(&mut self) -> WireResult<i32> {
        let raw = self.unsigned_varint()?;
        Ok(((raw >> 1) as i32) ^ -((raw & 1) as i32))
    }

    pub fn varlong(&mut self) -> WireResult<i64> {
        let raw = self.leb128(10)?;
        Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
    }

    /// Checks that `claimed` bytes (or elements of at least one byte) can
    /// still follow, before anything is allocated for them.
    #[inline]
    pub fn check_length(&self, claimed: u64) -> WireResult<usize> {
        match usize::try_from(claimed) {
            Ok(len) if len <= self.remaining() => Ok(len),
            _ => Err(self.error(WireErrorKind::LengthExceeds {
                claimed,
                remaining: self.remaining(),
            })),
        }
    }

    #[inline]
    pub fn check_count(&self, claimed: u64) -> WireResult<usize> {
        match usize::try_from(claimed) {
            Ok(count) if count <= self.remaining() => Ok(count),
            _ => Err(self.error(WireErrorKind::CountExceeds {
                claimed,
                remaining: self.remaining(),
            })),
        }
    }

    /// The next `len` bytes as UTF-8 text, borrowed from the frame.
    pub fn str(&mut self, len: usize) -> WireResult<&str> {
        let start = self.offset();
        let bytes = self.slice(len)?;
        // Names in Kafka are nearly always ASCII, which a word-at-a-time
        // check clears faster than the full validation.
        if bytes.is_ascii() {
            // SAFETY: ASCII is valid UTF-8.
            return Ok(unsafe { std::str::from_utf8_unchecked(bytes) });
        }
        std::str::from_utf8(bytes).map_err(|_| WireError {
            offset: start,
            kind: WireErrorKind::InvalidUtf8,
        })
    }
}

/// Writes an unsigned LEB128 varint.
pub fn put_unsigned_varint(out: &mut Vec<u8>, value: u32) {
    put_leb128(out, u64::from(value));
}

pub fn put_varint(out: &mut Vec<u8>, value: i32) {
    put_unsigned_varint(out, ((value << 1) ^ (value >> 31)) as u32);
}

pub fn put_varlong(out: &mut Vec<u8>, value: i64) {
    put_leb128(out, ((value << 1) ^ (value >> 63)) as u64);
}

fn put_leb128(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.put_u8((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.put_u8(value as u8);
}

/// The number of bytes `put_unsigned_varint` writes for `value`.
pub fn unsigned_varint_len(value: u32) -> usize {
    let bits = 32 - value.leading_zeros() as usize;
    bits.max(1).div_ceil(7)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(bytes: &[u8]) -> Reader {
        Reader::new(Bytes::copy_from_slice(bytes))
    }

    #[test]
    fn varint_zigzag_round_trips_at_the_edges() {
        for value in [0, 1, -1, 63, -64, 64, i32::MAX, i32::MIN] {
            let mut out = Vec::new();
            put_varint(&mut out, value);
            assert_eq!(reader(&out).varint(), Ok(value), "{value}");
        }
        for value in [0, -1, i64::MAX, i64::MIN, 1 << 40] {
            let mut out = Vec::new();
            put_varlong(&mut out, value);
            assert_eq!(reader(&out).varlong(), Ok(value), "{value}");
        }
    }

    #[test]
    fn unsigned_varint_length_matches_the_writer() {
        for value in [0, 1, 127, 128, 16383, 16384, u32::MAX] {
            let mut out = Vec::new();
            put_unsigned_varint(&mut out, value);
            assert_eq!(out.len(), unsigned_varint_len(value), "{value}");
            assert_eq!(reader(&out).unsigned_varint(), Ok(value));
        }
    }

    #[test]
    fn overlong_varint_is_an_error_at_its_start() {
        let mut r = reader(&[0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
        r.u8().unwrap();
        let error = r.unsigned_varint().unwrap_err();
        assert_eq!(error.offset, 1);
        assert_eq!(error.kind, WireErrorKind::VarintTooLong(5));
    }

    #[test]
    fn truncated_read_reports_the_offset_and_shortfall() {
        let mut r = Reader::at(Bytes::from_static(&[1, 2, 3]), 10);
        r.u8().unwrap();
        let error = r.i32().unwrap_err();
        assert_eq!(error.offset, 11);
        assert_eq!(
            error.kind,
            WireErrorKind::Truncated {
                needed: 4,
                remaining: 2
            }
        );
    }

    #[test]
    fn sub_reader_is_bounded_and_keeps_absolute_offsets() {
        let mut r = reader(&[9, 1, 2, 3, 4]);
        r.u8().unwrap();
        let mut sub = r.sub_reader(2).unwrap();
        assert_eq!(sub.offset(), 1);
        assert_eq!(sub.i16(), Ok(0x0102));
        assert!(sub.u8().is_err());
        assert_eq!(r.remaining(), 2);
    }

    #[test]
    fn huge_claimed_count_is_rejected_before_allocation() {
        let r = reader(&[0; 8]);
        assert!(r.check_count(u64::from(u32::MAX)).is_err());
        assert_eq!(r.check_count(8), Ok(8));
    }
}
