//! A borrowing, bounds-checked reader over record bytes, and the typed error
//! it returns. Every read checks what is left first, so the parsers built on
//! it never index out of range; a length prefix becomes a bounded sub-reader
//! with [`Cursor::sub`], so a record cannot read past its own frame.

use std::fmt;

/// What went wrong reading one field; `at` is the byte position of the field
/// within the buffer the cursor walks (the caller adds its own context).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field} at byte {at}: {kind}")]
pub struct FieldError {
    pub field: &'static str,
    pub at: usize,
    pub kind: FieldErrorKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FieldErrorKind {
    /// The field (or the bytes a length claims) runs past the end.
    Short { need: u64, have: usize },
    /// A varint longer than its type allows.
    VarintTooLong,
    /// A length below -1, or -1 where null is not allowed.
    BadLength(i64),
    /// A frame whose fields end before its length says it does.
    Trailing(usize),
}

impl fmt::Display for FieldErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldErrorKind::Short { need, have } => {
                write!(f, "needs {need} bytes, only {have} left")
            }
            FieldErrorKind::VarintTooLong => f.write_str("varint is too long for its type"),
            FieldErrorKind::BadLength(n) => write!(f, "invalid length {n}"),
            FieldErrorKind::Trailing(n) => write!(f, "{n} unread bytes at the end"),
        }
    }
}

pub type ReadResult<T> = Result<T, FieldError>;

