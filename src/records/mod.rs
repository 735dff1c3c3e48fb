//! Kafka record sets: the `records` bytes inside Produce and Fetch messages.
//! This module owns their decoding and encoding in every on-wire form:
//! record batches (magic 2, KIP-98) and the legacy message sets (magic 0 and
//! 1), with gzip, snappy, lz4 and zstd payloads and their CRC checks.
//!
//! Decoding never fails as a whole: a record set is cut into entries by the
//! offset/length prefix every magic shares, each entry is decoded on its own,
//! and whatever is wrong with one (bad CRC, corrupt payload, bad record) is
//! written into that batch's `errors` while later batches still decode. A
//! final entry cut short is normal at the end of a Fetch response (brokers
//! stop at `max_bytes`) and is reported as [`PartialTail`], not as an error.
//! The original bytes are kept in [`RecordSet::raw`], so re-encoding a
//! decoded message is byte-for-byte lossless.
//!
//! Decoding is built for throughput: a batch keeps one `Bytes` handle on its
//! records (a slice of `raw`, or the decompressed payload), and each record
//! is a small fixed-size struct whose key, value and headers are [`Span`]s
//! of it, so nothing is allocated or reference-counted per record;
//! [`Batch::iter`] gives views with the bytes attached. Every count read
//! from the wire is checked against the bytes that remain before anything
//! is allocated for it, and decompression is capped by [`Limits`].
//!
//! The JSON form (both ways) is described in `json.rs`.

mod batch;
mod compression;
mod cursor;
mod encode;
mod json;
mod legacy;
mod lz4;
#[cfg(test)]
mod tests;

use std::fmt;

use bytes::Bytes;

use crate::summary::RecordTally;

pub use compression::{Budget, CodecError, CompressOptions, Compression, SnappyFraming};
pub use encode::{BatchSpec, ControlSpec, RecordSpec};
pub use lz4::xxh32;

/// Bounds on the work one record set may cause.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Total decompressed bytes allowed per record set, over all batches;
    /// when a whole message is decoded (`codec`), over all its record sets,
    /// so that a frame of many small bombs cannot multiply the limit.
    pub max_decompressed: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_decompressed: 64 * 1024 * 1024,
        }
    }
}

/// Bytes of the offset and length fields every entry starts with.
pub const LOG_OVERHEAD: usize = 12;
/// The magic byte sits at this offset in every entry, whatever its format.
pub const MAGIC_OFFSET: usize = 16;

/// A record set: the raw bytes and, when decoded, the batches in them.
#[derive(Clone, Debug, Default)]
pub struct RecordSet {
    /// The exact bytes of the record set, written back unchanged on encode.
    pub raw: Bytes,
    /// One entry per batch (magic 2) or top-level message (magic 0/1).
    pub batches: Vec<Batch>,
    /// A last entry the bytes end in the middle of.
    pub partial_tail: Option<PartialTail>,
    /// False for [`RecordSet::undecoded`]: only `raw` is meaningful.
    pub decoded: bool,
}

/// A final entry cut short, as Fetch responses may end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartialTail {
    /// Where the entry starts in the record set.
    pub position: usize,
    /// How many of its bytes are present.
    pub bytes: usize,
    /// Its full size, when at least the length field is present.
    pub claimed: Option<u64>,
}

/// The timestamp type in attribute bit 3 (magic 1 and 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TimestampType {
    #[default]
    CreateTime,
    LogAppendTime,
}

impl TimestampType {
    pub fn name(self) -> &'static str {
        match self {
            TimestampType::CreateTime => "create_time",
            TimestampType::LogAppendTime => "log_append_time",
        }
    }
}

