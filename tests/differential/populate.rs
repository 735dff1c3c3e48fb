//! Builds populated kwire trees from the schema alone, and finds the first
//! place two trees differ.
//!
//! kafka-protocol has no reflection, so the differential test cannot ask it
//! for "every field filled in". Instead this module walks kwire's schema at a
//! version and gives every field that exists there a deterministic value of
//! its type; kwire encodes the tree and kafka-protocol must read and write
//! the same bytes. Each [`Variant`] stresses different encodings, so that
//! every nullable field is seen both null and not null, lengths cross the
//! one-byte varint boundary, and unknown tagged fields travel.

use bytes::Bytes;
use kwire::records::RecordSet;
use kwire::schema::{DefaultValue, FieldSpec, FieldType, MessageSpec, StructSpec};
use kwire::value::{RawTag, Struct, Value};

/// Which kind of values to fill a message with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// Every nullable field present, arrays of two, ordinary values that
    /// differ from field to field.
    Full,
    /// Every nullable field null, other strings and bytes empty, arrays of
    /// one, integers -1 (0 when unsigned), booleans false.
    Nulls,
    /// Extreme integers, multi-byte UTF-8 strings and bytes longer than 127
    /// (two-byte compact lengths), scalar arrays of 130, and an unknown
    /// tagged field in every flexible struct.
    Edge,
}

pub const VARIANTS: [Variant; 3] = [Variant::Full, Variant::Nulls, Variant::Edge];

/// The first tag number used for unknown tagged fields. It is above every
/// tag Kafka defines, and kafka-protocol writes unknown tags after the known
/// ones, so both sides agree on the order.
const UNKNOWN_TAG_BASE: u32 = 300;

/// Fills a message body at one version.
pub struct Populator {
    version: i16,
    flexible: bool,
    variant: Variant,
    /// Counts the values handed out, so that neighbouring fields differ.
    counter: i64,
    /// A real record batch, for `records` fields.
    records: Bytes,
}

impl Populator {
    pub fn new(spec: &MessageSpec, version: i16, variant: Variant, records: Bytes) -> Populator {
        Populator {
            version,
            flexible: spec.flexible.contains(version),
            variant,
            counter: 0,
            records,
        }
    }

    pub fn message(mut self, spec: &MessageSpec) -> Struct {
        self.structure(spec.body, 0)
    }

    fn is_tagged(&self, field: &FieldSpec) -> bool {
        self.flexible && field.tagged.contains(self.version)
    }

    /// Builds a struct in the order kwire decodes one: untagged fields in
    /// schema order, then tagged fields in tag order, then unknown tags.
    fn structure(&mut self, spec: &StructSpec, depth: u32) -> Struct {
        let version = self.version;
        let present = move |field: &&FieldSpec| field.versions.contains(version);
        let mut out = Struct::default();
        for field in spec.fields.iter().filter(present) {
            if !self.is_tagged(field) {
                let value = self.field_value(field, depth);
                out.push(field.name, value);
            }
        }
        let mut tagged: Vec<&FieldSpec> = spec
            .fields
            .iter()
            .filter(present)
            .filter(|field| self.is_tagged(field))
            .collect();
        tagged.sort_by_key(|field| field.tag);
        for field in tagged {
            let value = self.field_value(field, depth);
            // Kafka writes a tagged field only when it differs from its
            // default (KIP-482), and so does kafka-protocol; kwire writes what
            // the tree holds. A populated message must not hold a default.
            if !is_default(field, &value) {
                out.push(field.name, value);
            }
        }
        if self.flexible && self.variant == Variant::Edge {
            let tag = UNKNOWN_TAG_BASE + depth;
            let data: Vec<u8> = (0..=depth as u8).map(|byte| byte ^ 0xa5).collect();
            out.unknown_tags.push(RawTag {
                tag,
                data: Bytes::from(data),
            });
        }
        out
    }

    fn field_value(&mut self, field: &FieldSpec, depth: u32) -> Value {
        let nullable = field.nullable.contains(self.version);
        if nullable && self.variant == Variant::Nulls {
            return Value::Null;
        }
        self.value(field.name, &field.ty, depth)
    }

    fn next(&mut self) -> i64 {
        self.counter += 1;
        self.counter
    }

