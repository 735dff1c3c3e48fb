//! Snapshots of `kwire read` on every corpus capture: the text lines, the
//! NDJSON and the `--stats` report, three snapshots per capture named after
//! it (`snapshots/read_snapshots__{text,json,stats}@X.pcap.snap`). A new
//! capture in corpus/captures becomes a test through `insta::glob!`.
//!
//! Before anything is snapshotted, the run is checked, so that a snapshot
//! cannot bless a broken result:
//! - the exchanges (`session::read_capture`) carry exactly the frames and
//!   the pairing of the capture's `corpus/frames` oracle, cut by an
//!   independent Python implementation (`common::compare`), and their
//!   number is the oracle's: one per request, orphan response and raw SASL
//!   step;
//! - a response is decoded with its request's API key and version and has
//!   its correlation id; latencies are not negative;
//! - decode errors and protocol violations are exactly the frames
//!   corpus/findings.txt lists for the capture (matched by client, API,
//!   version, correlation id and side), with the same message; nothing else
//!   fails to decode;
//! - the binary's NDJSON has every documented key, and per exchange the
//!   API, version, correlation id, state and sizes of the library's
//!   exchange; the text has one line per exchange naming it; the stats
//!   report counts the same exchanges and no loss except the undecodable
//!   frames the findings list.
//!
//! Snapshots are deterministic: the capture is fixed, times in the text are
//! relative to its first packet, and the absolute capture times in the JSON
//! (`ts`, `ts_ns`) are redacted. Record timestamps inside decoded batches
//! are data the clients sent, fixed in the file, and are kept. The JSON
//! snapshot is a projection (one line per exchange: API, version,
//! correlation id, addresses, state, sizes, error names, summary, record
//! counts, decode errors), except for the captures in [`FULL_TREES`], whose
//! snapshot holds the whole objects with their request and response trees
//! and decoded records.
//!
//! Regenerating the corpus (corpus/make.sh) changes ports, times and
//! nonces: review and accept the new snapshots (`cargo insta review`, or
//! `INSTA_UPDATE=always cargo test --test read_snapshots`).

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{
    check_invariants, compare, findings_of, frames_for, json_lines, name_of, oracle_exchange_count,
    oracle_frame_count, oracle_requests, parse_oracle, read_all, stdout_of, Finding, Side,
};
use kwire::codec::{DecodeError, DecodeErrorKind};
use kwire::exchange::{Exchange, ExchangeState, Message};
use kwire::sasl::SaslFraming;
use kwire::session::{AnalyzerOptions, CaptureReport};
use serde_json::{json, Value as Json};

/// Captures whose JSON snapshot holds whole objects (trees and records):
/// SASL steps with redacted secrets, and magic 1 message sets in every
/// codec. The others are projected to stay small.
const FULL_TREES: &[&str] = &["kcat-magic1-mock", "python-sasl-tansu"];

/// Keys every NDJSON object has (the list and the rest of the
/// documented ones).
const KEYS: &[&str] = &[
    "id",
    "ts",
    "ts_ns",
    "time",
    "connection",
    "client",
    "broker",
    "client_id",
    "api_key",
    "api_name",
    "api_version",
    "correlation_id",
    "state",
    "inferred",
    "lost",
    "latency_us",
    "sizes",
    "errors",
    "summary",
    "sasl",
    "decode_errors",
    "request",
    "response",
];

#[test]
fn read_output_of_every_corpus_capture() {
    insta::glob!("../corpus/captures", "*.pcap", |path| {
        let name = name_of(path);
        let path_text = path.to_str().expect("utf-8 path");

        // The library's view, against the oracle and the findings.
        let (exchanges, report) = read_all(path, AnalyzerOptions::default());
        check_invariants(&name, &exchanges, &report);
        check_against_oracle(&name, path, &exchanges);
        let findings = findings_of(path);
        let beyond_definitions = check_findings(&name, &exchanges, &findings);

        // The binary's outputs, against the library's exchanges.
        let text = stdout_of(&["read", path_text]);
        let objects = json_lines(&stdout_of(&["read", "--json", path_text]));
        let stats_text = stdout_of(&["read", "--stats", path_text]);
        let stats: Json =
            serde_json::from_str(&stdout_of(&["read", "--stats", "--json", path_text]))
                .expect("stats JSON");
        check_json(&name, &objects, &exchanges);
        check_text(&name, &text, &objects);
        let undecodable =
            findings.iter().filter(|finding| finding.error).count() + beyond_definitions;
        check_stats(&name, &stats, &objects, &report, undecodable as u64);

        let stem = path.file_stem().expect("stem").to_string_lossy();
        let json_snapshot = if FULL_TREES.contains(&stem.as_ref()) {
            full_objects(objects)
        } else {
            projection(&objects)
        };
        let snapshot = |kind: &str, command: &str, value: &str| {
            insta::with_settings!({
                description => format!("kwire read {command}corpus/captures/{name}"),
                omit_expression => true,
            }, {
                insta::assert_snapshot!(kind, value);
            });
        };
        snapshot("text", "", &text);
        snapshot("json", "--json ", &json_snapshot);
        snapshot("stats", "--stats ", &stats_text);
    });
}

