//! The static description of Kafka's protocol: every API's request and
//! response, field by field, with the versions each field exists in, plus the
//! error-code table. The tables themselves live in `generated.rs`, written by
//! the `kwire-gen` program from Kafka's official message definitions; this
//! module holds their types and the lookups the codec needs.

#[rustfmt::skip]
mod generated;

pub use generated::{APIS, DATA_STRUCTS, ERRORS, REQUEST_HEADER, RESPONSE_HEADER};

/// An inclusive range of versions. `min > max` means "no version".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Versions {
    pub min: i16,
    pub max: i16,
}

impl Versions {
    pub const NONE: Versions = Versions { min: 0, max: -1 };
    pub const ALL: Versions = Versions {
        min: 0,
        max: i16::MAX,
    };

    pub const fn new(min: i16, max: i16) -> Versions {
        Versions { min, max }
    }

    pub const fn from(min: i16) -> Versions {
        Versions { min, max: i16::MAX }
    }

    pub const fn contains(self, version: i16) -> bool {
        self.min <= version && version <= self.max
    }

    pub const fn is_empty(self) -> bool {
        self.min > self.max
    }
}

/// The wire type of a field, as the message definitions name it.
#[derive(Clone, Copy, Debug)]
pub enum FieldType {
    Bool,
    Int8,
    Int16,
    Uint16,
    Int32,
    Uint32,
    Int64,
    Float64,
    String,
    Bytes,
    Uuid,
    Records,
    Struct(&'static StructSpec),
    Array(&'static FieldType),
}

impl FieldType {
    /// Bytes on the wire of a type whose size is fixed: numbers, booleans
    /// and UUIDs.
    pub fn fixed_size(&self) -> Option<usize> {
        match self {
            FieldType::Bool | FieldType::Int8 => Some(1),
            FieldType::Int16 | FieldType::Uint16 => Some(2),
            FieldType::Int32 | FieldType::Uint32 => Some(4),
            FieldType::Int64 | FieldType::Float64 => Some(8),
            FieldType::Uuid => Some(16),
            _ => None,
        }
    }
}

/// A named group of fields: a message body, a common struct, or an inline
/// struct declared inside a field.
#[derive(Debug)]
pub struct StructSpec {
    /// The official type name, for example `TopicProduceData`.
    pub name: &'static str,
    pub fields: &'static [FieldSpec],
}

/// The default a field takes when it is absent (tagged fields that were not
/// sent, or fields left out of a JSON request).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum DefaultValue {
    /// The type's zero value: 0, false, "", empty array, all-zero uuid.
    Zero,
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(&'static str),
}

#[derive(Debug)]
pub struct FieldSpec {
    /// The official name in snake_case (`TopicData` -> `topic_data`).
    pub name: &'static str,
    pub ty: FieldType,
    /// Versions in which the field is part of the message.
    pub versions: Versions,
    /// Versions in which the field may be null.
    pub nullable: Versions,
    /// Versions in which the field travels as a tagged field.
    pub tagged: Versions,
    /// The tag, for tagged fields.
    pub tag: Option<u32>,
    /// A field-level override of the message's flexible versions
    /// (RequestHeader's client id is never a compact string).
    pub flexible: Option<Versions>,
    pub default: DefaultValue,
}

impl FieldSpec {
    /// Whether the field travels in its struct's body (not among the
    /// tagged fields) at `version`, in a message that is `flexible` there.
    #[inline]
    pub fn in_body(&self, version: i16, flexible: bool) -> bool {
        self.versions.contains(version) && !(flexible && self.tagged.contains(version))
    }

    /// Whether the field is written in its compact (flexible) form at
    /// `version`, in a message that is `flexible` there.
    #[inline]
    pub fn is_compact(&self, version: i16, flexible: bool) -> bool {
        self.flexible
            .map_or(flexible, |versions| versions.contains(version))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageKind {
    Request,
    Response,
    Header,
    Data,
}

/// One top-level message definition.
#[derive(Debug)]
pub struct MessageSpec {
    /// `ProduceRequest`, `RequestHeader`, `ConsumerProtocolAssignment`, ...
    pub name: &'static str,
    pub kind: MessageKind,
    pub valid: Versions,
    pub flexible: Versions,
    pub deprecated: Versions,
    pub body: &'static StructSpec,
}

/// One API key with its request and response.
#[derive(Debug)]
pub struct ApiSpec {
    pub key: i16,
    /// The API name without suffix, for example `Produce`.
    pub name: &'static str,
    pub request: &'static MessageSpec,
    pub response: &'static MessageSpec,
}

/// One Kafka error code.
#[derive(Debug)]
pub struct ErrorSpec {
    pub code: i16,
    pub name: &'static str,
    pub retriable: bool,
}

/// The API with this key, if Kafka defines one.
pub fn api(key: i16) -> Option<&'static ApiSpec> {
    // Kafka's keys run from 0 without a gap: a key is its API's index.
    let at_index = usize::try_from(key).ok().and_then(|index| APIS.get(index));
    if let Some(api) = at_index.filter(|api| api.key == key) {
        return Some(api);
    }
    APIS.binary_search_by_key(&key, |api| api.key)
        .ok()
        .map(|index| &APIS[index])
}

/// The API with this name (`Produce`, case-insensitive), if any.
pub fn api_by_name(name: &str) -> Option<&'static ApiSpec> {
    APIS.iter().find(|api| api.name.eq_ignore_ascii_case(name))
}

/// The error with this code, if Kafka defines one.
pub fn error(code: i16) -> Option<&'static ErrorSpec> {
    ERRORS
        .binary_search_by_key(&code, |error| error.code)
        .ok()
        .map(|index| &ERRORS[index])
}

/// The error with this name (`NOT_COORDINATOR`, case-insensitive), if any.
pub fn error_by_name(name: &str) -> Option<&'static ErrorSpec> {
    ERRORS
        .iter()
        .find(|error| error.name.eq_ignore_ascii_case(name))
}

