//! The JSON form of record sets, both ways. Serializing shows everything the
//! decoder found; [`from_json`] reads the same shape back into
//! [`BatchSpec`]s (every derived field optional) and encodes them.
//!
//! Shape (magic 2):
//! ```text
//! {"batches": [{"magic": 2, "base_offset": 0, "batch_length": 70,
//!    "partition_leader_epoch": -1, "crc": 12345, "crc_ok": true,
//!    "compression": "gzip", "timestamp_type": "create_time",
//!    "transactional": false, "control": false, "last_offset_delta": 0,
//!    "base_timestamp": 0, "max_timestamp": 0, "producer_id": -1,
//!    "producer_epoch": -1, "base_sequence": -1,
//!    "records": [{"offset": 0, "timestamp": 0, "key": "k" | null | {"hex": "00ff"},
//!                 "value": ..., "headers": [{"key": "h", "value": ...}],
//!                 "control": {"type": "commit", "version": 0, "coordinator_epoch": 3}}],
//!    "error": "..."}],
//!  "partial_tail_bytes": 12, "partial_tail_hex": "00000000..."}
//! ```
//! Legacy entries (magic 0/1) use `offset`, `message_size`, `timestamp`
//! (magic 1) and per-record `crc`/`crc_ok` instead of the v2-only fields.
//!
//! Reading it back, every field is optional (see [`BatchSpec`] for the
//! defaults), so `{"batches": [{"compression": "zstd", "records": [{"key":
//! "k", "value": "v"}]}]}` is a whole record set. Any given field is an
//! override — `"crc": 1` sends a bad CRC — with one exception for feeding
//! decoder output back: in a batch or message that has `crc_ok`, `crc` is
//! kept only when `crc_ok` is false, and `batch_length`/`message_size` are
//! recomputed, because re-compressing a payload changes both.

use bytes::Bytes;
use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

use super::compression::{Compression, SnappyFraming};
use super::encode::{BatchSpec, ControlSpec, RecordSpec};
use super::{Batch, ControlRecord, ControlType, RecordRef, RecordSet, TimestampType};
use crate::json::{self, key, JsonSink};

// ---- serializing ------------------------------------------------------------

#[cfg(test)]
pub use crate::value::hex;

/// A key or value: a string when it is readable text, `{"hex": ...}`
/// otherwise. Valid UTF-8 holding control characters other than tab, CR and
/// LF (binary ids, packed integers, control-record keys) counts as binary:
/// shown as `"\u0000\u0000\u0000\u0001"` it would be unreadable.
fn write_blob<S: JsonSink>(w: &mut S, blob: Option<&[u8]>) {
    match blob {
        None => w.null(),
        // The common case, checked in one pass.
        Some(b) if json::is_plain(b) => w.plain_str(b),
        Some(b) => match as_text(b) {
            Some(text) => w.str(text),
            None => {
                w.begin_object();
                w.known_key(key!("hex"));
                w.hex(b);
                w.end_object();
            }
        },
    }
}

fn as_text(b: &[u8]) -> Option<&str> {
    if readable_ascii(b) {
        // ASCII is UTF-8: the check cannot fail.
        return std::str::from_utf8(b).ok();
    }
    let readable = |c: char| !c.is_control() || matches!(c, '\t' | '\n' | '\r');
    std::str::from_utf8(b)
        .ok()
        .filter(|s| s.chars().all(readable))
}

/// Whether `b` is ASCII without control characters other than tab, CR and
/// LF: the common case of keys and values, checked a block at a time
/// without branching per byte (so that it vectorises).
fn readable_ascii(b: &[u8]) -> bool {
    b.chunks(64).all(|block| {
        block.iter().fold(true, |ok, &c| {
            ok & ((0x20..0x7f).contains(&c) | (c == b'\t') | (c == b'\n') | (c == b'\r'))
        })
    })
}

impl RecordSet {
    /// Describes this record set to a JSON sink, in the shape at the top
    /// of this file: the batches and their records, straight from the
    /// decoded spans.
    pub fn write_json<S: JsonSink>(&self, w: &mut S) {
        w.begin_object();
        if !self.decoded {
            w.known_key(key!("undecoded_bytes"));
            w.uint(self.raw.len() as u64);
            w.end_object();
            return;
        }
        w.known_key(key!("batches"));
        w.begin_array();
        for batch in &self.batches {
            write_batch(w, batch);
            w.checkpoint();
        }
        w.end_array();
        if let Some(tail) = self.partial_tail {
            w.known_key(key!("partial_tail_bytes"));
            w.uint(tail.bytes as u64);
            // The cut-off bytes themselves, so the JSON form rebuilds them.
            w.known_key(key!("partial_tail_hex"));
            w.hex(self.raw.get(tail.position..).unwrap_or_default());
        }
        w.end_object();
    }
}