    fn value(&mut self, name: &str, ty: &FieldType, depth: u32) -> Value {
        let n = self.next();
        match (self.variant, ty) {
            (_, FieldType::Struct(spec)) => Value::Struct(self.structure(spec, depth + 1)),
            (_, FieldType::Array(element)) => {
                let count = match (self.variant, element) {
                    (Variant::Nulls, _) => 1,
                    (Variant::Edge, FieldType::Struct(_)) => 2,
                    // 130 elements need a two-byte compact count.
                    (Variant::Edge, _) => 130,
                    (Variant::Full, _) => 2,
                };
                Value::Array(
                    (0..count)
                        .map(|_| self.value(name, element, depth))
                        .collect(),
                )
            }
            (_, FieldType::Records) => {
                Value::Records(Box::new(RecordSet::undecoded(self.records.clone())))
            }

            (Variant::Full, FieldType::Bool) => Value::Bool(true),
            (Variant::Full, FieldType::Int8) => Value::Int(1 + n % 100),
            (Variant::Full, FieldType::Int16) => Value::Int(100 + n % 30_000),
            // Above i16::MAX, so a signed reading would show.
            (Variant::Full, FieldType::Uint16) => Value::Int(40_000 + n % 20_000),
            (Variant::Full, FieldType::Int32) => Value::Int(100_000 + n),
            (Variant::Full, FieldType::Uint32) => Value::Int(3_000_000_000 + n),
            (Variant::Full, FieldType::Int64) => Value::Int(10_000_000_000 + n),
            (Variant::Full, FieldType::Float64) => Value::Float(n as f64 + 0.25),
            (Variant::Full, FieldType::String) => Value::String(format!("{name}-{n}")),
            (Variant::Full, FieldType::Bytes) => Value::Bytes(Bytes::from(format!("bytes-{n}"))),
            (Variant::Full, FieldType::Uuid) => Value::Uuid(uuid(n)),

            (Variant::Nulls, FieldType::Bool) => Value::Bool(false),
            (Variant::Nulls, FieldType::Uint16 | FieldType::Uint32) => Value::Int(0),
            (
                Variant::Nulls,
                FieldType::Int8 | FieldType::Int16 | FieldType::Int32 | FieldType::Int64,
            ) => Value::Int(-1),
            (Variant::Nulls, FieldType::Float64) => Value::Float(-0.5),
            (Variant::Nulls, FieldType::String) => Value::String(String::new()),
            (Variant::Nulls, FieldType::Bytes) => Value::Bytes(Bytes::new()),
            (Variant::Nulls, FieldType::Uuid) => Value::Uuid([0; 16]),

            (Variant::Edge, FieldType::Bool) => Value::Bool(n % 2 == 0),
            (Variant::Edge, FieldType::Int8) => {
                Value::Int(extreme(n, i8::MIN.into(), i8::MAX.into()))
            }
            (Variant::Edge, FieldType::Int16) => {
                Value::Int(extreme(n, i16::MIN.into(), i16::MAX.into()))
            }
            (Variant::Edge, FieldType::Uint16) => Value::Int(u16::MAX.into()),
            (Variant::Edge, FieldType::Int32) => {
                Value::Int(extreme(n, i32::MIN.into(), i32::MAX.into()))
            }
            (Variant::Edge, FieldType::Uint32) => Value::Int(u32::MAX.into()),
            (Variant::Edge, FieldType::Int64) => Value::Int(extreme(n, i64::MIN, i64::MAX)),
            (Variant::Edge, FieldType::Float64) => Value::Float(-1.5e300),
            (Variant::Edge, FieldType::String) => {
                // 2-, 3- and 4-byte UTF-8 sequences, 150 bytes in all.
                Value::String(format!("{n:06}") + &"é€𝄞".repeat(16))
            }
            (Variant::Edge, FieldType::Bytes) => {
                Value::Bytes((0..200u8).map(|byte| byte ^ n as u8).collect())
            }
            (Variant::Edge, FieldType::Uuid) => Value::Uuid([0xff; 16]),
        }
    }
}

fn extreme(n: i64, min: i64, max: i64) -> i64 {
    if n % 2 == 0 {
        min
    } else {
        max
    }
}

fn uuid(n: i64) -> [u8; 16] {
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&0x6b77_6972_6500_0000_i64.to_be_bytes());
    out[8..].copy_from_slice(&n.to_be_bytes());
    out
}

