//! Legacy message sets, magic 0 and 1 (protocol guide "Messages"; KIP-32
//! added the magic 1 timestamp, KIP-31 the relative inner offsets):
//!
//! ```text
//! offset i64, message_size i32, crc u32 (CRC-32 of magic..end),
//! magic i8, attributes i8, [timestamp i64, magic 1], key bytes, value bytes
//! ```
//!
//! A compressed message is a wrapper whose value is a whole compressed
//! message set. Inner offsets are absolute for magic 0; for magic 1 they are
//! relative, and Kafka resolves them as
//! `wrapper offset - last inner offset + inner offset`.

use bytes::Bytes;

use super::batch::len_i32;
use super::compression::{self, Budget, CompressOptions, Compression};
use super::cursor::{Cursor, FieldError, FieldErrorKind};
use super::encode::BatchSpec;
use super::{Batch, LegacyMessage, Record, Span, TimestampType, LOG_OVERHEAD};

/// Smallest magic 0 entry: prefix, crc, magic, attributes, two lengths.
pub const V0_HEADER: usize = LOG_OVERHEAD + 4 + 1 + 1 + 4 + 4;
/// Magic 1 adds the timestamp.
pub const V1_HEADER: usize = V0_HEADER + 8;
/// Inner-message errors kept per wrapper before the rest are only counted.
const MAX_INNER_ERRORS: usize = 10;

/// One message as read from the wire; spans and positions count in the
/// buffer it was read from.
struct Message {
    offset: i64,
    size: i32,
    crc: u32,
    crc_computed: u32,
    magic: i8,
    attributes: u8,
    timestamp: i64,
    key: Span,
    value: Span,
    /// Where the value's length field is.
    value_at: usize,
}

impl Message {
    fn compression(&self) -> Compression {
        Compression::from_code(self.attributes & 0x07)
    }

    fn push_into(&self, b: &mut Batch, offset: i64) {
        b.records.push(Record {
            offset,
            timestamp: self.timestamp,
            key: self.key,
            value: self.value,
            ..Record::default()
        });
        b.legacy.push(LegacyMessage {
            magic: self.magic,
            attributes: self.attributes,
            crc: self.crc,
            crc_computed: self.crc_computed,
            crc_ok: self.crc == self.crc_computed,
        });
    }
}

/// The offset and size prefix; an error here means nothing after it can be
/// found. Returns the message's own bytes as a sub-cursor.
fn frame<'a>(c: &mut Cursor<'a>) -> Result<(i64, i32, Cursor<'a>), FieldError> {
    let offset = c.i64("offset")?;
    let at = c.pos();
    let size = c.i32("message_size")?;
    let Ok(n) = usize::try_from(size) else {
        return Err(c.error(
            "message_size",
            at,
            FieldErrorKind::BadLength(i64::from(size)),
        ));
    };
    Ok((offset, size, c.sub("message", n)?))
}

/// The message body after the prefix.
fn body(src: &[u8], offset: i64, size: i32, mut m: Cursor<'_>) -> Result<Message, FieldError> {
    let crc = m.u32("crc")?;
    let covered_from = m.pos();
    let magic = m.i8("magic")?;
    if !(0..=1).contains(&magic) {
        return Err(m.error(
            "magic",
            covered_from,
            FieldErrorKind::BadLength(i64::from(magic)),
        ));
    }
    let attributes = m.u8("attributes")?;
    let timestamp = if magic >= 1 { m.i64("timestamp")? } else { -1 };
    let key = Span::from_range(m.i32_bytes("key")?);
    let value_at = m.pos();
    let value = Span::from_range(m.i32_bytes("value")?);
    m.finish("message")?;
    let covered = src.get(covered_from..m.pos()).unwrap_or_default();
    Ok(Message {
        offset,
        size,
        crc,
        crc_computed: crc32fast::hash(covered),
        magic,
        attributes,
        timestamp,
        key,
        value,
        value_at,
    })
}