/// One record batch (magic 2) or one top-level legacy message (magic 0/1).
///
/// For legacy entries the v2-only fields hold Kafka's "none" values (-1),
/// `base_offset` is the message's own offset (for a compressed wrapper the
/// offset of its last inner message), `batch_length` is the message size,
/// `base_timestamp` and `max_timestamp` are the message timestamp (magic 1;
/// -1 for magic 0), and `records` holds the message itself, or for a
/// compressed wrapper the inner messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch {
    /// Where the entry starts in the record set.
    pub position: usize,
    /// Bytes of the whole entry, from its offset field on.
    pub size: usize,
    pub magic: i8,
    pub base_offset: i64,
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub crc: u32,
    /// What the CRC should have been, were it correct.
    pub crc_computed: u32,
    pub crc_ok: bool,
    /// The CRC was computed (its header could be read): `crc_ok` then says
    /// whether it matches.
    pub crc_checked: bool,
    /// int16 for magic 2; the int8 attributes, zero-extended, for magic 0/1.
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    /// The records count as the header states it (magic 2).
    pub record_count: i32,
    /// The bytes the records' spans point into: the records part of `raw`,
    /// or the decompressed payload (legacy: the message or the inner set).
    pub data: Bytes,
    pub records: Vec<Record>,
    /// Every record's headers, in order; see [`Record::first_header`].
    pub headers: Vec<HeaderSpan>,
    /// Control batches: each record's parsed key and value (None when they
    /// do not parse), parallel to `records`. Empty otherwise.
    pub controls: Vec<Option<ControlRecord>>,
    /// Legacy entries: each message's own fields, parallel to `records`.
    pub legacy: Vec<LegacyMessage>,
    /// The key of a legacy compressed wrapper (normally null).
    pub wrapper_key: Option<Bytes>,
    /// Everything wrong with this entry, each saying where.
    pub errors: Vec<String>,
    /// Only the header was read and the CRC checked
    /// ([`RecordSet::decode_headers_within`]): `records` is empty, `data`
    /// too, and [`Batch::count`] is the header's `record_count`.
    pub headers_only: bool,
}

impl Batch {
    /// A batch with only its position known; decoders fill in the rest.
    fn empty(position: usize, size: usize) -> Batch {
        Batch {
            position,
            size,
            magic: -1,
            base_offset: -1,
            batch_length: -1,
            partition_leader_epoch: -1,
            crc: 0,
            crc_computed: 0,
            crc_ok: false,
            crc_checked: false,
            attributes: 0,
            last_offset_delta: -1,
            base_timestamp: -1,
            max_timestamp: -1,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            record_count: 0,
            data: Bytes::new(),
            records: Vec::new(),
            headers: Vec::new(),
            controls: Vec::new(),
            legacy: Vec::new(),
            wrapper_key: None,
            errors: Vec::new(),
            headers_only: false,
        }
    }

    /// Whether a CRC this entry states does not match its bytes: the
    /// batch's, or (magic 0/1) that of a message inside a wrapper.
    pub fn crc_mismatch(&self) -> bool {
        (self.crc_checked && !self.crc_ok) || self.legacy.iter().any(|message| !message.crc_ok)
    }

    /// The records in this entry: those decoded, or for a batch whose
    /// header only was read, the count the header states.
    pub fn count(&self) -> usize {
        if self.headers_only {
            usize::try_from(self.record_count).unwrap_or(0)
        } else {
            self.records.len()
        }
    }

    pub fn is_legacy(&self) -> bool {
        self.magic < 2
    }

    pub fn compression(&self) -> Compression {
        Compression::from_code((self.attributes & 0x07) as u8)
    }

