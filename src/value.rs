//! The generic tree a decoded Kafka message becomes, and its JSON form.
//!
//! A tree is schema-agnostic: integers of every width are `Int`, and field
//! names are the schema's `&'static str`s. The codec walks it together with
//! the schema, so the tree needs no type tags of its own. Tagged fields that
//! were not on the wire are simply absent, and tags the schema does not know
//! keep their raw bytes, which makes decode-then-encode lossless.

use bytes::Bytes;
use serde::ser::{Serialize, Serializer};

use crate::json::{key, JsonSink};

use crate::records::RecordSet;

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    /// Any integer type: int8 to int64, uint16, uint32.
    Int(i64),
    Float(f64),
    String(String),
    Bytes(Bytes),
    Uuid([u8; 16]),
    Array(Vec<Value>),
    Struct(Struct),
    Records(Box<RecordSet>),
}

/// Two record sets are equal when their wire bytes are: the decoded view is
/// a function of them.
impl PartialEq for RecordSet {
    fn eq(&self, other: &RecordSet) -> bool {
        self.raw == other.raw
    }
}

/// A struct's fields in wire order (tagged fields last, in tag order).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Struct {
    pub fields: Vec<Field>,
    /// Tagged fields whose tag the schema does not know, kept verbatim.
    pub unknown_tags: Vec<RawTag>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Field {
    pub name: &'static str,
    pub value: Value,
}

#[derive(Clone, Debug, PartialEq)]
pub struct RawTag {
    pub tag: u32,
    pub data: Bytes,
}

impl Struct {
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.fields
            .iter()
            .find(|field| field.name == name)
            .map(|field| &field.value)
    }

    pub fn get_mut(&mut self, name: &str) -> Option<&mut Value> {
        self.fields
            .iter_mut()
            .find(|field| field.name == name)
            .map(|field| &mut field.value)
    }

    pub fn push(&mut self, name: &'static str, value: Value) {
        self.fields.push(Field { name, value });
    }

    /// Follows a dotted path of field names and array indexes, for example
    /// `responses.0.partitions.0.error_code`.
    pub fn lookup(&self, path: &str) -> Option<&Value> {
        let mut parts = path.split('.');
        let mut current = self.get(parts.next()?)?;
        for part in parts {
            current = match current {
                Value::Struct(inner) => inner.get(part)?,
                Value::Array(items) => items.get(part.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        Some(current)
    }

    pub fn int(&self, name: &str) -> Option<i64> {
        self.get(name).and_then(Value::as_int)
    }

    pub fn str(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(Value::as_str)
    }
}

impl Value {
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(value) => Some(*value),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(text) => Some(text),
            _ => None,
        }
    }

    pub fn as_struct(&self) -> Option<&Struct> {
        match self {
            Value::Struct(inner) => Some(inner),
            _ => None,
        }
    }

    pub fn as_array(&self) -> &[Value] {
        match self {
            Value::Array(items) => items,
            _ => &[],
        }
    }
}

impl Value {
    /// Describes this value to a JSON sink: integers and floats as numbers,
    /// bytes as hex, UUIDs in Kafka's base64, record sets as in
    /// `records` (see its `json.rs`).
    pub fn write_json<S: JsonSink>(&self, w: &mut S) {
        match self {
            Value::Null => w.null(),
            Value::Bool(value) => w.bool(*value),
            Value::Int(value) => w.int(*value),
            Value::Float(value) => w.float(*value),
            Value::String(text) => w.str(text),
            Value::Bytes(bytes) => w.hex(bytes),
            Value::Uuid(uuid) => {
                let chars = uuid_base64_chars(uuid);
                // Base64 characters are ASCII.
                w.str(std::str::from_utf8(&chars).unwrap_or_default());
            }
            Value::Array(items) => {
                w.begin_array();
                for item in items {
                    item.write_json(w);
                    w.checkpoint();
                }
                w.end_array();
            }
            Value::Struct(inner) => inner.write_json(w),
            Value::Records(records) => records.write_json(w),
        }
    }
}

/// The JSON key under which unknown tagged fields appear.
pub const UNKNOWN_TAGS_KEY: &str = "_unknown_tags";

impl Struct {
    /// Describes this struct to a JSON sink: an object of its fields in
    /// wire order, then unknown tags as `[{"tag": N, "data": "hex"}]`.
    pub fn write_json<S: JsonSink>(&self, w: &mut S) {
        w.begin_object();
        for field in &self.fields {
            w.key(field.name);
            field.value.write_json(w);
        }
        if !self.unknown_tags.is_empty() {
            w.key(UNKNOWN_TAGS_KEY);
            w.begin_array();
            for raw in &self.unknown_tags {
                w.begin_object();
                w.known_key(key!("tag"));
                w.uint(u64::from(raw.tag));
                w.known_key(key!("data"));
                w.hex(&raw.data);
                w.end_object();
            }
            w.end_array();
        }
        w.end_object();
    }
}

/// `Serialize` gives the same JSON as [`Value::write_json`], through a
/// `serde_json::Value`: for tests and other callers that are not hot.
impl Serialize for Value {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        crate::json::to_value(|w| self.write_json(w)).serialize(serializer)
    }
}