/// `Serialize` gives the same JSON as [`RecordSet::write_json`], through a
/// `serde_json::Value`.
impl Serialize for RecordSet {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        crate::json::to_value(|w| self.write_json(w)).serialize(s)
    }
}

fn write_compression<S: JsonSink>(w: &mut S, c: Compression) {
    match c.name() {
        Some(name) => w.str(name),
        None => w.uint(u64::from(c.code())),
    }
}

/// `crc` and `crc_ok`, and when they differ, the CRC the bytes have.
fn write_crc<S: JsonSink>(w: &mut S, crc: u32, ok: bool, computed: u32) {
    w.known_key(key!("crc"));
    w.uint(u64::from(crc));
    w.known_key(key!("crc_ok"));
    w.bool(ok);
    if !ok {
        w.known_key(key!("crc_computed"));
        w.uint(u64::from(computed));
    }
}

fn write_batch<S: JsonSink>(w: &mut S, batch: &Batch) {
    w.begin_object();
    w.known_key(key!("magic"));
    w.int(i64::from(batch.magic));
    let legacy = batch.is_legacy();
    if legacy {
        w.known_key(key!("offset"));
        w.int(batch.base_offset);
        w.known_key(key!("message_size"));
        w.int(i64::from(batch.batch_length));
    } else {
        w.known_key(key!("base_offset"));
        w.int(batch.base_offset);
        w.known_key(key!("batch_length"));
        w.int(i64::from(batch.batch_length));
        w.known_key(key!("partition_leader_epoch"));
        w.int(i64::from(batch.partition_leader_epoch));
    }
    write_crc(w, batch.crc, batch.crc_ok, batch.crc_computed);
    w.known_key(key!("compression"));
    write_compression(w, batch.compression());
    if batch.magic >= 1 {
        w.known_key(key!("timestamp_type"));
        w.str(batch.timestamp_type().name());
    }
    // Bits the named fields above do not show.
    let known: i16 = if legacy { 0x0f } else { 0x7f };
    if batch.attributes & !known != 0 {
        w.known_key(key!("attributes"));
        w.int(i64::from(batch.attributes));
    }
    if legacy {
        if batch.magic >= 1 {
            w.known_key(key!("timestamp"));
            w.int(batch.max_timestamp);
        }
        if batch.wrapper_key.is_some() {
            w.known_key(key!("key"));
            write_blob(w, batch.wrapper_key.as_deref());
        }
    } else {
        w.known_key(key!("transactional"));
        w.bool(batch.is_transactional());
        w.known_key(key!("control"));
        w.bool(batch.is_control());
        if batch.has_delete_horizon() {
            w.known_key(key!("delete_horizon"));
            w.bool(true);
        }
        w.known_key(key!("last_offset_delta"));
        w.int(i64::from(batch.last_offset_delta));
        w.known_key(key!("base_timestamp"));
        w.int(batch.base_timestamp);
        w.known_key(key!("max_timestamp"));
        w.int(batch.max_timestamp);
        w.known_key(key!("producer_id"));
        w.int(batch.producer_id);
        w.known_key(key!("producer_epoch"));
        w.int(i64::from(batch.producer_epoch));
        w.known_key(key!("base_sequence"));
        w.int(i64::from(batch.base_sequence));
        if usize::try_from(batch.record_count).ok() != Some(batch.records.len()) {
            w.known_key(key!("record_count"));
            w.int(i64::from(batch.record_count));
        }
    }
    // A batch whose header only was read has no records to show;
    // `record_count` above says how many it holds.
    if !batch.headers_only {
        w.known_key(key!("records"));
        w.begin_array();
        for record in batch.iter() {
            write_record(w, record);
            w.checkpoint();
        }
        w.end_array();
    }
    if !batch.errors.is_empty() {
        w.known_key(key!("error"));
        w.str(&batch.errors.join("; "));
    }
    w.end_object();
}

