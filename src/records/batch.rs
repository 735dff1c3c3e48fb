//! Record batches, magic 2 (protocol guide "Record Batch"; KIP-98): the
//! header, the CRC-32C check, the records inside (compressed as a whole or
//! not) and control records, in both directions.
//!
//! Header layout, by byte offset within the entry:
//! ```text
//!  0 base_offset i64         27 base_timestamp i64
//!  8 batch_length i32        35 max_timestamp i64
//! 12 partition_leader_epoch  43 producer_id i64
//! 16 magic i8                51 producer_epoch i16
//! 17 crc u32 (CRC-32C of 21..end)  53 base_sequence i32
//! 21 attributes i16          57 records count i32
//! 23 last_offset_delta i32   61 records
//! ```

use bytes::Bytes;

use super::compression::{self, Budget, CompressOptions, Compression};
use super::cursor::{
    put_varint, put_varlong, varint_len, varlong_len, Cursor, FieldError, FieldErrorKind,
};
use super::encode::{BatchSpec, RecordSpec};
use super::{Batch, ControlRecord, ControlType, HeaderSpan, Record, Span};
use crate::wire::read_i32;

/// Bytes before the records: the whole fixed header.
pub const V2_HEADER: usize = 61;
/// Where the CRC is, and where what it covers starts: the attributes,
/// right after it.
const CRC_AT: usize = 17;
const CRC_START: usize = CRC_AT + 4;
/// Where the records count is.
const RECORD_COUNT_AT: usize = 57;
/// The smallest record: length, attributes, timestamp delta, offset delta,
/// key length, value length and headers count, one byte each.
const MIN_RECORD: usize = 7;
/// The smallest header: key length and value length, one byte each.
const MIN_HEADER: usize = 2;
/// The most records (or headers) reserved for ahead of decoding them.
const MAX_RESERVE: usize = 1 << 16;
/// Record errors kept per batch before the rest are only counted.
const MAX_RECORD_ERRORS: usize = 10;

/// Reads the header of the magic 2 entry at `raw[start..end]` (already
/// framed) and checks its CRC; false when the header cannot be read.
fn read_checked(raw: &Bytes, start: usize, end: usize, index: usize) -> (Batch, bool) {
    let mut b = Batch::empty(start, end - start);
    let mut c = Cursor::window(raw, start, end);
    if let Err(e) = read_header(&mut c, &mut b) {
        // Framing guarantees the header fits, so this is only defensive.
        b.error(index, e);
        return (b, false);
    }
    b.crc_computed = computed_crc(raw, start, end);
    b.crc_ok = b.crc_computed == b.crc;
    b.crc_checked = true;
    if !b.crc_ok {
        let what = format!(
            "crc {:#010x} does not match the computed CRC-32C {:#010x}",
            b.crc, b.crc_computed
        );
        b.error(index, what);
    }
    (b, true)
}

/// The header and CRC check of the magic 2 entry at `raw[start..end]`,
/// its records left alone (see `RecordSet::decode_headers_within`).
pub fn decode_header(raw: &Bytes, start: usize, end: usize, index: usize) -> Batch {
    let (mut b, _) = read_checked(raw, start, end, index);
    b.headers_only = true;
    if b.record_count < 0 {
        let what = format!("records count {} is negative", b.record_count);
        b.error(index, what);
    }
    b
}

/// Decodes the magic 2 entry at `raw[start..end]` (already framed).
pub fn decode(raw: &Bytes, start: usize, end: usize, index: usize, budget: &mut Budget) -> Batch {
    let (mut b, header_ok) = read_checked(raw, start, end, index);
    if !header_ok {
        return b;
    }
    let codec = b.compression();
    let records_at = start + V2_HEADER;
    let (data, origin, place) = if codec == Compression::None {
        (raw.slice(records_at..end), records_at, "")
    } else {
        let payload = raw.get(records_at..end).unwrap_or_default();
        match compression::decompress(codec, payload, budget) {
            Ok(plain) => (Bytes::from(plain), 0, " of the decompressed records"),
            Err(e) => {
                b.error(
                    index,
                    format_args!("records at byte {records_at}: {codec}: {e}"),
                );
                return b;
            }
        }
    };
    if u32::try_from(data.len()).is_err() {
        let what = format!(
            "records at byte {records_at}: {} bytes are more than 4 GiB",
            data.len()
        );
        b.error(index, what);
        return b;
    }
    b.data = data;
    let data = b.data.clone();
    decode_records(&data, &mut b, index, origin, place);
    b
}