    pub fn timestamp_type(&self) -> TimestampType {
        if self.magic >= 1 && self.attributes & 0x08 != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        }
    }

    pub fn is_transactional(&self) -> bool {
        self.magic >= 2 && self.attributes & 0x10 != 0
    }

    pub fn is_control(&self) -> bool {
        self.magic >= 2 && self.attributes & 0x20 != 0
    }

    /// KIP-534: `base_timestamp` holds the delete horizon.
    pub fn has_delete_horizon(&self) -> bool {
        self.magic >= 2 && self.attributes & 0x40 != 0
    }

    /// Records an error, prefixed with where this batch is.
    fn error(&mut self, index: usize, what: impl fmt::Display) {
        self.errors
            .push(format!("batch {index} at byte {}: {what}", self.position));
    }

    /// The records with their bytes, control and legacy fields attached.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = RecordRef<'_>> + '_ {
        self.records
            .iter()
            .enumerate()
            .map(move |(index, record)| RecordRef {
                batch: self,
                index,
                record,
            })
    }

    pub fn record(&self, index: usize) -> Option<RecordRef<'_>> {
        Some(RecordRef {
            batch: self,
            index,
            record: self.records.get(index)?,
        })
    }
}

/// Where a key, value or header lies in its batch's `data`, or null.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Span {
    start: u32,
    /// `u32::MAX` marks null.
    len: u32,
}

impl Default for Span {
    fn default() -> Span {
        Span::NULL
    }
}

impl Span {
    pub const NULL: Span = Span {
        start: 0,
        len: u32::MAX,
    };

    pub fn new(start: u32, len: u32) -> Span {
        Span { start, len }
    }

    /// A span from a cursor's byte range (None is null). Record buffers are
    /// kept below 4 GiB, so positions fit; were one not to, the span would
    /// point outside the buffer and read as null rather than wrong bytes.
    #[inline]
    pub fn from_range(range: Option<(usize, usize)>) -> Span {
        match range {
            None => Span::NULL,
            Some((a, b)) => Span {
                start: u32::try_from(a).unwrap_or(u32::MAX),
                len: u32::try_from(b.saturating_sub(a)).unwrap_or(u32::MAX - 1),
            },
        }
    }

    pub fn is_null(self) -> bool {
        self.len == u32::MAX
    }

    /// The bytes in `data`, or None for null (or a span outside `data`).
    #[inline]
    pub fn get(self, data: &[u8]) -> Option<&[u8]> {
        if self.is_null() {
            return None;
        }
        let start = usize::try_from(self.start).ok()?;
        let end = start.checked_add(usize::try_from(self.len).ok()?)?;
        data.get(start..end)
    }

    /// The same bytes as a zero-copy `Bytes`.
    pub fn bytes(self, data: &Bytes) -> Option<Bytes> {
        let s = self.get(data)?;
        Some(data.slice_ref(s))
    }
}

/// One record, or one legacy message: fixed-size, its bytes held as spans
/// of [`Batch::data`] so that decoding allocates nothing per record. Use
/// [`Batch::iter`] for a view with the bytes attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Record {
    /// Absolute offset (base offset plus delta; legacy: resolved as Kafka does).
    pub offset: i64,
    /// Base timestamp plus delta, as written (for log-append-time batches
    /// Kafka readers substitute the batch's `max_timestamp`). -1 for magic 0.
    pub timestamp: i64,
    pub key: Span,
    pub value: Span,
    /// This record's headers are `batch.headers[first_header..][..header_count]`.
    pub first_header: u32,
    pub header_count: u32,
    /// Magic 2 record attributes (unused by Kafka so far); 0 for legacy,
    /// whose attributes are in [`LegacyMessage`].
    pub attributes: i8,
}

/// A header's key and value spans.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeaderSpan {
    pub key: Span,
    pub value: Span,
}

/// A record together with its batch, for reading its bytes.
#[derive(Clone, Copy, Debug)]
pub struct RecordRef<'a> {
    pub batch: &'a Batch,
    pub index: usize,
    pub record: &'a Record,
}

impl<'a> RecordRef<'a> {
    pub fn offset(&self) -> i64 {
        self.record.offset
    }

    pub fn timestamp(&self) -> i64 {
        self.record.timestamp
    }