/// The key and value a control record would be rebuilt with.
fn control_spec(c: &ControlRecord) -> ControlSpec {
    ControlSpec {
        kind: c.kind,
        version: c.version,
        marker_version: c.marker_version.unwrap_or(0),
        coordinator_epoch: c.coordinator_epoch.unwrap_or(0),
    }
}

fn write_record<S: JsonSink>(w: &mut S, r: RecordRef<'_>) {
    let batch_magic = r.batch.magic;
    let legacy = r.legacy();
    let control = r.control();
    w.begin_object();
    w.known_key(key!("offset"));
    w.int(r.offset());
    let magic = legacy.map_or(batch_magic, |l| l.magic);
    if magic >= 1 {
        w.known_key(key!("timestamp"));
        w.int(r.timestamp());
    }
    if let Some(l) = legacy {
        if l.magic != batch_magic {
            w.known_key(key!("magic"));
            w.int(i64::from(l.magic));
        }
        if l.attributes != 0 {
            w.known_key(key!("attributes"));
            w.uint(u64::from(l.attributes));
        }
        write_crc(w, l.crc, l.crc_ok, l.crc_computed);
    } else if r.record.attributes != 0 {
        w.known_key(key!("attributes"));
        w.int(i64::from(r.record.attributes));
    }
    // A control record whose key and value are exactly what its parsed
    // form rebuilds shows only the parsed form.
    let canonical = control.is_some_and(|c| {
        let spec = control_spec(&c);
        r.key() == Some(&spec.key()[..]) && r.value() == spec.value().as_deref()
    });
    if !canonical {
        w.known_key(key!("key"));
        write_blob(w, r.key());
        w.known_key(key!("value"));
        write_blob(w, r.value());
    }
    if legacy.is_none() {
        w.known_key(key!("headers"));
        w.begin_array();
        for (key, value) in r.headers() {
            w.begin_object();
            w.known_key(key!("key"));
            write_blob(w, Some(key));
            w.known_key(key!("value"));
            write_blob(w, value);
            w.end_object();
        }
        w.end_array();
    }
    if let Some(c) = control {
        w.known_key(key!("control"));
        write_control(w, c);
    }
    w.end_object();
}

fn write_control<S: JsonSink>(w: &mut S, c: ControlRecord) {
    w.begin_object();
    w.known_key(key!("type"));
    match c.kind.name() {
        Some(name) => w.str(name),
        None => w.int(i64::from(c.kind.code())),
    }
    w.known_key(key!("version"));
    w.int(i64::from(c.version));
    if let Some(v) = c.marker_version.filter(|&v| v != 0) {
        w.known_key(key!("marker_version"));
        w.int(i64::from(v));
    }
    if let Some(e) = c.coordinator_epoch {
        w.known_key(key!("coordinator_epoch"));
        w.int(i64::from(e));
    }
    w.end_object();
}

// ---- reading ----------------------------------------------------------------

/// An object being read, with its JSON path for error messages.
struct Obj<'a> {
    map: &'a Map<String, Value>,
    path: String,
}

impl<'a> Obj<'a> {
    fn new(v: &'a Value, path: String, allowed: &[&str]) -> Result<Obj<'a>, String> {
        let map = v
            .as_object()
            .ok_or_else(|| format!("{path}: expected an object, found {}", kind(v)))?;
        if let Some(k) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(format!(
                "{path}: unknown field \"{k}\" (known: {})",
                allowed.join(", ")
            ));
        }
        Ok(Obj { map, path })
    }

    fn at(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key)
    }

    fn int<T: TryFrom<i128>>(&self, key: &str) -> Result<Option<T>, String> {
        let Some(v) = self.get(key) else {
            return Ok(None);
        };
        let n = v
            .as_i64()
            .map(i128::from)
            .or_else(|| v.as_u64().map(i128::from))
            .ok_or_else(|| format!("{}: expected an integer, found {}", self.at(key), kind(v)))?;
        T::try_from(n).map(Some).map_err(|_| {
            format!(
                "{}: {n} is out of range for {}",
                self.at(key),
                std::any::type_name::<T>()
            )
        })
    }

    fn bool(&self, key: &str) -> Result<Option<bool>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(format!(
                "{}: expected true or false, found {}",
                self.at(key),
                kind(v)
            )),
        }
    }

    fn str(&self, key: &str) -> Result<Option<&'a str>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(v) => Err(format!(
                "{}: expected a string, found {}",
                self.at(key),
                kind(v)
            )),
        }
    }

    fn array(&self, key: &str) -> Result<&'a [Value], String> {
        match self.get(key) {
            None => Ok(&[]),
            Some(Value::Array(a)) => Ok(a),
            Some(v) => Err(format!(
                "{}: expected an array, found {}",
                self.at(key),
                kind(v)
            )),
        }
    }

    /// A key or value: string, null, `{"hex": "..."}`; absent is null.
    fn blob(&self, key: &str) -> Result<Option<Bytes>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => blob_value(v, &self.at(key)),
        }
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn blob_value(v: &Value, path: &str) -> Result<Option<Bytes>, String> {
    let wrong = || {
        format!(
            "{path}: expected a string, null or {{\"hex\": \"...\"}}, found {}",
            kind(v)
        )
    };
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(Bytes::copy_from_slice(s.as_bytes()))),
        Value::Object(m) if m.len() == 1 => match m.get("hex") {
            Some(Value::String(h)) => unhex(h)
                .map(|b| Some(Bytes::from(b)))
                .map_err(|e| format!("{path}.hex: {e}")),
            _ => Err(wrong()),
        },
        _ => Err(wrong()),
    }
}