#[derive(Clone, Copy, Debug)]
pub struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(buf: &'a [u8]) -> Cursor<'a> {
        Cursor { buf, pos: 0 }
    }

    /// A cursor over `buf[start..end]` whose positions still count from the
    /// start of `buf`, so errors and slices stay in the caller's coordinates.
    pub fn window(buf: &'a [u8], start: usize, end: usize) -> Cursor<'a> {
        let end = end.min(buf.len());
        let buf = buf.get(..end).unwrap_or_default();
        Cursor {
            buf,
            pos: start.min(end),
        }
    }

    #[inline]
    pub fn pos(&self) -> usize {
        self.pos
    }

    #[inline]
    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    #[cold]
    #[inline(never)]
    fn short(&self, field: &'static str, need: u64) -> FieldError {
        FieldError {
            field,
            at: self.pos,
            kind: FieldErrorKind::Short {
                need,
                have: self.remaining(),
            },
        }
    }

    #[cold]
    #[inline(never)]
    pub fn error(&self, field: &'static str, at: usize, kind: FieldErrorKind) -> FieldError {
        FieldError { field, at, kind }
    }

    /// The next `n` bytes, as a slice of the underlying buffer.
    #[inline(always)]
    pub fn take(&mut self, field: &'static str, n: usize) -> ReadResult<&'a [u8]> {
        let end = match self.pos.checked_add(n) {
            Some(end) if end <= self.buf.len() => end,
            _ => return Err(self.short(field, n as u64)),
        };
        match self.buf.get(self.pos..end) {
            Some(s) => {
                self.pos = end;
                Ok(s)
            }
            None => Err(self.short(field, n as u64)),
        }
    }

    /// Splits off the next `n` bytes as their own cursor (positions keep
    /// counting from the same origin) and skips past them.
    #[inline]
    pub fn sub(&mut self, field: &'static str, n: usize) -> ReadResult<Cursor<'a>> {
        let start = self.pos;
        self.take(field, n)?;
        Ok(Cursor {
            buf: self.buf.get(..self.pos).unwrap_or_default(),
            pos: start,
        })
    }

    #[inline]
    fn array<const N: usize>(&mut self, field: &'static str) -> ReadResult<[u8; N]> {
        let s = self.take(field, N)?;
        s.try_into().map_err(|_| self.short(field, N as u64))
    }

    #[inline]
    pub fn i8(&mut self, field: &'static str) -> ReadResult<i8> {
        self.array::<1>(field).map(i8::from_be_bytes)
    }

    #[inline]
    pub fn u8(&mut self, field: &'static str) -> ReadResult<u8> {
        self.array::<1>(field).map(u8::from_be_bytes)
    }

    #[inline]
    pub fn i16(&mut self, field: &'static str) -> ReadResult<i16> {
        self.array(field).map(i16::from_be_bytes)
    }

    #[inline]
    pub fn i32(&mut self, field: &'static str) -> ReadResult<i32> {
        self.array(field).map(i32::from_be_bytes)
    }

    #[inline]
    pub fn u32(&mut self, field: &'static str) -> ReadResult<u32> {
        self.array(field).map(u32::from_be_bytes)
    }

    #[inline]
    pub fn i64(&mut self, field: &'static str) -> ReadResult<i64> {
        self.array(field).map(i64::from_be_bytes)
    }

    /// An unsigned LEB128 varint of at most `max_bytes` bytes whose value fits
    /// in `bits` bits (Kafka's varint: 5 bytes / 32 bits, varlong: 10 / 64).
    #[inline(always)]
    fn uvarint(&mut self, field: &'static str, max_bytes: u32, bits: u32) -> ReadResult<u64> {
        // Fast paths: most lengths and deltas fit in one or two bytes.
        match self.buf.get(self.pos..) {
            Some(&[b, ..]) if b < 0x80 => {
                self.pos += 1;
                return Ok(u64::from(b));
            }
            Some(&[b0, b1, ..]) if b1 < 0x80 => {
                self.pos += 2;
                return Ok(u64::from(b0 & 0x7f) | u64::from(b1) << 7);
            }
            _ => {}
        }
        self.uvarint_slow(field, max_bytes, bits)
    }

    fn uvarint_slow(&mut self, field: &'static str, max_bytes: u32, bits: u32) -> ReadResult<u64> {
        let start = self.pos;
        let mut value: u64 = 0;
        let mut shift = 0u32;
        for i in 0..max_bytes {
            let Some(&b) = self.buf.get(self.pos) else {
                let err = self.short(field, u64::from(i) + 1);
                self.pos = start;
                return Err(FieldError { at: start, ..err });
            };
            self.pos += 1;
            let low = u64::from(b & 0x7f);
            // The last allowed byte may only carry the bits that still fit.
            if shift + 7 > bits && (low >> (bits - shift)) != 0 {
                self.pos = start;
                return Err(self.error(field, start, FieldErrorKind::VarintTooLong));
            }
            value |= low << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
            shift += 7;
        }
        self.pos = start;
        Err(self.error(field, start, FieldErrorKind::VarintTooLong))
    }

    /// A zigzag-encoded signed varint (Kafka "varint", 32 bits).
    #[inline(always)]
    pub fn varint(&mut self, field: &'static str) -> ReadResult<i32> {
        let n = self.uvarint(field, 5, 32)?;
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        Ok(((n >> 1) as i32) ^ -((n & 1) as i32))
    }

    /// A zigzag-encoded signed varlong (Kafka "varlong", 64 bits).
    #[inline(always)]
    pub fn varlong(&mut self, field: &'static str) -> ReadResult<i64> {
        let n = self.uvarint(field, 10, 64)?;
        Ok(((n >> 1) as i64) ^ -((n & 1) as i64))
    }

    /// A varint length prefix followed by that many bytes; -1 is null.
    /// Returns the byte range, so the caller can slice its `Bytes` zero-copy.
    #[inline(always)]
    pub fn varint_bytes(&mut self, field: &'static str) -> ReadResult<Option<(usize, usize)>> {
        let at = self.pos;
        let len = self.varint(field)?;
        self.range(field, at, i64::from(len))
    }

    /// An int32 length prefix followed by that many bytes; -1 is null.
    #[inline]
    pub fn i32_bytes(&mut self, field: &'static str) -> ReadResult<Option<(usize, usize)>> {
        let at = self.pos;
        let len = self.i32(field)?;
        self.range(field, at, i64::from(len))
    }

    /// Fails unless every byte has been read (for length-delimited frames).
    #[inline]
    pub fn finish(&self, field: &'static str) -> ReadResult<()> {
        match self.remaining() {
            0 => Ok(()),
            n => Err(self.error(field, self.pos, FieldErrorKind::Trailing(n))),
        }
    }

    #[inline(always)]
    fn range(
        &mut self,
        field: &'static str,
        at: usize,
        len: i64,
    ) -> ReadResult<Option<(usize, usize)>> {
        if len == -1 {
            return Ok(None);
        }
        let Ok(n) = usize::try_from(len) else {
            return Err(self.error(field, at, FieldErrorKind::BadLength(len)));
        };
        let start = self.pos;
        // Report a short read at the length that promised the bytes.
        self.take(field, n).map_err(|e| FieldError { at, ..e })?;
        Ok(Some((start, self.pos)))
    }
}

/// Zigzag varint writers (the encode side of [`Cursor::varint`]).
pub fn put_varint(out: &mut Vec<u8>, v: i32) {
    put_uvarint(out, u64::from(((v << 1) ^ (v >> 31)) as u32));
}

pub fn put_varlong(out: &mut Vec<u8>, v: i64) {
    put_uvarint(out, ((v << 1) ^ (v >> 63)) as u64);
}

fn put_uvarint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Bytes that [`put_varint`] would write.
pub fn varint_len(v: i32) -> usize {
    uvarint_len(u64::from(((v << 1) ^ (v >> 31)) as u32))
}

pub fn varlong_len(v: i64) -> usize {
    uvarint_len(((v << 1) ^ (v >> 63)) as u64)
}

fn uvarint_len(n: u64) -> usize {
    let bits = 64 - (n | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_at_their_edges() {
        for v in [0, 1, -1, 63, -64, 64, -65, 8191, i32::MAX, i32::MIN] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(out.len(), varint_len(v), "{v}");
            let mut c = Cursor::new(&out);
            assert_eq!(c.varint("v").unwrap(), v);
            assert!(c.is_empty());
        }
        for v in [0, 1, -1, i64::from(i32::MAX) + 1, i64::MAX, i64::MIN] {
            let mut out = Vec::new();
            put_varlong(&mut out, v);
            assert_eq!(out.len(), varlong_len(v), "{v}");
            let mut c = Cursor::new(&out);
            assert_eq!(c.varlong("v").unwrap(), v);
        }
    }

    #[test]
    fn varint_wider_than_32_bits_is_rejected() {
        let bytes = [0xff, 0xff, 0xff, 0xff, 0x1f];
        let err = Cursor::new(&bytes).varint("len").unwrap_err();
        assert_eq!(err.kind, FieldErrorKind::VarintTooLong);
        let bytes = [0x80, 0x80, 0x80, 0x80, 0x80, 0x01];
        assert!(Cursor::new(&bytes).varint("len").is_err());
    }

    #[test]
    fn truncated_varint_reports_its_start() {
        let bytes = [0x00, 0x80, 0x80];
        let mut c = Cursor::new(&bytes);
        c.i8("pad").unwrap();
        let err = c.varint("len").unwrap_err();
        assert_eq!(err.at, 1);
        assert!(matches!(err.kind, FieldErrorKind::Short { .. }));
    }

    #[test]
    fn sub_cursor_cannot_read_past_its_frame() {
        let bytes = [1, 2, 3, 4, 5];
        let mut c = Cursor::new(&bytes);
        let mut sub = c.sub("frame", 2).unwrap();
        assert_eq!(sub.i8("a").unwrap(), 1);
        assert_eq!(sub.pos(), 1);
        assert!(sub.i16("b").is_err());
        assert_eq!(c.pos(), 2);
    }
}