    pub fn key(&self) -> Option<&'a [u8]> {
        self.record.key.get(&self.batch.data)
    }

    pub fn value(&self) -> Option<&'a [u8]> {
        self.record.value.get(&self.batch.data)
    }

    /// The key as a zero-copy `Bytes`.
    pub fn key_bytes(&self) -> Option<Bytes> {
        self.record.key.bytes(&self.batch.data)
    }

    /// The value as a zero-copy `Bytes`.
    pub fn value_bytes(&self) -> Option<Bytes> {
        self.record.value.bytes(&self.batch.data)
    }

    /// Header keys and values, in order.
    pub fn headers(&self) -> impl Iterator<Item = (&'a [u8], Option<&'a [u8]>)> + 'a {
        let data: &'a [u8] = &self.batch.data;
        let first = usize::try_from(self.record.first_header).unwrap_or(usize::MAX);
        let count = usize::try_from(self.record.header_count).unwrap_or(0);
        self.batch
            .headers
            .get(first..)
            .unwrap_or_default()
            .iter()
            .take(count)
            .map(move |h| (h.key.get(data).unwrap_or_default(), h.value.get(data)))
    }

    /// The parsed control key/value, for records of control batches.
    pub fn control(&self) -> Option<ControlRecord> {
        self.batch.controls.get(self.index).copied().flatten()
    }

    /// The per-message fields of a legacy message.
    pub fn legacy(&self) -> Option<LegacyMessage> {
        self.batch.legacy.get(self.index).copied()
    }
}

/// The fields a legacy (magic 0/1) message has on its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LegacyMessage {
    pub magic: i8,
    pub attributes: u8,
    pub crc: u32,
    pub crc_computed: u32,
    pub crc_ok: bool,
}

/// The type in a control record's key (KIP-98; the KRaft types of KIP-595
/// and KIP-630 share the numbering). Unknown types keep their number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ControlType {
    Abort,
    Commit,
    LeaderChange,
    SnapshotHeader,
    SnapshotFooter,
    Unknown(i16),
}

impl ControlType {
    pub fn from_code(code: i16) -> ControlType {
        match code {
            0 => ControlType::Abort,
            1 => ControlType::Commit,
            2 => ControlType::LeaderChange,
            3 => ControlType::SnapshotHeader,
            4 => ControlType::SnapshotFooter,
            n => ControlType::Unknown(n),
        }
    }

    pub fn code(self) -> i16 {
        match self {
            ControlType::Abort => 0,
            ControlType::Commit => 1,
            ControlType::LeaderChange => 2,
            ControlType::SnapshotHeader => 3,
            ControlType::SnapshotFooter => 4,
            ControlType::Unknown(n) => n,
        }
    }

    pub fn name(self) -> Option<&'static str> {
        match self {
            ControlType::Abort => Some("abort"),
            ControlType::Commit => Some("commit"),
            ControlType::LeaderChange => Some("leader_change"),
            ControlType::SnapshotHeader => Some("snapshot_header"),
            ControlType::SnapshotFooter => Some("snapshot_footer"),
            ControlType::Unknown(_) => None,
        }
    }

    pub fn from_name(name: &str) -> Option<ControlType> {
        (0..=4)
            .map(ControlType::from_code)
            .find(|t| t.name() == Some(name))
    }

    /// Abort and commit markers carry an end-transaction value.
    pub fn is_txn_marker(self) -> bool {
        matches!(self, ControlType::Abort | ControlType::Commit)
    }
}

/// A control record's key, and for transaction markers its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ControlRecord {
    pub version: i16,
    pub kind: ControlType,
    /// The EndTxnMarker value's version (abort/commit only).
    pub marker_version: Option<i16>,
    pub coordinator_epoch: Option<i32>,
}

impl RecordSet {
    /// Decodes every entry. Never fails: problems are kept per batch.
    pub fn decode(raw: Bytes, limits: &Limits) -> RecordSet {
        RecordSet::decode_within(raw, &mut Budget::new(limits.max_decompressed))
    }

    /// Decodes every entry, charging decompressed bytes to `budget`, which
    /// may be shared by every record set of a message.
    pub fn decode_within(raw: Bytes, budget: &mut Budget) -> RecordSet {
        RecordSet::decode_entries(raw, budget, false)
    }