pub fn unhex(s: &str) -> Result<Vec<u8>, String> {
    let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if digits.len() % 2 != 0 {
        return Err(format!("odd number of hex digits ({})", digits.len()));
    }
    let nibble = |d: u8| -> Result<u8, String> {
        char::from(d)
            .to_digit(16)
            .and_then(|n| u8::try_from(n).ok())
            .ok_or_else(|| format!("\"{}\" is not a hex digit", char::from(d)))
    };
    digits
        .chunks_exact(2)
        .map(|p| match p {
            [hi, lo] => Ok(nibble(*hi)? << 4 | nibble(*lo)?),
            _ => Err("odd number of hex digits".to_string()),
        })
        .collect()
}

const SET_FIELDS: &[&str] = &[
    "batches",
    "partial_tail_bytes",
    "partial_tail_hex",
    "raw_hex",
];
const BATCH_FIELDS: &[&str] = &[
    "magic",
    "base_offset",
    "offset",
    "batch_length",
    "message_size",
    "partition_leader_epoch",
    "crc",
    "crc_ok",
    "crc_computed",
    "compression",
    "timestamp_type",
    "transactional",
    "control",
    "delete_horizon",
    "attributes",
    "last_offset_delta",
    "base_timestamp",
    "max_timestamp",
    "timestamp",
    "producer_id",
    "producer_epoch",
    "base_sequence",
    "record_count",
    "records",
    "key",
    "snappy_framing",
    "lz4_broken_checksum",
    "error",
];
const RECORD_FIELDS: &[&str] = &[
    "offset",
    "timestamp",
    "attributes",
    "key",
    "value",
    "headers",
    "control",
    "magic",
    "crc",
    "crc_ok",
    "crc_computed",
];
const HEADER_FIELDS: &[&str] = &["key", "value"];
const CONTROL_FIELDS: &[&str] = &["type", "version", "marker_version", "coordinator_epoch"];

/// Builds a record set from JSON: `{"batches": [...]}` (with an optional
/// `partial_tail_hex` appended verbatim, as decoding shows a cut-off last
/// entry), a bare array of batches, or `{"raw_hex": "..."}` for bytes given
/// verbatim.
pub fn from_json(v: &Value) -> Result<RecordSet, String> {
    let limits = super::Limits {
        max_decompressed: usize::MAX,
    };
    let (batches, tail) = match v {
        Value::Array(a) => (a.as_slice(), Vec::new()),
        _ => {
            let top = Obj::new(v, String::new(), SET_FIELDS)?;
            if let Some(h) = top.str("raw_hex")? {
                if top.get("batches").is_some() {
                    return Err("raw_hex: give either raw_hex or batches, not both".into());
                }
                let raw = unhex(h).map_err(|e| format!("raw_hex: {e}"))?;
                return Ok(RecordSet::decode(Bytes::from(raw), &limits));
            }
            let tail = match top.str("partial_tail_hex")? {
                Some(h) => unhex(h).map_err(|e| format!("partial_tail_hex: {e}"))?,
                None => Vec::new(),
            };
            (top.array("batches")?, tail)
        }
    };
    let mut out = Vec::new();
    for (i, b) in batches.iter().enumerate() {
        let path = format!("batches[{i}]");
        let spec = batch_spec(b, path.clone())?;
        spec.encode_into(&mut out)
            .map_err(|e| format!("{path}: {e}"))?;
    }
    out.extend_from_slice(&tail);
    Ok(RecordSet::decode(Bytes::from(out), &limits))
}

