//! Text rendering of decoded frames: an indented tree, one field a line,
//! with error codes named and secrets redacted unless asked for. The tree is
//! rendered from the same JSON form `--json` prints, so both always agree.

use std::fmt::Write;

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value as Json;

use crate::codec::DecodeError;
use crate::exchange::{ErrorName, Exchange, ExchangeState, Message, Summary};
use crate::frame::{ApiName, DecodedFrame};
use crate::schema;
use crate::value::{Struct, Value};

/// Field names whose bytes are credentials or token material: SASL
/// exchanges (KIP-152), delegation token HMACs (KIP-48) and SCRAM
/// credentials (KIP-554).
const SECRET_FIELDS: &[&str] = &["auth_bytes", "hmac", "salted_password", "token_hmac"];

/// Replaces the bytes of secret fields with a note of their size.
pub fn redact(tree: &mut Struct) {
    for field in &mut tree.fields {
        match &mut field.value {
            Value::Bytes(bytes) if SECRET_FIELDS.contains(&field.name) => {
                field.value = Value::String(format!("<redacted: {} bytes>", bytes.len()));
            }
            value => redact_value(value),
        }
    }
}

fn redact_value(value: &mut Value) {
    match value {
        Value::Struct(inner) => redact(inner),
        Value::Array(items) => items.iter_mut().for_each(redact_value),
        _ => {}
    }
}

/// The JSON form of a decoded frame.
pub fn frame_json(frame: &DecodedFrame) -> Json {
    let mut object = serde_json::Map::new();
    object.insert("api_key".into(), frame.api_key.into());
    object.insert("api_name".into(), frame.api_name().into());
    object.insert("api_version".into(), frame.api_version.into());
    let direction = match frame.direction {
        crate::frame::Direction::Request => "request",
        crate::frame::Direction::Response => "response",
    };
    object.insert("direction".into(), direction.into());
    object.insert("size".into(), frame.size.into());
    object.insert("header_version".into(), frame.header_version.into());
    object.insert("header".into(), to_json(&frame.header));
    object.insert(
        "body".into(),
        frame.body.as_ref().map_or(Json::Null, to_json),
    );
    if !frame.violations.is_empty() {
        let violations: Vec<Json> = frame
            .violations
            .iter()
            .map(|violation| {
                serde_json::json!({
                    "message": violation.to_string(),
                    "path": violation.path.to_string(),
                    "offset": violation.offset,
                })
            })
            .collect();
        object.insert("violations".into(), Json::Array(violations));
    }
    if let Some(error) = &frame.error {
        object.insert(
            "error".into(),
            serde_json::json!({
                "message": error.to_string(),
                "path": error.path.to_string(),
                "offset": error.offset,
            }),
        );
    }
    Json::Object(object)
}

pub fn to_json(tree: &Struct) -> Json {
    serde_json::to_value(tree).unwrap_or(Json::Null)
}

/// The indented text form of a decoded frame.
pub fn frame_text(frame: &DecodedFrame) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} ({} bytes, header v{})",
        frame.context(),
        frame.size,
        frame.header_version
    );
    out.push_str("header:\n");
    write_tree(&mut out, &to_json(&frame.header), 1);
    match &frame.body {
        Some(body) => {
            out.push_str("body:\n");
            write_tree(&mut out, &to_json(body), 1);
        }
        None => {
            let _ = writeln!(out, "body: not decoded ({} bytes)", frame.body_bytes.len());
        }
    }
    for violation in &frame.violations {
        let _ = writeln!(out, "violation: {violation}");
    }
    if let Some(error) = &frame.error {
        let _ = writeln!(out, "error: {error}");
    }
    out
}

fn write_tree(out: &mut String, json: &Json, depth: usize) {
    match json {
        Json::Object(object) => {
            for (key, value) in object {
                write_entry(out, key, value, depth);
            }
        }
        Json::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                write_entry(out, &format!("[{index}]"), item, depth);
            }
        }
        scalar => {
            let _ = writeln!(out, "{}{}", indent(depth), scalar);
        }
    }
}

