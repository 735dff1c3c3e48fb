//! The generic tree a decoded Kafka message becomes, and its JSON form.
//!
//! A tree is schema-agnostic: integers of every width are `Int`, and field
//! names are the schema's `&'static str`s. The codec walks it together with
//! the schema, so the tree needs no type tags of its own. Tagged fields that
//! were not on the wire are simply absent, and tags the schema does not know
//! keep their raw bytes, which makes decode-then-encode lossless.

use bytes::Bytes;
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

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

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null => serializer.serialize_none(),
            Value::Bool(value) => serializer.serialize_bool(*value),
            Value::Int(value) => serializer.serialize_i64(*value),
            Value::Float(value) => serializer.serialize_f64(*value),
            Value::String(text) => serializer.serialize_str(text),
            Value::Bytes(bytes) => serializer.serialize_str(&hex(bytes)),
            Value::Uuid(uuid) => serializer.serialize_str(&uuid_to_base64(uuid)),
            Value::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Value::Struct(inner) => inner.serialize(serializer),
            Value::Records(records) => records.serialize(serializer),
        }
    }
}

/// The JSON key under which unknown tagged fields appear.
pub const UNKNOWN_TAGS_KEY: &str = "_unknown_tags";

impl Serialize for Struct {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let extra = usize::from(!self.unknown_tags.is_empty());
        let mut map = serializer.serialize_map(Some(self.fields.len() + extra))?;
        for field in &self.fields {
            map.serialize_entry(field.name, &field.value)?;
        }
        if !self.unknown_tags.is_empty() {
            let tags: Vec<serde_json::Value> = self
                .unknown_tags
                .iter()
                .map(|raw| serde_json::json!({ "tag": raw.tag, "data": hex(&raw.data) }))
                .collect();
            map.serialize_entry(UNKNOWN_TAGS_KEY, &tags)?;
        }
        map.end()
    }
}

/// Lowercase hex, the JSON form of `bytes` fields.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0xf)]));
    }
    out
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
    // 22 characters of 6 bits carry 132 bits: the 128 bits, then 4 zero bits.
    let bits = u128::from_be_bytes(*uuid);
    let mut out = String::with_capacity(22);
    for index in 0..22 {
        let shift = 128i32 - 6 * (index + 1);
        let sextet = if shift >= 0 {
            (bits >> shift) & 0x3f
        } else {
            (bits << -shift) & 0x3f
        };
        out.push(char::from(BASE64_URL[sextet as usize]));
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