/// `crc` is an override unless the object is decoder output with a good CRC.
fn crc_override(o: &Obj<'_>) -> Result<Option<u32>, String> {
    let crc = o.int::<u32>("crc")?;
    Ok(match o.bool("crc_ok")? {
        Some(true) => None,
        _ => crc,
    })
}

fn batch_spec(v: &Value, path: String) -> Result<BatchSpec, String> {
    let o = Obj::new(v, path, BATCH_FIELDS)?;
    let mut spec = BatchSpec::default();
    if let Some(m) = o.int::<i8>("magic")? {
        if !(0..=2).contains(&m) {
            return Err(format!(
                "{}: magic {m} cannot be encoded (0, 1 and 2 can)",
                o.at("magic")
            ));
        }
        spec.magic = m;
    }
    let legacy = spec.magic < 2;
    let decoded_form = o.get("crc_ok").is_some();
    let v2_only = [
        "base_offset",
        "batch_length",
        "partition_leader_epoch",
        "transactional",
        "control",
        "delete_horizon",
        "last_offset_delta",
        "base_timestamp",
        "producer_id",
        "producer_epoch",
        "base_sequence",
        "record_count",
    ];
    let legacy_only = ["offset", "message_size", "timestamp", "key"];
    let misplaced = if legacy {
        &v2_only[..]
    } else {
        &legacy_only[..]
    };
    // base_offset is accepted for legacy too, as the wrapper offset.
    if let Some(k) = misplaced
        .iter()
        .find(|k| o.get(k).is_some() && !(legacy && **k == "base_offset"))
    {
        return Err(format!(
            "{}: not a field of a magic {} entry",
            o.at(k),
            spec.magic
        ));
    }

    spec.compression = match o.get("compression") {
        None => Compression::None,
        Some(Value::String(name)) => Compression::from_name(name).ok_or_else(|| {
            format!(
                "{}: unknown compression \"{name}\" (none, gzip, snappy, lz4, zstd, or a code 0-7)",
                o.at("compression")
            )
        })?,
        Some(_) => {
            let code = o.int::<u8>("compression")?.unwrap_or(0);
            if code > 7 {
                return Err(format!(
                    "{}: code {code} does not fit in 3 bits",
                    o.at("compression")
                ));
            }
            Compression::from_code(code)
        }
    };
    spec.timestamp_type = match o.str("timestamp_type")? {
        None | Some("create_time") => TimestampType::CreateTime,
        Some("log_append_time") => TimestampType::LogAppendTime,
        Some(other) => {
            return Err(format!(
                "{}: unknown timestamp type \"{other}\" (create_time, log_append_time)",
                o.at("timestamp_type")
            ))
        }
    };
    spec.snappy_framing = match o.str("snappy_framing")? {
        None | Some("xerial") => SnappyFraming::Xerial,
        Some("raw") => SnappyFraming::Raw,
        Some(other) => {
            return Err(format!(
                "{}: unknown snappy framing \"{other}\" (xerial, raw)",
                o.at("snappy_framing")
            ))
        }
    };
    spec.lz4_broken_checksum = o.bool("lz4_broken_checksum")?;
    spec.attributes = o.int("attributes")?;
    spec.crc = crc_override(&o)?;
    if !decoded_form {
        spec.batch_length = o.int(if legacy {
            "message_size"
        } else {
            "batch_length"
        })?;
    }
    let offset_key = if legacy && o.get("offset").is_some() {
        "offset"
    } else {
        "base_offset"
    };
    spec.base_offset = o.int(offset_key)?;

    let records = o.array("records")?;
    spec.records = Vec::with_capacity(records.len());
    let mut any_control = false;
    for (i, r) in records.iter().enumerate() {
        let (record, is_control) = record_spec(r, format!("{}[{i}]", o.at("records")), legacy)?;
        any_control |= is_control;
        spec.records.push(record);
    }
    if legacy {
        spec.max_timestamp = o.int("timestamp")?;
        spec.wrapper_key = o.blob("key")?;
    } else {
        spec.partition_leader_epoch = o.int("partition_leader_epoch")?.unwrap_or(-1);
        spec.control = o.bool("control")?.unwrap_or(any_control);
        // Transaction markers are written in transactional control batches.
        spec.transactional = o.bool("transactional")?.unwrap_or(any_control);
        spec.delete_horizon = o.bool("delete_horizon")?.unwrap_or(false);
        spec.last_offset_delta = o.int("last_offset_delta")?;
        spec.base_timestamp = o.int("base_timestamp")?;
        spec.max_timestamp = o.int("max_timestamp")?;
        spec.producer_id = o.int("producer_id")?.unwrap_or(-1);
        spec.producer_epoch = o.int("producer_epoch")?.unwrap_or(-1);
        spec.base_sequence = o.int("base_sequence")?.unwrap_or(-1);
        spec.record_count = o.int("record_count")?;
    }
    Ok(spec)
}