fn write_entry(out: &mut String, key: &str, value: &Json, depth: usize) {
    let pad = indent(depth);
    match value {
        Json::Object(object) if object.is_empty() => {
            let _ = writeln!(out, "{pad}{key}: {{}}");
        }
        Json::Array(items) if items.is_empty() => {
            let _ = writeln!(out, "{pad}{key}: []");
        }
        Json::Object(object) if is_record(object) => {
            let _ = writeln!(out, "{pad}{key}: {}", record_line(object));
        }
        Json::Object(_) => {
            let _ = writeln!(out, "{pad}{key}:");
            write_tree(out, value, depth + 1);
        }
        Json::Array(items) => {
            let noun = if items.len() == 1 { "item" } else { "items" };
            let _ = writeln!(out, "{pad}{key}: ({} {noun})", items.len());
            write_tree(out, value, depth + 1);
        }
        scalar => {
            let _ = writeln!(out, "{pad}{key}: {}{}", scalar, annotation(key, scalar));
        }
    }
}

/// A record of a batch (see `records`): offset, timestamp, key and value.
fn is_record(object: &serde_json::Map<String, Json>) -> bool {
    ["offset", "timestamp", "key", "value"]
        .iter()
        .all(|name| object.contains_key(*name))
}

/// One record on one line: `offset 3 ts 1700000000000 key "k" value "v"
/// headers {trace=abc}`, then anything else it carries (control markers).
fn record_line(object: &serde_json::Map<String, Json>) -> String {
    let mut line = format!(
        "offset {} ts {} key {} value {}",
        object["offset"], object["timestamp"], object["key"], object["value"]
    );
    for (name, value) in object {
        match name.as_str() {
            "offset" | "timestamp" | "key" | "value" => {}
            "headers" => {
                let headers: Vec<String> = value
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|header| format!("{}={}", header["key"], header["value"]))
                    .collect();
                if !headers.is_empty() {
                    let _ = write!(line, " headers {{{}}}", headers.join(", "));
                }
            }
            _ => {
                let _ = write!(line, " {name} {value}");
            }
        }
    }
    line
}

/// Names error codes and API keys next to their numbers.
fn annotation(key: &str, value: &Json) -> String {
    let Some(code) = value.as_i64().and_then(|code| i16::try_from(code).ok()) else {
        return String::new();
    };
    if key == "error_code" || key.ends_with("_error_code") {
        return match schema::error(code) {
            Some(error) => format!(" ({})", error.name),
            None => " (unknown error code)".into(),
        };
    }
    if key == "request_api_key" || key == "api_key" {
        if let Some(api) = schema::api(code) {
            return format!(" ({})", api.name);
        }
    }
    String::new()
}

fn indent(depth: usize) -> String {
    "  ".repeat(depth)
}

pub fn state_name(state: ExchangeState) -> &'static str {
    match state {
        ExchangeState::Complete => "complete",
        ExchangeState::NoResponseExpected => "no_response",
        ExchangeState::ResponseMissing => "response_missing",
        ExchangeState::RequestMissing => "request_missing",
    }
}

/// One exchange as a JSON object: one line of `kwire read --json` and
/// `kwire live --json`, and the TUI's JSON export. Times are counted from
/// `first_ns`, the capture's first packet.
pub fn exchange_json(exchange: &Exchange, summary: &Summary, first_ns: i64) -> Json {
    let json = ExchangeJson {
        exchange,
        summary,
        first_ns,
    };
    serde_json::to_value(json).unwrap_or(Json::Null)
}

/// [`exchange_json`] written straight to `out`, byte for byte the same,
/// without building a JSON value first: the decoded trees, nearly all of
/// it, are serialized as they are.
pub fn write_exchange_json(
    out: impl std::io::Write,
    exchange: &Exchange,
    summary: &Summary,
    first_ns: i64,
) -> serde_json::Result<()> {
    let json = ExchangeJson {
        exchange,
        summary,
        first_ns,
    };
    serde_json::to_writer(out, &json)
}

/// An exchange's JSON form, written field by field.
struct ExchangeJson<'a> {
    exchange: &'a Exchange,
    summary: &'a Summary,
    first_ns: i64,
}