/// The CRC-32C of what the CRC of the magic 2 entry at `raw[start..end]`
/// covers.
fn computed_crc(raw: &[u8], start: usize, end: usize) -> u32 {
    crc32c::crc32c(raw.get(start + CRC_START..end).unwrap_or_default())
}

/// The records count the header of the magic 2 entry at `raw[start..end]`
/// (already framed) states, as [`Batch::count`] takes it for a batch whose
/// header only is read (a negative count is none), and whether its CRC
/// matches: what [`decode_header`] finds out for a summary, without a
/// [`Batch`].
pub fn count_and_check(raw: &[u8], start: usize, end: usize) -> (usize, bool) {
    let count = read_i32(raw, start + RECORD_COUNT_AT)
        .and_then(|count| usize::try_from(count).ok())
        .unwrap_or(0);
    let crc = read_i32(raw, start + CRC_AT).map(|crc| u32::from_be_bytes(crc.to_be_bytes()));
    (count, crc == Some(computed_crc(raw, start, end)))
}

fn read_header(c: &mut Cursor<'_>, b: &mut Batch) -> Result<(), FieldError> {
    b.base_offset = c.i64("base_offset")?;
    b.batch_length = c.i32("batch_length")?;
    b.partition_leader_epoch = c.i32("partition_leader_epoch")?;
    b.magic = c.i8("magic")?;
    b.crc = c.u32("crc")?;
    b.attributes = c.i16("attributes")?;
    b.last_offset_delta = c.i32("last_offset_delta")?;
    b.base_timestamp = c.i64("base_timestamp")?;
    b.max_timestamp = c.i64("max_timestamp")?;
    b.producer_id = c.i64("producer_id")?;
    b.producer_epoch = c.i16("producer_epoch")?;
    b.base_sequence = c.i32("base_sequence")?;
    b.record_count = c.i32("records count")?;
    Ok(())
}

/// Decodes `b.record_count` records from `data` into `b`. `origin` is where
/// `data` starts in the record set (0 for a decompressed payload, which
/// `place` then names), so error positions are in the reader's terms.
fn decode_records(data: &[u8], b: &mut Batch, index: usize, origin: usize, place: &str) {
    let mut c = Cursor::new(data);
    let count = match usize::try_from(b.record_count) {
        Ok(n) => n,
        Err(_) => {
            let what = format!("records count {} is negative", b.record_count);
            b.error(index, what);
            0
        }
    };
    // Never trust the count for the allocation: each record takes at least
    // MIN_RECORD bytes, and past MAX_RESERVE the vector grows as records
    // actually turn up (a `Record` is larger than the bytes it came from).
    b.records
        .reserve(count.min(c.remaining() / MIN_RECORD).min(MAX_RESERVE));
    let ctx = RecordsCtx {
        base_offset: b.base_offset,
        base_timestamp: b.base_timestamp,
        control: b.is_control(),
        most_headers: c.remaining() / MIN_HEADER,
    };
    let mut failed = 0usize;
    let mut i = 0usize;
    while i < count && !c.is_empty() {
        let at = c.pos();
        match decode_record(data, &mut c, &ctx, b) {
            Ok(None) => {}
            Ok(Some(e)) => {
                failed += 1;
                if failed <= MAX_RECORD_ERRORS {
                    let e = FieldError {
                        at: e.at + origin,
                        ..e
                    };
                    b.error(
                        index,
                        format_args!("record {i} at byte {}{place}: {e}", at + origin),
                    );
                }
            }
            Err(e) => {
                // The record's own length is unreadable: nothing after it
                // can be found.
                let e = FieldError {
                    at: e.at + origin,
                    ..e
                };
                let what = format!(
                    "record {i} at byte {}{place}: {e}; later records are lost",
                    at + origin
                );
                b.error(index, what);
                return;
            }
        }
        i += 1;
    }
    if failed > MAX_RECORD_ERRORS {
        b.error(
            index,
            format_args!("{} more bad records", failed - MAX_RECORD_ERRORS),
        );
    }
    if i < count {
        let what = format!("records count is {count} but the payload holds only {i} records");
        b.error(index, what);
    } else if !c.is_empty() {
        let what = format!(
            "{} bytes at byte {}{place} follow the {count} records the count claims",
            c.remaining(),
            c.pos() + origin
        );
        b.error(index, what);
    }
}

struct RecordsCtx {
    base_offset: i64,
    base_timestamp: i64,
    control: bool,
    /// The most headers the records' bytes can hold.
    most_headers: usize,
}