/// Decodes the legacy entry at `raw[start..end]` (already framed).
pub fn decode(raw: &Bytes, start: usize, end: usize, index: usize, budget: &mut Budget) -> Batch {
    let mut b = Batch::empty(start, end - start);
    let entry = raw.slice(start..end);
    let mut c = Cursor::new(&entry);
    let msg = frame(&mut c).and_then(|(offset, size, m)| body(&entry, offset, size, m));
    let msg = match msg {
        Ok(msg) => msg,
        Err(e) => {
            super::read_prefix(raw, &mut b);
            b.error(
                index,
                FieldError {
                    at: e.at + start,
                    ..e
                },
            );
            return b;
        }
    };
    b.base_offset = msg.offset;
    b.batch_length = msg.size;
    b.magic = msg.magic;
    b.crc = msg.crc;
    b.crc_computed = msg.crc_computed;
    b.crc_ok = msg.crc == msg.crc_computed;
    b.crc_checked = true;
    b.attributes = i16::from(msg.attributes);
    b.base_timestamp = msg.timestamp;
    b.max_timestamp = msg.timestamp;
    if !b.crc_ok {
        let what = format!(
            "crc {:#010x} does not match the computed CRC-32 {:#010x}",
            b.crc, b.crc_computed
        );
        b.error(index, what);
    }
    let codec = msg.compression();
    if codec == Compression::None {
        msg.push_into(&mut b, msg.offset);
        b.data = entry;
        b.record_count = 1;
        return b;
    }
    let value_at = msg.value_at + start;
    b.wrapper_key = msg.key.bytes(&entry);
    let Some(value) = msg.value.get(&entry) else {
        b.error(
            index,
            format_args!("compressed ({codec}) message has a null value"),
        );
        return b;
    };
    let plain = match compression::decompress(codec, value, budget) {
        Ok(plain) if u32::try_from(plain.len()).is_err() => {
            let what = format!(
                "value at byte {value_at}: {} bytes decompressed are more than 4 GiB",
                plain.len()
            );
            b.error(index, what);
            return b;
        }
        Ok(plain) => Bytes::from(plain),
        Err(e) => {
            b.error(
                index,
                format_args!("value at byte {value_at}: {codec}: {e}"),
            );
            return b;
        }
    };
    let (inner, errors) = decode_inner(&plain);
    // Resolve inner offsets as Kafka does (KIP-31).
    let base = if msg.magic >= 1 {
        let last = inner.last().map_or(0, |m| m.offset);
        msg.offset.wrapping_sub(last)
    } else {
        0
    };
    b.records.reserve(inner.len());
    b.legacy.reserve(inner.len());
    for m in &inner {
        let offset = if msg.magic >= 1 {
            base.wrapping_add(m.offset)
        } else {
            m.offset
        };
        m.push_into(&mut b, offset);
    }
    b.data = plain;
    b.record_count = i32::try_from(b.records.len()).unwrap_or(i32::MAX);
    for e in errors {
        b.error(index, e);
    }
    b
}

/// Decodes a decompressed inner message set. Errors say where in it.
fn decode_inner(plain: &[u8]) -> (Vec<Message>, Vec<String>) {
    let mut messages = Vec::new();
    let mut errors = Vec::new();
    let mut failed = 0usize;
    let mut c = Cursor::new(plain);
    let mut i = 0usize;
    while !c.is_empty() {
        let at = c.pos();
        let where_ = |e: &dyn std::fmt::Display| {
            format!("inner message {i} at byte {at} of the decompressed message set: {e}")
        };
        let (offset, size, m) = match frame(&mut c) {
            Ok(f) => f,
            Err(e) => {
                errors.push(format!("{}; later messages are lost", where_(&e)));
                break;
            }
        };
        match body(plain, offset, size, m) {
            Ok(msg) => {
                let mut problem = None;
                if msg.crc != msg.crc_computed {
                    problem = Some(format!(
                        "crc {:#010x} does not match the computed CRC-32 {:#010x}",
                        msg.crc, msg.crc_computed
                    ));
                } else if msg.compression() != Compression::None {
                    problem = Some(format!(
                        "is itself compressed ({}); Kafka does not nest compression, so it is not decoded further",
                        msg.compression()
                    ));
                }
                if let Some(p) = problem {
                    failed += 1;
                    if failed <= MAX_INNER_ERRORS {
                        errors.push(where_(&p));
                    }
                }
                messages.push(msg);
            }
            Err(e) => {
                failed += 1;
                if failed <= MAX_INNER_ERRORS {
                    errors.push(where_(&e));
                }
            }
        }
        i += 1;
    }
    if failed > MAX_INNER_ERRORS {
        errors.push(format!(
            "{} more bad inner messages",
            failed - MAX_INNER_ERRORS
        ));
    }
    (messages, errors)
}

// ---- encoding ---------------------------------------------------------------

struct MessageOut<'a> {
    offset: i64,
    magic: i8,
    attributes: u8,
    timestamp: i64,
    key: &'a Option<Bytes>,
    value: &'a Option<Bytes>,
    crc: Option<u32>,
    size: Option<i32>,
}

fn put_bytes(out: &mut Vec<u8>, b: &Option<Bytes>) -> Result<(), String> {
    match b {
        None => out.extend_from_slice(&(-1i32).to_be_bytes()),
        Some(b) => {
            out.extend_from_slice(&len_i32(b.len())?.to_be_bytes());
            out.extend_from_slice(b);
        }
    }
    Ok(())
}

