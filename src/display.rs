//! Text rendering of decoded frames: an indented tree, one field a line,
//! with error codes named and secrets redacted unless asked for. The tree is
//! rendered from the same JSON form `--json` prints, so both always agree.

use std::fmt::Write;

use std::net::SocketAddr;

use serde_json::Value as Json;

use crate::codec::DecodeError;
use crate::exchange::{ErrorName, Exchange, ExchangeState, Message, Summary};
use crate::frame::{ApiName, DecodedFrame};
use crate::json::{self, key, JsonSink, JsonWriter};
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

/// The JSON form of a decoded frame (`kwire decode --json`).
pub fn frame_json(frame: &DecodedFrame) -> Json {
    json::to_value(|w| write_frame(w, frame))
}

/// [`frame_json`] as text, written to `w`.
pub fn write_frame_json(w: &mut JsonWriter, frame: &DecodedFrame) {
    write_frame(w, frame);
}

fn write_frame<S: JsonSink>(w: &mut S, frame: &DecodedFrame) {
    w.begin_object();
    w.known_key(key!("api_key"));
    w.int(i64::from(frame.api_key));
    w.known_key(key!("api_name"));
    w.str(&frame.api_name());
    w.known_key(key!("api_version"));
    w.int(i64::from(frame.api_version));
    w.known_key(key!("direction"));
    w.str(match frame.direction {
        crate::frame::Direction::Request => "request",
        crate::frame::Direction::Response => "response",
    });
    w.known_key(key!("size"));
    w.uint(frame.size as u64);
    if frame.body_version != frame.api_version {
        // Read with another version's layout: the KIP-511 fallback, or a
        // version newer than kwire's definitions.
        w.known_key(key!("body_version"));
        w.int(i64::from(frame.body_version));
    }
    w.known_key(key!("header_version"));
    w.int(i64::from(frame.header_version));
    w.known_key(key!("header"));
    frame.header.write_json(w);
    w.known_key(key!("body"));
    match &frame.body {
        Some(body) => body.write_json(w),
        None => w.null(),
    }
    if !frame.violations.is_empty() {
        w.known_key(key!("violations"));
        w.begin_array();
        for violation in &frame.violations {
            write_error(w, violation);
        }
        w.end_array();
    }
    if let Some(error) = &frame.error {
        w.known_key(key!("error"));
        write_error(w, error);
    }
    w.end_object();
}

/// A decoded tree as a JSON value.
pub fn to_json(tree: &Struct) -> Json {
    json::to_value(|w| tree.write_json(w))
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
            let _ = writeln!(
                out,
                "body: not decoded ({} bytes)",
                frame.body_bytes().len()
            );
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
    json::to_value(|w| write_exchange(w, exchange, summary, first_ns))
}

/// [`exchange_json`] as text, written to `w` without building a JSON
/// value first: the decoded trees and record batches, nearly all of it,
/// are written as they are.
pub fn write_exchange_json(
    w: &mut JsonWriter,
    exchange: &Exchange,
    summary: &Summary,
    first_ns: i64,
) {
    write_exchange(w, exchange, summary, first_ns);
}