/// The exchanges carry the oracle's frames, paired as it pairs them, and
/// are as many as it implies.
fn check_against_oracle(name: &str, capture: &Path, exchanges: &[Exchange]) {
    let frames = frames_for(capture);
    let oracle = parse_oracle(
        &std::fs::read_to_string(&frames)
            .unwrap_or_else(|error| panic!("{}: {error}", frames.display())),
    );
    let outcome = compare(exchanges, &oracle);
    assert!(
        outcome.mismatches.is_empty(),
        "{name}: differs from its frames oracle:\n{}",
        outcome.mismatches.join("\n")
    );
    assert_eq!(
        outcome.frames,
        oracle_frame_count(&oracle),
        "{name}: frames matched"
    );
    assert_eq!(
        exchanges.len(),
        oracle_exchange_count(&oracle),
        "{name}: exchanges"
    );
    let with_request_header = exchanges
        .iter()
        .filter(|e| e.request.is_some() && !is_raw_sasl(e))
        .count();
    assert_eq!(
        with_request_header,
        oracle_requests(&oracle),
        "{name}: exchanges with a request = `req` lines of the frames file"
    );
    for exchange in exchanges {
        let at = format!("{name}: exchange {}", exchange.id);
        if let Some(latency) = exchange.latency_ns() {
            assert!(latency >= 0, "{at}: latency {latency} ns");
        }
        let (Some(request), Some(response)) = (&exchange.request, &exchange.response) else {
            continue;
        };
        let (request, response) = (&request.frame, &response.frame);
        assert_eq!(
            (response.api_key, response.api_version),
            (request.api_key, request.api_version),
            "{at}: the response is decoded as its request's API"
        );
        assert_eq!(
            (request.api_key, request.api_version),
            (exchange.api_key, exchange.api_version),
            "{at}"
        );
        if !is_raw_sasl(exchange) {
            assert_eq!(
                response.correlation_id, request.correlation_id,
                "{at}: paired by correlation id"
            );
            assert_eq!(
                request.correlation_id,
                Some(exchange.correlation_id),
                "{at}"
            );
        }
    }
}

fn is_raw_sasl(exchange: &Exchange) -> bool {
    exchange
        .sasl
        .as_ref()
        .is_some_and(|sasl| sasl.framing == SaslFraming::Raw)
}

/// Decode errors and violations are exactly the findings, message for
/// message, apart from versions newer than kwire's definitions (Metadata
/// v13 from librdkafka 2.16), whose header decodes and whose body stays raw
/// as tests/corpus_frames.rs allows. Returns how many frames those are.
fn check_findings(name: &str, exchanges: &[Exchange], findings: &[Finding]) -> usize {
    let mut found = Vec::new();
    let mut beyond_definitions = 0;
    for exchange in exchanges {
        let sides = [
            (Side::Request, exchange.request.as_deref()),
            (Side::Response, exchange.response.as_deref()),
        ];
        for (side, message) in sides {
            let Some(Message { frame, .. }) = message else {
                continue;
            };
            let finding = |error: bool, message: String| Finding {
                client: exchange.client.to_string(),
                api_key: exchange.api_key,
                api_version: exchange.api_version,
                correlation_id: exchange.correlation_id,
                side,
                error,
                message,
            };
            match frame.error.as_deref() {
                None => {}
                Some(DecodeError {
                    kind: DecodeErrorKind::UnknownVersion { version, max, .. },
                    ..
                }) if version > max => beyond_definitions += 1,
                Some(error) => found.push(finding(true, error.to_string())),
            }
            for violation in &frame.violations {
                found.push(finding(false, violation.to_string()));
            }
        }
    }
    found.sort();
    let missing: Vec<&Finding> = findings.iter().filter(|f| !found.contains(f)).collect();
    let unexpected: Vec<&Finding> = found.iter().filter(|f| !findings.contains(f)).collect();
    assert!(
        missing.is_empty() && unexpected.is_empty(),
        "{name}: decode errors and violations differ from corpus/findings.txt\n\
         listed there, not reported: {missing:#?}\nreported, not listed: {unexpected:#?}"
    );
    beyond_definitions
}