fn put_message(out: &mut Vec<u8>, m: &MessageOut<'_>) -> Result<(), String> {
    let start = out.len();
    out.extend_from_slice(&m.offset.to_be_bytes());
    out.extend_from_slice(&[0; 8]); // size and crc, filled in below
    out.push(m.magic.to_be_bytes()[0]);
    out.push(m.attributes);
    if m.magic >= 1 {
        out.extend_from_slice(&m.timestamp.to_be_bytes());
    }
    put_bytes(out, m.key)?;
    put_bytes(out, m.value)?;
    let size = match m.size {
        Some(s) => s,
        None => len_i32(out.len() - start - LOG_OVERHEAD)?,
    };
    let crc = m
        .crc
        .unwrap_or_else(|| crc32fast::hash(out.get(start + 16..).unwrap_or_default()));
    if let Some(slot) = out.get_mut(start + 8..start + 16) {
        slot[..4].copy_from_slice(&size.to_be_bytes());
        slot[4..].copy_from_slice(&crc.to_be_bytes());
    }
    Ok(())
}

fn low_byte(a: i16) -> u8 {
    a.to_be_bytes()[1]
}

/// Appends a legacy message set: one message per record, or one compressed
/// wrapper around them all.
pub fn encode(spec: &BatchSpec, out: &mut Vec<u8>) -> Result<(), String> {
    let n = spec.records.len();
    let at = |i: usize| move |e: String| format!("records[{i}]: {e}");
    if spec.compression == Compression::None {
        let base = spec.base_offset.unwrap_or(0);
        for (i, r) in spec.records.iter().enumerate() {
            let magic = r.magic.unwrap_or(spec.magic);
            let m = MessageOut {
                offset: r.offset.unwrap_or_else(|| base.wrapping_add(i as i64)),
                magic,
                attributes: match r.attributes {
                    Some(a) => a.to_be_bytes()[0],
                    None => low_byte(spec.attributes.unwrap_or_else(|| spec.attribute_bits())),
                },
                timestamp: r.timestamp.or(spec.max_timestamp).unwrap_or(0),
                key: &r.key,
                value: &r.value,
                crc: r.crc.or(spec.crc),
                size: spec.batch_length,
            };
            put_message(out, &m).map_err(at(i))?;
        }
        return Ok(());
    }

    // Absolute inner offsets: given, or consecutive ending at the wrapper's.
    let first = match (
        spec.base_offset,
        spec.records.iter().any(|r| r.offset.is_some()),
    ) {
        (Some(wrapper), false) => wrapper.wrapping_sub(n.saturating_sub(1) as i64),
        _ => 0,
    };
    let absolute: Vec<i64> = spec
        .records
        .iter()
        .enumerate()
        .map(|(i, r)| r.offset.unwrap_or_else(|| first.wrapping_add(i as i64)))
        .collect();
    let first_abs = absolute.first().copied().unwrap_or(0);
    let mut inner = Vec::new();
    let mut max_ts: Option<i64> = None;
    for ((i, r), &abs) in spec.records.iter().enumerate().zip(&absolute) {
        let timestamp = r.timestamp.unwrap_or(0);
        max_ts = Some(max_ts.map_or(timestamp, |t| t.max(timestamp)));
        let m = MessageOut {
            // Magic 1 wrappers hold relative offsets (KIP-31).
            offset: if spec.magic >= 1 {
                abs.wrapping_sub(first_abs)
            } else {
                abs
            },
            magic: r.magic.unwrap_or(spec.magic),
            attributes: r.attributes.map_or(0, |a| a.to_be_bytes()[0]),
            timestamp,
            key: &r.key,
            value: &r.value,
            crc: r.crc,
            size: None,
        };
        put_message(&mut inner, &m).map_err(at(i))?;
    }
    let opts = CompressOptions {
        snappy: spec.snappy_framing,
        // KAFKA-3160: magic 0 keeps the checksum that covers the magic.
        lz4_broken_checksum: spec.lz4_broken_checksum.unwrap_or(spec.magic == 0),
    };
    let packed = match spec.compression {
        Compression::Unknown(_) => inner,
        codec => compression::compress(codec, &inner, opts).map_err(|e| e.to_string())?,
    };
    let wrapper_ts = if spec.timestamp_type == TimestampType::LogAppendTime {
        spec.max_timestamp.unwrap_or(0)
    } else {
        spec.max_timestamp.or(max_ts).unwrap_or(0)
    };
    let m = MessageOut {
        offset: spec
            .base_offset
            .unwrap_or_else(|| absolute.last().copied().unwrap_or(0)),
        magic: spec.magic,
        attributes: low_byte(spec.attributes.unwrap_or_else(|| spec.attribute_bits())),
        timestamp: wrapper_ts,
        key: &spec.wrapper_key,
        value: &Some(Bytes::from(packed)),
        crc: spec.crc,
        size: spec.batch_length,
    };
    put_message(out, &m)
}