fn write_exchange<S: JsonSink>(w: &mut S, exchange: &Exchange, summary: &Summary, first_ns: i64) {
    let ts_ns = exchange.ts_ns();
    w.begin_object();
    w.known_key(key!("id"));
    w.uint(exchange.id);
    w.known_key(key!("ts"));
    match rfc3339_bytes(ts_ns) {
        Some(text) => w.plain_str(&text),
        None => w.str(&rfc3339(ts_ns)),
    }
    w.known_key(key!("ts_ns"));
    w.int(ts_ns);
    w.known_key(key!("time"));
    w.float((ts_ns - first_ns) as f64 / 1e9);
    w.known_key(key!("connection"));
    w.uint(u64::from(exchange.connection));
    w.known_key(key!("client"));
    write_addr(w, exchange.client);
    w.known_key(key!("broker"));
    write_addr(w, exchange.broker);
    w.known_key(key!("client_id"));
    w.opt_str(exchange.client_id());
    w.known_key(key!("api_key"));
    w.int(i64::from(exchange.api_key));
    w.known_key(key!("api_name"));
    match schema::api(exchange.api_key) {
        Some(api) => w.str(api.name),
        None => w.display(&ApiName(exchange.api_key)),
    }
    w.known_key(key!("api_version"));
    w.int(i64::from(exchange.api_version));
    w.known_key(key!("correlation_id"));
    w.int(i64::from(exchange.correlation_id));
    w.known_key(key!("state"));
    w.str(state_name(exchange.state));
    w.known_key(key!("inferred"));
    w.bool(exchange.inferred);
    w.known_key(key!("lost"));
    w.bool(exchange.lost);
    w.known_key(key!("latency_us"));
    match exchange.latency_ns() {
        Some(ns) => w.float(ns as f64 / 1e3),
        None => w.null(),
    }
    w.known_key(key!("sizes"));
    write_sizes(w, exchange);
    w.known_key(key!("errors"));
    w.begin_array();
    for &code in &summary.errors {
        match schema::error(code) {
            Some(error) => w.str(error.name),
            None => w.display(&ErrorName(code)),
        }
    }
    w.end_array();
    w.known_key(key!("summary"));
    write_summary(w, summary);
    w.known_key(key!("sasl"));
    w.serde(&exchange.sasl);
    let sides = [
        (key!("request"), &exchange.request),
        (key!("response"), &exchange.response),
    ]
    .map(|(side, message)| (side, message.as_ref().map(|message| &message.frame)));
    w.known_key(key!("decode_errors"));
    w.begin_object();
    for (side, frame) in sides {
        w.known_key(side);
        match frame.and_then(|frame| frame.error.as_ref()) {
            Some(error) => write_error(w, error),
            None => w.null(),
        }
    }
    w.end_object();
    // What a peer must not send but that still decoded, per side.
    w.known_key(key!("violations"));
    w.begin_object();
    for (side, frame) in sides {
        w.known_key(side);
        w.begin_array();
        for violation in frame.map_or(&[][..], |frame| &frame.violations[..]) {
            write_error(w, violation);
        }
        w.end_array();
    }
    w.end_object();
    // The decoded trees, nearly all of the output.
    for (side, frame) in sides {
        w.known_key(side);
        match frame {
            Some(DecodedFrame {
                body_json: Some(json),
                ..
            }) => w.json_text(json),
            Some(DecodedFrame {
                body: Some(body), ..
            }) => body.write_json(w),
            _ => w.null(),
        }
    }
    w.end_object();
}

/// An address as `Display` writes it: IPv4 by hand, which is nearly all.
fn write_addr<S: JsonSink>(w: &mut S, addr: SocketAddr) {
    match addr {
        SocketAddr::V4(v4) => {
            // "255.255.255.255:65535" is the longest.
            let mut text = [0u8; 21];
            let mut len = 0;
            for (index, octet) in v4.ip().octets().into_iter().enumerate() {
                if index > 0 {
                    put_byte(&mut text, &mut len, b'.');
                }
                put_decimal(&mut text, &mut len, u16::from(octet));
            }
            put_byte(&mut text, &mut len, b':');
            put_decimal(&mut text, &mut len, v4.port());
            // Digits, dots and a colon: nothing to escape.
            w.plain_str(text.get(..len).unwrap_or_default());
        }
        SocketAddr::V6(_) => w.display(&addr),
    }
}

fn put_byte(text: &mut [u8], len: &mut usize, byte: u8) {
    if let Some(slot) = text.get_mut(*len) {
        *slot = byte;
        *len += 1;
    }
}

/// `n` in decimal, without leading zeros.
fn put_decimal(text: &mut [u8], len: &mut usize, n: u16) {
    let mut started = false;
    for power in [10_000, 1_000, 100, 10, 1] {
        // A remainder by 10 is a digit.
        let digit = (n / power % 10) as u8;
        started |= digit != 0 || power == 1;
        if started {
            put_byte(text, len, b'0' + digit);
        }
    }
}

fn write_sizes<S: JsonSink>(w: &mut S, exchange: &Exchange) {
    let missing = |message: &Option<Box<Message>>| {
        message.as_ref().map_or(0, |message| message.missing_bytes)
    };
    let size = |w: &mut S, size: Option<usize>| match size {
        Some(size) => w.uint(size as u64),
        None => w.null(),
    };
    w.begin_object();
    w.known_key(key!("request"));
    size(w, exchange.request_size());
    w.known_key(key!("response"));
    size(w, exchange.response_size());
    w.known_key(key!("request_missing_bytes"));
    w.uint(missing(&exchange.request));
    w.known_key(key!("response_missing_bytes"));
    w.uint(missing(&exchange.response));
    w.end_object();
}