    /// Reads the header of every magic 2 batch and checks its CRC, without
    /// decompressing or walking its records: record counts and sizes stay
    /// exact (for summaries) at the cost of a CRC-32C pass. Legacy entries
    /// (magic 0/1) are decoded whole, since a compressed wrapper states no
    /// count of the messages inside; they are rare and small.
    pub fn decode_headers_within(raw: Bytes, budget: &mut Budget) -> RecordSet {
        RecordSet::decode_entries(raw, budget, true)
    }

    /// What [`RecordSet::decode_headers_within`] would count for a summary
    /// ([`RecordTally::of`]), read straight from the batch headers without
    /// building the set: for a set of magic 2 batches, the last maybe cut
    /// short, which is nearly every one. `None` for any other set, which
    /// has to be decoded to be counted.
    pub fn tally_headers(raw: &[u8]) -> Option<RecordTally> {
        let mut tally = RecordTally {
            bytes: raw.len() as u64,
            ..RecordTally::default()
        };
        let mut pos = 0;
        while pos < raw.len() {
            match frame(raw, pos) {
                Framed::NeedMore(_) => break,
                Framed::Entry { end, magic: 2 } => {
                    let (count, crc_ok) = batch::count_and_check(raw, pos, end);
                    tally.batches += 1;
                    tally.records += count as u64;
                    tally.bad_crc += u64::from(!crc_ok);
                    pos = end;
                }
                Framed::Entry { .. } | Framed::Malformed(_) => return None,
            }
        }
        Some(tally)
    }

    fn decode_entries(raw: Bytes, budget: &mut Budget, headers_only: bool) -> RecordSet {
        // Most record sets hold one batch, and a `Batch` is large: room for
        // one, not the four a first push makes.
        let mut batches = Vec::with_capacity(usize::from(!raw.is_empty()));
        let mut partial_tail = None;
        let mut pos = 0;
        while pos < raw.len() {
            let index = batches.len();
            match frame(&raw, pos) {
                Framed::NeedMore(tail) => {
                    partial_tail = Some(tail);
                    break;
                }
                Framed::Malformed(what) => {
                    let mut batch = Batch::empty(pos, raw.len() - pos);
                    read_prefix(&raw, &mut batch);
                    batch.error(index, what);
                    batches.push(batch);
                    break;
                }
                Framed::Entry { end, magic } => {
                    let batch = match magic {
                        2 if headers_only => batch::decode_header(&raw, pos, end, index),
                        2 => batch::decode(&raw, pos, end, index, budget),
                        0 | 1 => legacy::decode(&raw, pos, end, index, budget),
                        _ => {
                            let mut b = Batch::empty(pos, end - pos);
                            read_prefix(&raw, &mut b);
                            b.error(
                                index,
                                format_args!("unsupported magic {magic}; entry skipped"),
                            );
                            b
                        }
                    };
                    batches.push(batch);
                    pos = end;
                }
            }
        }
        RecordSet {
            raw,
            batches,
            partial_tail,
            decoded: true,
        }
    }

    /// Keeps the bytes without looking at them (the fast path).
    pub fn undecoded(raw: Bytes) -> RecordSet {
        RecordSet {
            raw,
            batches: Vec::new(),
            partial_tail: None,
            decoded: false,
        }
    }

    /// Builds a record set from its JSON form (see `json.rs`); the batches are
    /// encoded into `raw` and decoded back into `batches`. Errors name the
    /// JSON path at fault.
    pub fn from_json(value: &serde_json::Value) -> Result<RecordSet, String> {
        json::from_json(value)
    }

    /// Encodes batches given as specs, then decodes the result.
    pub fn encode(specs: &[BatchSpec]) -> Result<RecordSet, String> {
        let mut out = Vec::new();
        for (i, spec) in specs.iter().enumerate() {
            spec.encode_into(&mut out)
                .map_err(|e| format!("batches[{i}]: {e}"))?;
        }
        Ok(RecordSet::decode(
            Bytes::from(out),
            &Limits {
                max_decompressed: usize::MAX,
            },
        ))
    }