impl Serialize for ExchangeJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let (exchange, summary) = (self.exchange, self.summary);
        let ts_ns = exchange.ts_ns();
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("id", &exchange.id)?;
        map.serialize_entry("ts", &rfc3339(ts_ns))?;
        map.serialize_entry("ts_ns", &ts_ns)?;
        map.serialize_entry("time", &((ts_ns - self.first_ns) as f64 / 1e9))?;
        map.serialize_entry("connection", &exchange.connection)?;
        map.serialize_entry("client", &Shown(exchange.client))?;
        map.serialize_entry("broker", &Shown(exchange.broker))?;
        map.serialize_entry("client_id", &exchange.client_id())?;
        map.serialize_entry("api_key", &exchange.api_key)?;
        map.serialize_entry("api_name", &Shown(ApiName(exchange.api_key)))?;
        map.serialize_entry("api_version", &exchange.api_version)?;
        map.serialize_entry("correlation_id", &exchange.correlation_id)?;
        map.serialize_entry("state", state_name(exchange.state))?;
        map.serialize_entry("inferred", &exchange.inferred)?;
        map.serialize_entry("lost", &exchange.lost)?;
        let latency_us = exchange.latency_ns().map(|ns| ns as f64 / 1e3);
        map.serialize_entry("latency_us", &latency_us)?;
        map.serialize_entry("sizes", &Sizes(exchange))?;
        let errors: Vec<Shown<ErrorName>> = summary
            .errors
            .iter()
            .map(|code| Shown(ErrorName(*code)))
            .collect();
        map.serialize_entry("errors", &errors)?;
        map.serialize_entry("summary", &SummaryJson(summary))?;
        map.serialize_entry("sasl", &exchange.sasl)?;
        map.serialize_entry(
            "decode_errors",
            &DecodeErrors(
                side_error(&exchange.request),
                side_error(&exchange.response),
            ),
        )?;
        map.serialize_entry("request", &body(&exchange.request))?;
        map.serialize_entry("response", &body(&exchange.response))?;
        map.end()
    }
}

fn body(message: &Option<Message>) -> Option<&Struct> {
    message
        .as_ref()
        .and_then(|message| message.frame.body.as_ref())
}

fn side_error(message: &Option<Message>) -> Option<&DecodeError> {
    message
        .as_ref()
        .and_then(|message| message.frame.error.as_ref())
}

/// A value serialized as the string its `Display` writes.
struct Shown<T>(T);

impl<T: std::fmt::Display> Serialize for Shown<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

struct Sizes<'a>(&'a Exchange);

impl Serialize for Sizes<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let exchange = self.0;
        let missing =
            |message: &Option<Message>| message.as_ref().map_or(0, |message| message.missing_bytes);
        let mut map = serializer.serialize_map(Some(4))?;
        map.serialize_entry("request", &exchange.request_size())?;
        map.serialize_entry("response", &exchange.response_size())?;
        map.serialize_entry("request_missing_bytes", &missing(&exchange.request))?;
        map.serialize_entry("response_missing_bytes", &missing(&exchange.response))?;
        map.end()
    }
}

struct SummaryJson<'a>(&'a Summary);

impl Serialize for SummaryJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let summary = self.0;
        let mut map = serializer.serialize_map(Some(4))?;
        map.serialize_entry("line", &summary.line())?;
        map.serialize_entry("topics", &summary.topics)?;
        map.serialize_entry("records", &summary.record_count())?;
        map.serialize_entry("record_bytes", &summary.record_bytes())?;
        map.end()
    }
}

struct DecodeErrors<'a>(Option<&'a DecodeError>, Option<&'a DecodeError>);

impl Serialize for DecodeErrors<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry("request", &self.0.map(ErrorJson))?;
        map.serialize_entry("response", &self.1.map(ErrorJson))?;
        map.end()
    }
}

/// A decode error as `{"message", "path", "offset"}`.
struct ErrorJson<'a>(&'a DecodeError);

impl Serialize for ErrorJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(3))?;
        map.serialize_entry("message", &Shown(self.0))?;
        map.serialize_entry("path", &Shown(&self.0.path))?;
        map.serialize_entry("offset", &self.0.offset)?;
        map.end()
    }
}

/// `2024-05-01T12:34:56.123456789Z`: RFC 3339 in UTC with nanoseconds.
pub fn rfc3339(ts_ns: i64) -> String {
    let seconds = ts_ns.div_euclid(1_000_000_000);
    let nanos = ts_ns.rem_euclid(1_000_000_000);
    let days = seconds.div_euclid(86_400);
    let of_day = seconds.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days (proleptic Gregorian calendar).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        of_day / 3_600,
        of_day % 3_600 / 60,
        of_day % 60
    )
}