fn write_summary<S: JsonSink>(w: &mut S, summary: &Summary) {
    w.begin_object();
    w.known_key(key!("line"));
    w.built_str(&mut |line| summary.write_line(line));
    w.known_key(key!("topics"));
    w.begin_object();
    for (topic, partitions) in &summary.topics {
        w.key(topic);
        w.begin_array();
        for partition in partitions {
            w.int(i64::from(*partition));
        }
        w.end_array();
    }
    w.end_object();
    w.known_key(key!("records"));
    w.uint(summary.record_count());
    w.known_key(key!("record_bytes"));
    w.uint(summary.record_bytes());
    w.end_object();
}

/// A decode error as `{"message", "path", "offset"}`.
fn write_error<S: JsonSink>(w: &mut S, error: &DecodeError) {
    w.begin_object();
    w.known_key(key!("message"));
    w.display(error);
    w.known_key(key!("path"));
    w.display(&error.path);
    w.known_key(key!("offset"));
    w.uint(error.offset as u64);
    w.end_object();
}

/// `2024-05-01T12:34:56.123456789Z`: RFC 3339 in UTC with nanoseconds.
pub fn rfc3339(ts_ns: i64) -> String {
    let (year, month, day, of_day, nanos) = civil(ts_ns);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        of_day / 3_600,
        of_day % 3_600 / 60,
        of_day % 60
    )
}

/// Appends `2024-05-01T12:34:56.123456Z`: [`rfc3339`] cut to
/// microseconds (down, as the time columns of text lines are), without the
/// formatting machinery.
pub fn push_rfc3339_micros(out: &mut String, ts_ns: i64) {
    match rfc3339_bytes(ts_ns) {
        // ASCII digits and separators only.
        Some(bytes) => bytes
            .get(..26)
            .into_iter()
            .flatten()
            .for_each(|byte| out.push(char::from(*byte))),
        None => {
            // Nine digits of nanoseconds and the Z: cut the last three.
            let full = rfc3339(ts_ns);
            out.push_str(full.get(..full.len() - 4).unwrap_or(&full));
        }
    }
    out.push('Z');
}

/// [`rfc3339`] without the formatting machinery, for the years of four
/// digits (all that nanoseconds in an i64 reach: 1677 to 2262).
fn rfc3339_bytes(ts_ns: i64) -> Option<[u8; 30]> {
    let (year, month, day, of_day, nanos) = civil(ts_ns);
    let year = u16::try_from(year).ok().filter(|year| *year <= 9999)?;
    let mut out = *b"0000-00-00T00:00:00.000000000Z";
    let mut put = |at: usize, width: usize, mut n: i64| {
        for slot in out.iter_mut().skip(at).take(width).rev() {
            // A remainder by 10 is a digit.
            *slot = b'0' + (n % 10) as u8;
            n /= 10;
        }
    };
    put(0, 4, i64::from(year));
    put(5, 2, month);
    put(8, 2, day);
    put(11, 2, of_day / 3_600);
    put(14, 2, of_day % 3_600 / 60);
    put(17, 2, of_day % 60);
    put(20, 9, nanos);
    Some(out)
}

/// Year, month, day, second of the day and nanoseconds of a time in
/// nanoseconds since the Unix epoch, in UTC.
fn civil(ts_ns: i64) -> (i64, i64, i64, i64, i64) {
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
    (year, month, day, of_day, nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_by_hand_matches_the_formatted_form() {
        let times = [
            0,
            -1,
            1_709_251_199_123_456_789,
            951_782_400_000_000_000,
            i64::MIN,
            i64::MAX,
            1_795_299_512_784_447_863,
        ];
        for ts in times
            .into_iter()
            .chain((0..2_000i64).map(|n| n.wrapping_mul(7_777_777_777_777_777)))
        {
            let bytes = rfc3339_bytes(ts).expect("four-digit year");
            assert_eq!(
                std::str::from_utf8(&bytes),
                Ok(rfc3339(ts).as_str()),
                "{ts}"
            );
        }
    }
}