/// Whether a value is the field's default, as Kafka decides whether to
/// write a tagged field.
pub fn is_default(field: &FieldSpec, value: &Value) -> bool {
    match (field.default, value) {
        (DefaultValue::Null, value) => *value == Value::Null,
        (DefaultValue::Bool(default), Value::Bool(flag)) => default == *flag,
        (DefaultValue::Int(default), Value::Int(int)) => default == *int,
        (DefaultValue::Float(default), Value::Float(float)) => default == *float,
        (DefaultValue::Str(default), Value::String(text)) => default == text,
        (DefaultValue::Zero, value) => is_zero(&field.ty, value),
        _ => false,
    }
}

fn is_zero(ty: &FieldType, value: &Value) -> bool {
    match (ty, value) {
        (FieldType::Bool, Value::Bool(flag)) => !flag,
        (_, Value::Int(int)) => *int == 0,
        (_, Value::Float(float)) => *float == 0.0,
        (_, Value::String(text)) => text.is_empty(),
        (_, Value::Bytes(data)) => data.is_empty(),
        (_, Value::Records(records)) => records.raw.is_empty(),
        (_, Value::Uuid(uuid)) => *uuid == [0; 16],
        (_, Value::Array(items)) => items.is_empty(),
        (FieldType::Struct(spec), Value::Struct(inner)) => {
            inner.unknown_tags.is_empty()
                && spec.fields.iter().all(|field| match inner.get(field.name) {
                    Some(value) => is_default(field, value),
                    None => true,
                })
        }
        _ => false,
    }
}

/// The first place two trees differ, as `path: left vs right` with a path
/// in kwire's notation (`responses[0].partitions[1].records`), or None when
/// they are equal. Fields are matched by name, so a field one side lacks is
/// named rather than shifting every comparison after it.
pub fn first_difference(left: &Struct, right: &Struct) -> Option<String> {
    struct_difference("", left, right)
}

fn child(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

fn struct_difference(path: &str, left: &Struct, right: &Struct) -> Option<String> {
    for field in &left.fields {
        let at = child(path, field.name);
        match right.get(field.name) {
            Some(other) => {
                if let Some(found) = value_difference(&at, &field.value, other) {
                    return Some(found);
                }
            }
            None => return Some(format!("{at}: only on the left ({})", short(&field.value))),
        }
    }
    if let Some(field) = right
        .fields
        .iter()
        .find(|field| left.get(field.name).is_none())
    {
        let at = child(path, field.name);
        return Some(format!("{at}: only on the right ({})", short(&field.value)));
    }
    let names = |tree: &Struct| {
        tree.fields
            .iter()
            .map(|field| field.name)
            .collect::<Vec<_>>()
    };
    if names(left) != names(right) {
        return Some(format!(
            "{}: fields in order {:?} on the left, {:?} on the right",
            if path.is_empty() { "(message)" } else { path },
            names(left),
            names(right)
        ));
    }
    (left.unknown_tags != right.unknown_tags).then(|| {
        format!(
            "{}: unknown tags {:?} on the left, {:?} on the right",
            if path.is_empty() { "(message)" } else { path },
            left.unknown_tags,
            right.unknown_tags
        )
    })
}

fn value_difference(path: &str, left: &Value, right: &Value) -> Option<String> {
    match (left, right) {
        (Value::Struct(l), Value::Struct(r)) => struct_difference(path, l, r),
        (Value::Array(l), Value::Array(r)) if l.len() != r.len() => Some(format!(
            "{path}: {} elements on the left, {} on the right",
            l.len(),
            r.len()
        )),
        (Value::Array(l), Value::Array(r)) => l
            .iter()
            .zip(r)
            .enumerate()
            .find_map(|(index, (l, r))| value_difference(&format!("{path}[{index}]"), l, r)),
        (l, r) if l != r => Some(format!(
            "{path}: {} on the left, {} on the right",
            short(l),
            short(r)
        )),
        _ => None,
    }
}

/// A value's debug form, cut short for failure messages.
fn short(value: &Value) -> String {
    let text = match value {
        Value::Records(records) => format!("records of {} bytes", records.raw.len()),
        other => format!("{other:?}"),
    };
    if text.chars().count() > 120 {
        text.chars().take(117).collect::<String>() + "..."
    } else {
        text
    }
}