/// One record, pushed onto `b.records` (its headers onto `b.headers`). An
/// `Err` means the length prefix itself failed, so the caller cannot
/// continue; an error in the body comes back as `Ok(Some(..))`, and a
/// control record with a bad key is still kept, with `None` as its control.
#[inline]
fn decode_record(
    data: &[u8],
    c: &mut Cursor<'_>,
    ctx: &RecordsCtx,
    b: &mut Batch,
) -> Result<Option<FieldError>, FieldError> {
    let len_at = c.pos();
    let len = c.varint("record length")?;
    let Ok(n) = usize::try_from(len) else {
        return Err(c.error(
            "record length",
            len_at,
            FieldErrorKind::BadLength(i64::from(len)),
        ));
    };
    let mut r = c.sub("record", n)?;
    let headers_before = b.headers.len();
    match record_body(&mut r, ctx, b) {
        Ok(record) => b.records.push(record),
        Err(e) => {
            b.headers.truncate(headers_before);
            return Ok(Some(e));
        }
    }
    if ctx.control {
        let parsed = b
            .records
            .last()
            .map(|r| parse_control(r.key.get(data), r.value.get(data)));
        match parsed {
            Some(Ok(control)) => b.controls.push(Some(control)),
            Some(Err(e)) => {
                b.controls.push(None);
                return Ok(Some(e));
            }
            None => {}
        }
    }
    Ok(None)
}

#[inline]
fn record_body(r: &mut Cursor<'_>, ctx: &RecordsCtx, b: &mut Batch) -> Result<Record, FieldError> {
    let attributes = r.i8("attributes")?;
    let timestamp_delta = r.varlong("timestamp_delta")?;
    let offset_delta = r.varint("offset_delta")?;
    let key = Span::from_range(r.varint_bytes("key")?);
    let value = Span::from_range(r.varint_bytes("value")?);
    let count_at = r.pos();
    let count = r.varint("headers count")?;
    let Ok(count) = usize::try_from(count) else {
        return Err(r.error(
            "headers count",
            count_at,
            FieldErrorKind::BadLength(i64::from(count)),
        ));
    };
    let first_header = u32::try_from(b.headers.len()).unwrap_or(u32::MAX);
    if count > 0 {
        // Records mostly carry as many headers as the first one that has
        // any: room for the whole batch's then, rather than regrowing
        // record by record (never more than the bytes can hold).
        let expected = if b.headers.is_empty() {
            count.saturating_mul(b.records.capacity().max(1))
        } else {
            count
        };
        let room = expected
            .min(ctx.most_headers.saturating_sub(b.headers.len()))
            .min(MAX_RESERVE);
        b.headers.reserve(room);
        for _ in 0..count {
            let key_at = r.pos();
            let Some(key) = r.varint_bytes("header key")? else {
                return Err(r.error("header key", key_at, FieldErrorKind::BadLength(-1)));
            };
            let value = Span::from_range(r.varint_bytes("header value")?);
            b.headers.push(HeaderSpan {
                key: Span::from_range(Some(key)),
                value,
            });
        }
    }
    r.finish("record")?;
    Ok(Record {
        offset: ctx.base_offset.wrapping_add(i64::from(offset_delta)),
        timestamp: ctx.base_timestamp.wrapping_add(timestamp_delta),
        key,
        value,
        first_header,
        header_count: u32::try_from(count).unwrap_or(u32::MAX),
        attributes,
    })
}

/// A control record's key is version i16 + type i16; abort and commit
/// markers have an EndTxnMarker value: version i16 + coordinator_epoch i32.
/// Newer key or value versions may append fields, which are tolerated.
fn parse_control(key: Option<&[u8]>, value: Option<&[u8]>) -> Result<ControlRecord, FieldError> {
    let mut k = Cursor::new(key.unwrap_or_default());
    let version = k.i16("control key version")?;
    let kind = ControlType::from_code(k.i16("control key type")?);
    let mut control = ControlRecord {
        version,
        kind,
        marker_version: None,
        coordinator_epoch: None,
    };
    if kind.is_txn_marker() {
        let mut v = Cursor::new(value.unwrap_or_default());
        control.marker_version = Some(v.i16("control value version")?);
        control.coordinator_epoch = Some(v.i32("coordinator_epoch")?);
    }
    Ok(control)
}

// ---- encoding ---------------------------------------------------------------

/// Bytes of one encoded record body (everything after its length).
fn body_len(r: &RecordSpec, ts_delta: i64, off_delta: i32) -> Result<usize, String> {
    let bytes = |b: &Option<Bytes>| -> Result<usize, String> {
        Ok(match b {
            None => varint_len(-1),
            Some(b) => varint_len(len_i32(b.len())?) + b.len(),
        })
    };
    let mut n =
        1 + varlong_len(ts_delta) + varint_len(off_delta) + bytes(&r.key)? + bytes(&r.value)?;
    n += varint_len(len_i32(r.headers.len())?);
    for (k, v) in &r.headers {
        n += varint_len(len_i32(k.len())?) + k.len() + bytes(v)?;
    }
    Ok(n)
}