/// The NDJSON objects are the library's exchanges, with every key.
fn check_json(name: &str, objects: &[Json], exchanges: &[Exchange]) {
    assert_eq!(objects.len(), exchanges.len(), "{name}: NDJSON lines");
    let by_id: BTreeMap<u64, &Exchange> = exchanges.iter().map(|e| (e.id, e)).collect();
    for object in objects {
        let at = format!("{name}: {object}");
        for key in KEYS {
            assert!(object.get(key).is_some(), "{at}: no key {key}");
        }
        for key in [
            "request",
            "response",
            "request_missing_bytes",
            "response_missing_bytes",
        ] {
            assert!(object["sizes"].get(key).is_some(), "{at}: no sizes.{key}");
        }
        for key in ["line", "topics", "records", "record_bytes"] {
            assert!(
                object["summary"].get(key).is_some(),
                "{at}: no summary.{key}"
            );
        }
        let id = object["id"].as_u64().expect("id");
        let exchange = by_id.get(&id).unwrap_or_else(|| panic!("{at}: no such id"));
        assert_eq!(object["api_key"], exchange.api_key, "{at}");
        assert_eq!(object["api_name"], exchange.api_name(), "{at}");
        assert_eq!(object["api_version"], exchange.api_version, "{at}");
        assert_eq!(object["correlation_id"], exchange.correlation_id, "{at}");
        assert_eq!(object["client"], exchange.client.to_string(), "{at}");
        assert_eq!(object["broker"], exchange.broker.to_string(), "{at}");
        assert_eq!(object["sizes"]["request"], json!(exchange.request_size()));
        assert_eq!(object["sizes"]["response"], json!(exchange.response_size()));
        let state = match exchange.state {
            ExchangeState::Complete => "complete",
            ExchangeState::NoResponseExpected => "no_response",
            ExchangeState::ResponseMissing => "response_missing",
            ExchangeState::RequestMissing => "request_missing",
        };
        assert_eq!(object["state"], state, "{at}");
        match object["latency_us"].as_f64() {
            Some(latency) => assert!(latency >= 0.0 && state == "complete", "{at}"),
            None => assert_ne!(state, "complete", "{at}: no latency"),
        }
        let mut records = 0;
        for side in ["request", "response"] {
            records += decoded_records(&object[side], &at);
        }
        assert_eq!(object["summary"]["records"], records, "{at}: record count");
        // A tree for each side that was seen and decoded, or the error.
        for side in ["request", "response"] {
            let seen = !object["sizes"][side].is_null();
            let tree = !object[side].is_null();
            let error = !object["decode_errors"][side].is_null();
            assert!(!(tree && error) || seen, "{at}: {side}");
            if !seen {
                assert!(!tree && !error, "{at}: {side} tree without a frame");
            }
        }
    }
}

/// Counts the records of every record set in a tree, checking that each
/// has its offset, timestamp, key and value, and its headers in a v2 batch.
fn decoded_records(tree: &Json, at: &str) -> u64 {
    match tree {
        Json::Object(object) => {
            if let Some(Json::Array(batches)) = object.get("batches") {
                let mut count = 0;
                for batch in batches {
                    let magic = batch["magic"].as_i64().expect("magic");
                    let records = batch["records"].as_array();
                    for record in records.into_iter().flatten() {
                        // Magic 0 messages have no timestamp; a control
                        // record (transaction marker) holds its type
                        // instead of a key and a value.
                        let mut keys = vec!["offset"];
                        if magic >= 1 {
                            keys.push("timestamp");
                        }
                        if record.get("control").is_none() {
                            keys.extend(["key", "value"]);
                        }
                        for key in keys {
                            assert!(record.get(key).is_some(), "{at}: record without {key}");
                        }
                        if magic == 2 {
                            assert!(record["headers"].is_array(), "{at}: record without headers");
                        }
                        count += 1;
                    }
                }
                return count;
            }
            object
                .values()
                .map(|value| decoded_records(value, at))
                .sum()
        }
        Json::Array(items) => items.iter().map(|item| decoded_records(item, at)).sum(),
        _ => 0,
    }
}