impl Serialize for Struct {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        crate::json::to_value(|w| self.write_json(w)).serialize(serializer)
    }
}

/// Lowercase hex, the JSON form of `bytes` fields.
pub fn hex(bytes: &[u8]) -> String {
    let mut out = Vec::with_capacity(bytes.len() * 2);
    crate::json::write_hex(&mut out, bytes);
    // Hex digits are ASCII.
    String::from_utf8(out).unwrap_or_default()
}

/// Parses hex, ignoring ASCII whitespace.
pub fn parse_hex(text: &str) -> Result<Vec<u8>, String> {
    let digits: Vec<u8> = text
        .bytes()
        .filter(|byte| !byte.is_ascii_whitespace())
        .collect();
    if digits.len() % 2 != 0 {
        return Err(format!("odd number of hex digits ({})", digits.len()));
    }
    digits
        .chunks(2)
        .enumerate()
        .map(|(index, pair)| {
            let high = hex_digit(pair[0]);
            let low = hex_digit(pair[1]);
            match (high, low) {
                (Some(high), Some(low)) => Ok(high << 4 | low),
                _ => Err(format!("invalid hex digit near byte {index}")),
            }
        })
        .collect()
}

fn hex_digit(byte: u8) -> Option<u8> {
    char::from(byte).to_digit(16).map(|digit| digit as u8)
}

const BASE64_URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Kafka shows UUIDs (topic ids, directory ids) as URL-safe base64 without
/// padding, 22 characters; kwire does the same.
pub fn uuid_to_base64(uuid: &[u8; 16]) -> String {
    uuid_base64_chars(uuid)
        .iter()
        .map(|&c| char::from(c))
        .collect()
}

/// The 22 characters of [`uuid_to_base64`].
fn uuid_base64_chars(uuid: &[u8; 16]) -> [u8; 22] {
    // 22 characters of 6 bits carry 132 bits: the 128 bits, then 4 zero bits.
    let bits = u128::from_be_bytes(*uuid);
    let mut out = [0u8; 22];
    for (index, slot) in out.iter_mut().enumerate() {
        let shift = 128i32 - 6 * (index as i32 + 1);
        let sextet = if shift >= 0 {
            (bits >> shift) & 0x3f
        } else {
            (bits << -shift) & 0x3f
        };
        *slot = BASE64_URL[sextet as usize];
    }
    out
}

/// Parses a UUID from Kafka's base64 form or the hyphenated hex form.
pub fn parse_uuid(text: &str) -> Result<[u8; 16], String> {
    if text.len() == 36 || text.len() == 32 {
        let bytes = parse_hex(&text.replace('-', ""))?;
        return bytes
            .try_into()
            .map_err(|_| format!("uuid {text:?} is not 16 bytes"));
    }
    if text.len() != 22 {
        return Err(format!(
            "uuid {text:?} is neither 22 base64 characters nor hex"
        ));
    }
    let mut bits = 0u128;
    for (index, character) in text.bytes().enumerate() {
        let sextet = BASE64_URL
            .iter()
            .position(|&candidate| candidate == character)
            .ok_or_else(|| format!("invalid base64 character in uuid {text:?}"))?
            as u128;
        let shift = 128i32 - 6 * (index as i32 + 1);
        if shift >= 0 {
            bits |= sextet << shift;
        } else if sextet & ((1 << -shift) - 1) != 0 {
            return Err(format!("uuid {text:?} has trailing bits set"));
        } else {
            bits |= sextet >> -shift;
        }
    }
    Ok(bits.to_be_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_base64_round_trips_and_matches_kafka_zero_uuid() {
        assert_eq!(uuid_to_base64(&[0; 16]), "AAAAAAAAAAAAAAAAAAAAAA");
        let uuid: [u8; 16] =
            core::array::from_fn(|index| (index as u8).wrapping_mul(17).wrapping_add(3));
        let text = uuid_to_base64(&uuid);
        assert_eq!(text.len(), 22);
        assert_eq!(parse_uuid(&text), Ok(uuid));
        assert_eq!(parse_uuid(&hex(&uuid)), Ok(uuid));
    }

    #[test]
    fn hex_round_trips_and_rejects_garbage() {
        assert_eq!(parse_hex(&hex(&[0, 0xab, 0xff])), Ok(vec![0, 0xab, 0xff]));
        assert_eq!(parse_hex("00 0A\nff"), Ok(vec![0, 10, 255]));
        assert!(parse_hex("abc").is_err());
        assert!(parse_hex("zz").is_err());
    }

    #[test]
    fn lookup_follows_fields_and_indexes() {
        let mut inner = Struct::default();
        inner.push("error_code", Value::Int(3));
        let mut outer = Struct::default();
        outer.push("topics", Value::Array(vec![Value::Struct(inner)]));
        assert_eq!(outer.lookup("topics.0.error_code"), Some(&Value::Int(3)));
        assert_eq!(outer.lookup("topics.1.error_code"), None);
    }
}
