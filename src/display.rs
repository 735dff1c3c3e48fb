//! Text rendering of decoded frames: an indented tree, one field a line,
//! with error codes named and secrets redacted unless asked for. The tree is
//! rendered from the same JSON form `--json` prints, so both always agree.

use std::fmt::Write;

use serde_json::Value as Json;

use crate::frame::DecodedFrame;
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