pub fn len_i32(n: usize) -> Result<i32, String> {
    i32::try_from(n).map_err(|_| format!("length {n} does not fit in an int32"))
}

fn put_bytes(out: &mut Vec<u8>, b: &Option<Bytes>) {
    match b {
        None => put_varint(out, -1),
        Some(b) => {
            // Lengths were checked by `body_len` before anything was written.
            put_varint(out, i32::try_from(b.len()).unwrap_or(i32::MAX));
            out.extend_from_slice(b);
        }
    }
}

/// Appends one magic 2 batch, filling every field the spec leaves open the
/// way the Java producer does.
pub fn encode(spec: &BatchSpec, out: &mut Vec<u8>) -> Result<(), String> {
    let base_offset = spec
        .base_offset
        .or_else(|| spec.records.first().and_then(|r| r.offset))
        .unwrap_or(0);
    let base_timestamp = spec
        .base_timestamp
        .or_else(|| spec.records.first().and_then(|r| r.timestamp))
        .unwrap_or(0);
    let mut records = Vec::new();
    let mut max_ts: Option<i64> = None;
    let mut last_delta = None;
    for (i, r) in spec.records.iter().enumerate() {
        let at = |e: String| format!("records[{i}]: {e}");
        let off_delta = match r.offset {
            Some(o) => i32::try_from(o.wrapping_sub(base_offset)).map_err(|_| {
                at(format!(
                    "offset {o} is too far from base offset {base_offset}"
                ))
            })?,
            None => len_i32(i).map_err(at)?,
        };
        let ts = r.timestamp.unwrap_or(base_timestamp);
        let ts_delta = ts.wrapping_sub(base_timestamp);
        max_ts = Some(max_ts.map_or(ts, |m| m.max(ts)));
        last_delta = Some(off_delta);
        let n = body_len(r, ts_delta, off_delta).map_err(at)?;
        put_varint(&mut records, len_i32(n).map_err(at)?);
        records.push(r.attributes.unwrap_or(0).to_be_bytes()[0]);
        put_varlong(&mut records, ts_delta);
        put_varint(&mut records, off_delta);
        put_bytes(&mut records, &r.key);
        put_bytes(&mut records, &r.value);
        put_varint(&mut records, len_i32(r.headers.len()).map_err(at)?);
        for (k, v) in &r.headers {
            put_bytes(&mut records, &Some(k.clone()));
            put_bytes(&mut records, v);
        }
    }
    let opts = CompressOptions {
        snappy: spec.snappy_framing,
        lz4_broken_checksum: spec.lz4_broken_checksum.unwrap_or(false),
    };
    let payload = match spec.compression {
        Compression::None | Compression::Unknown(_) => records,
        codec => compression::compress(codec, &records, opts).map_err(|e| e.to_string())?,
    };

    let attributes = spec.attributes.unwrap_or_else(|| spec.attribute_bits());
    let record_count = match spec.record_count {
        Some(n) => n,
        None => len_i32(spec.records.len())?,
    };
    let batch_length = match spec.batch_length {
        Some(n) => n,
        None => len_i32(V2_HEADER - 12 + payload.len())?,
    };
    let start = out.len();
    out.extend_from_slice(&base_offset.to_be_bytes());
    out.extend_from_slice(&batch_length.to_be_bytes());
    out.extend_from_slice(&spec.partition_leader_epoch.to_be_bytes());
    out.push(2);
    let crc_at = out.len();
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&attributes.to_be_bytes());
    out.extend_from_slice(
        &spec
            .last_offset_delta
            .or(last_delta)
            .unwrap_or(0)
            .to_be_bytes(),
    );
    out.extend_from_slice(&base_timestamp.to_be_bytes());
    out.extend_from_slice(
        &spec
            .max_timestamp
            .or(max_ts)
            .unwrap_or(base_timestamp)
            .to_be_bytes(),
    );
    out.extend_from_slice(&spec.producer_id.to_be_bytes());
    out.extend_from_slice(&spec.producer_epoch.to_be_bytes());
    out.extend_from_slice(&spec.base_sequence.to_be_bytes());
    out.extend_from_slice(&record_count.to_be_bytes());
    out.extend_from_slice(&payload);
    let crc = spec
        .crc
        .unwrap_or_else(|| computed_crc(out, start, out.len()));
    if let Some(slot) = out.get_mut(crc_at..crc_at + 4) {
        slot.copy_from_slice(&crc.to_be_bytes());
    }
    Ok(())
}