/// A data (non-API) message definition by name, for example
/// `ConsumerProtocolAssignment`.
pub fn data_struct(name: &str) -> Option<&'static MessageSpec> {
    DATA_STRUCTS.iter().copied().find(|spec| spec.name == name)
}

/// The request header version an API version uses: 2 in flexible versions,
/// 1 otherwise, and 0 for ControlledShutdown v0 (protocol guide, "Headers").
pub fn request_header_version(api: &ApiSpec, version: i16) -> i16 {
    if api.request.flexible.contains(version) {
        2
    } else if api.key == CONTROLLED_SHUTDOWN_KEY && version == 0 {
        0
    } else {
        1
    }
}

/// The response header version an API version uses: 1 in flexible versions,
/// 0 otherwise. ApiVersions responses always use v0 so that a client can read
/// them before it knows what the broker supports (KIP-511).
pub fn response_header_version(api: &ApiSpec, version: i16) -> i16 {
    if api.key != API_VERSIONS_KEY && api.response.flexible.contains(version) {
        1
    } else {
        0
    }
}

pub const PRODUCE_KEY: i16 = 0;
pub const FETCH_KEY: i16 = 1;
pub const CONTROLLED_SHUTDOWN_KEY: i16 = 7;
pub const SASL_HANDSHAKE_KEY: i16 = 17;
pub const API_VERSIONS_KEY: i16 = 18;
pub const SASL_AUTHENTICATE_KEY: i16 = 36;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apis_are_sorted_by_key_and_unique() {
        assert!(APIS.len() > 70, "only {} APIs generated", APIS.len());
        assert!(APIS.windows(2).all(|pair| pair[0].key < pair[1].key));
    }

    #[test]
    fn every_api_is_found_by_its_key_and_no_other() {
        for spec in APIS {
            assert_eq!(api(spec.key).map(|found| found.name), Some(spec.name));
        }
        let last = APIS.last().map_or(0, |spec| spec.key);
        for key in [-1, i16::MIN, last + 1, i16::MAX] {
            assert!(api(key).is_none(), "{key}");
        }
    }

    #[test]
    fn errors_are_sorted_by_code() {
        assert!(ERRORS.windows(2).all(|pair| pair[0].code < pair[1].code));
        assert_eq!(error(0).map(|e| e.name), Some("NONE"));
        assert_eq!(error(-1).map(|e| e.name), Some("UNKNOWN_SERVER_ERROR"));
        assert!(error_by_name("not_coordinator").is_some_and(|e| e.retriable));
    }

    #[test]
    fn header_versions_follow_flexibility() {
        let produce = api(PRODUCE_KEY).expect("Produce");
        assert_eq!(request_header_version(produce, 8), 1);
        assert_eq!(request_header_version(produce, 9), 2);
        assert_eq!(response_header_version(produce, 9), 1);
        let api_versions = api(API_VERSIONS_KEY).expect("ApiVersions");
        assert_eq!(response_header_version(api_versions, 3), 0);
        assert_eq!(request_header_version(api_versions, 3), 2);
        let shutdown = api(CONTROLLED_SHUTDOWN_KEY).expect("ControlledShutdown");
        assert_eq!(request_header_version(shutdown, 0), 0);
    }
}