/// One text line per exchange, naming it.
fn check_text(name: &str, text: &str, objects: &[Json]) {
    assert_eq!(text.lines().count(), objects.len(), "{name}: text lines");
    for (line, object) in text.lines().zip(objects) {
        let api = format!(
            "{} v{}",
            object["api_name"].as_str().expect("name"),
            object["api_version"]
        );
        for part in [
            api,
            format!("#{}", object["correlation_id"]),
            object["client"].as_str().expect("client").to_owned(),
            object["broker"].as_str().expect("broker").to_owned(),
        ] {
            assert!(line.contains(&part), "{name}: {line:?} lacks {part:?}");
        }
        assert!(
            line.trim_start().starts_with(&format!("{} ", object["id"])),
            "{name}: {line:?}"
        );
    }
}

/// The report counts the same exchanges and, for a clean capture, no loss
/// but the frames real peers sent malformed.
fn check_stats(
    name: &str,
    stats: &Json,
    objects: &[Json],
    report: &CaptureReport,
    undecodable: u64,
) {
    assert_eq!(stats["exchanges"], objects.len() as u64, "{name}");
    assert_eq!(stats["packets"], report.packets, "{name}");
    assert!(stats["read_error"].is_null(), "{name}");
    let apis = stats["apis"].as_array().expect("apis");
    let per_api: u64 = apis
        .iter()
        .map(|api| api["exchanges"].as_u64().expect("count"))
        .sum();
    assert_eq!(per_api, objects.len() as u64, "{name}: per-API counts");
    for api in apis {
        let count = objects
            .iter()
            .filter(|o| o["api_key"] == api["api_key"])
            .count();
        assert_eq!(api["exchanges"], count as u64, "{name}: {api}");
    }
    let losses = &stats["losses"];
    let expected = json!({
        "packets_truncated": 0,
        "packets_skipped": 0,
        "gap_bytes": 0,
        "frames_lost": 0,
        "resync_bytes": 0,
        "undecodable_frames": undecodable,
        "frames_too_large": 0,
    });
    assert_eq!(losses, &expected, "{name}: losses");
    let connections: u64 = stats["connections"]
        .as_array()
        .expect("connections")
        .iter()
        .map(|c| c["exchanges"].as_u64().expect("exchanges"))
        .sum();
    assert_eq!(connections, objects.len() as u64, "{name}: per connection");
}

/// One line per exchange: what it is, not its trees.
fn projection(objects: &[Json]) -> String {
    let mut out = String::new();
    for object in objects {
        let sizes = &object["sizes"];
        let mut line = json!({
            "id": object["id"],
            "api": object["api_name"],
            "version": object["api_version"],
            "correlation": object["correlation_id"],
            "client": object["client"],
            "broker": object["broker"],
            "state": object["state"],
            "sizes": [sizes["request"], sizes["response"]],
            "errors": object["errors"],
            "summary": object["summary"]["line"],
            "records": object["summary"]["records"],
            "record_bytes": object["summary"]["record_bytes"],
        });
        let extra = line.as_object_mut().expect("an object");
        for flag in ["inferred", "lost"] {
            if object[flag] == true {
                extra.insert(flag.to_owned(), Json::Bool(true));
            }
        }
        if !object["sasl"].is_null() {
            extra.insert("sasl".to_owned(), object["sasl"]["framing"].clone());
        }
        for side in ["request", "response"] {
            let error = &object["decode_errors"][side];
            if !error.is_null() {
                extra.insert(format!("{side}_error"), error["message"].clone());
            }
        }
        out.push_str(&line.to_string());
        out.push('\n');
    }
    out
}

/// The whole objects, absolute capture times redacted.
fn full_objects(mut objects: Vec<Json>) -> String {
    for object in &mut objects {
        object["ts"] = json!("[ts]");
        object["ts_ns"] = json!("[ts_ns]");
    }
    serde_json::to_string_pretty(&Json::Array(objects)).expect("JSON")
}