/// One record; also says whether it was given as a control record.
fn record_spec(v: &Value, path: String, legacy: bool) -> Result<(RecordSpec, bool), String> {
    let o = Obj::new(v, path, RECORD_FIELDS)?;
    let misplaced: &[&str] = if legacy {
        &["headers", "control"]
    } else {
        &["magic", "crc", "crc_ok", "crc_computed"]
    };
    if let Some(k) = misplaced.iter().find(|k| o.get(k).is_some()) {
        let which = if legacy {
            "legacy message"
        } else {
            "magic 2 record"
        };
        return Err(format!("{}: not a field of a {which}", o.at(k)));
    }
    let mut r = RecordSpec {
        offset: o.int("offset")?,
        timestamp: o.int("timestamp")?,
        key: o.blob("key")?,
        value: o.blob("value")?,
        ..RecordSpec::default()
    };
    if legacy {
        r.magic = o.int("magic")?;
        r.crc = crc_override(&o)?;
        // Legacy attributes are an unsigned byte on display.
        r.attributes = o.int::<u8>("attributes")?.map(|a| i8::from_be_bytes([a]));
    } else {
        r.attributes = o.int("attributes")?;
    }
    for (i, h) in o.array("headers")?.iter().enumerate() {
        let h = Obj::new(h, format!("{}[{i}]", o.at("headers")), HEADER_FIELDS)?;
        let key = match h.get("key") {
            None => return Err(format!("{}: a header needs a key", h.path)),
            Some(k) => blob_value(k, &h.at("key"))?
                .ok_or_else(|| format!("{}: header keys cannot be null", h.at("key")))?,
        };
        r.headers.push((key, h.blob("value")?));
    }
    let Some(c) = o.get("control") else {
        return Ok((r, false));
    };
    let c = Obj::new(c, o.at("control"), CONTROL_FIELDS)?;
    let kind = match c.get("type") {
        Some(Value::String(name)) => ControlType::from_name(name).ok_or_else(|| {
            format!("{}: unknown control type \"{name}\" (abort, commit, leader_change, snapshot_header, snapshot_footer, or a number)", c.at("type"))
        })?,
        Some(_) => ControlType::from_code(c.int("type")?.unwrap_or(0)),
        None => return Err(format!("{}: a control record needs a type", c.path)),
    };
    let control = ControlSpec {
        kind,
        version: c.int("version")?.unwrap_or(0),
        marker_version: c.int("marker_version")?.unwrap_or(0),
        coordinator_epoch: c.int("coordinator_epoch")?.unwrap_or(0),
    };
    // Explicit key/value win, so a suite can send a malformed marker.
    if o.get("key").is_none() {
        r.key = Some(control.key());
    }
    if o.get("value").is_none() {
        r.value = control.value();
    }
    Ok((r, true))
}

#[cfg(test)]
mod text_tests {
    use super::as_text;

    /// The char-by-char rule `as_text` must agree with.
    fn reference(b: &[u8]) -> Option<&str> {
        let readable = |c: char| !c.is_control() || matches!(c, '\t' | '\n' | '\r');
        std::str::from_utf8(b)
            .ok()
            .filter(|s| s.chars().all(readable))
    }

    #[test]
    fn ascii_fast_path_agrees_with_the_char_check() {
        for byte in 0..=255u8 {
            for at in [0, 1, 63, 64, 65, 199] {
                let mut text = vec![b'a'; 200];
                text[at] = byte;
                assert_eq!(as_text(&text), reference(&text), "byte {byte:#04x} at {at}");
            }
        }
        for text in ["", "tab\tline\nret\r", "caf\u{e9}", "\u{85}next", "x\u{7f}"] {
            assert_eq!(
                as_text(text.as_bytes()),
                reference(text.as_bytes()),
                "{text:?}"
            );
        }
    }
}