    /// Every record of every batch, in order.
    pub fn records(&self) -> impl Iterator<Item = RecordRef<'_>> + '_ {
        self.batches.iter().flat_map(|b| b.iter())
    }

    /// Records over all batches (see [`Batch::count`]; 0 when undecoded).
    pub fn record_count(&self) -> usize {
        self.batches.iter().map(Batch::count).sum()
    }

    /// Entries whose CRC, or that of a message inside, does not match.
    pub fn crc_mismatches(&self) -> usize {
        self.batches
            .iter()
            .filter(|batch| batch.crc_mismatch())
            .count()
    }

    /// Every problem found, each naming batch, byte offset and field. A
    /// partial tail is not a problem.
    pub fn problems(&self) -> impl Iterator<Item = &str> + '_ {
        self.batches
            .iter()
            .flat_map(|b| b.errors.iter().map(String::as_str))
    }

    /// Bytes of a final entry cut short (0 when there is none).
    pub fn partial_tail_bytes(&self) -> usize {
        self.partial_tail.map_or(0, |t| t.bytes)
    }
}

/// What the shared entry prefix says about the bytes at one position.
enum Framed {
    Entry {
        end: usize,
        magic: i8,
    },
    NeedMore(PartialTail),
    /// The entry cannot be framed, so nothing after it can be found.
    Malformed(String),
}

/// The smallest entry (prefix included) each magic allows.
fn min_entry_size(magic: i8) -> Option<usize> {
    match magic {
        0 => Some(legacy::V0_HEADER),
        1 => Some(legacy::V1_HEADER),
        2 => Some(batch::V2_HEADER),
        _ => None,
    }
}

fn frame(raw: &[u8], pos: usize) -> Framed {
    let have = raw.len() - pos;
    let mut c = cursor::Cursor::window(raw, pos, raw.len());
    let (Ok(_offset), Ok(length)) = (c.i64("offset"), c.i32("length")) else {
        return Framed::NeedMore(PartialTail {
            position: pos,
            bytes: have,
            claimed: None,
        });
    };
    let Ok(body) = usize::try_from(length) else {
        let what = format!("negative length {length}; the remaining {have} bytes cannot be framed");
        return Framed::Malformed(what);
    };
    let size = LOG_OVERHEAD + body;
    let magic = raw.get(pos + MAGIC_OFFSET).map(|&m| i8::from_be_bytes([m]));
    if let Some(min) = magic.and_then(min_entry_size) {
        if size < min {
            let what = format!(
                "length {length} is below the {} bytes a magic {} entry needs; the remaining {have} bytes cannot be framed",
                min - LOG_OVERHEAD,
                magic.unwrap_or(-1),
            );
            return Framed::Malformed(what);
        }
    }
    if size > have {
        return Framed::NeedMore(PartialTail {
            position: pos,
            bytes: have,
            claimed: Some(size as u64),
        });
    }
    match magic {
        Some(magic) if size > MAGIC_OFFSET => Framed::Entry {
            end: pos + size,
            magic,
        },
        _ => {
            let what = format!("length {length} is too short to hold a magic byte; the remaining {have} bytes cannot be framed");
            Framed::Malformed(what)
        }
    }
}

/// Fills offset, length and magic from whatever of them is present.
fn read_prefix(raw: &[u8], b: &mut Batch) {
    let mut c = cursor::Cursor::window(raw, b.position, raw.len());
    if let Ok(v) = c.i64("offset") {
        b.base_offset = v;
    }
    if let Ok(v) = c.i32("length") {
        b.batch_length = v;
    }
    if let Some(&m) = raw.get(b.position + MAGIC_OFFSET) {
        b.magic = i8::from_be_bytes([m]);
    }
}
