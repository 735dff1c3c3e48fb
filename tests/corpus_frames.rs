//! Every frame in corpus/frames (cut from real clients talking to real
//! brokers, see corpus/README.md) must decode without error and re-encode
//! byte for byte, and its JSON form must build the same message again.
//! A new `.frames` file is picked up without registration.

use std::path::Path;

use bytes::Bytes;
use kwire::codec::{
    decode_header, decode_message, message_from_json, DecodeErrorKind, DecodeOptions, SKIM_KEEPS,
};
use kwire::frame::{self, Direction};
use kwire::frames_file::{self, FrameLine, LineKind};
use kwire::json::JsonWriter;
use kwire::schema;
use kwire::summary::Summary;
use kwire::value::{Struct, Value};
use kwire::wire::Reader;

mod common;

use common::corpus_frame_files as frame_files;

fn parse_frames(path: &Path) -> Vec<FrameLine> {
    let text = std::fs::read_to_string(path).expect("frames file");
    frames_file::parse(&text).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// Whether a tree holds record batches: their JSON form re-encodes the
/// batches, which need not reproduce another client's compressed bytes.
fn has_records(tree: &Struct) -> bool {
    fn walk(value: &Value) -> bool {
        match value {
            Value::Records(_) => true,
            Value::Struct(inner) => has_records(inner),
            Value::Array(items) => items.iter().any(walk),
            _ => false,
        }
    }
    tree.fields.iter().any(|field| walk(&field.value))
}

#[test]
fn every_corpus_frame_decodes_and_round_trips_byte_for_byte() {
    let mut checked = 0;
    let mut failures = Vec::new();
    let mut findings = Vec::new();
    let mut beyond_definitions = 0;
    let mut newest_layout = 0;
    for path in frame_files() {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        for frame in parse_frames(&path) {
            let at = format!("{name}:{}", frame.line);
            let Some(decoded) = frame.decode(&DecodeOptions::default()) else {
                continue;
            };
            match decoded.error.as_ref().map(|error| &error.kind) {
                // A version a little newer than the definitions, read with
                // the newest layout known (the rest kept for re-encoding).
                None if decoded.body_version < decoded.api_version
                    && decoded.api_key != schema::API_VERSIONS_KEY =>
                {
                    newest_layout += 1;
                }
                None => {}
                // Versions newer than kwire's definitions: the header
                // decodes, the body stays raw and still round-trips.
                Some(DecodeErrorKind::UnknownVersion { version, max, .. }) if version > max => {
                    beyond_definitions += 1;
                }
                // Frames real peers got wrong: listed in corpus/findings.txt.
                Some(_) => {
                    let error = decoded.error.as_ref().expect("an error");
                    findings.push(format!("{at} error: {error}"));
                    continue;
                }
            }
            findings.extend(
                decoded
                    .violations
                    .iter()
                    .map(|violation| format!("{at} violation: {violation}")),
            );
            assert_eq!(decoded.api_key, frame.api_key, "{at}");
            match frame::reencode(&decoded) {
                Ok(bytes) if bytes == frame.bytes => {}
                Ok(bytes) => failures.push(format!(
                    "{at}: {} re-encodes to {} bytes instead of {}, first difference at byte {}",
                    decoded.context(),
                    bytes.len(),
                    frame.bytes.len(),
                    first_difference(&bytes, &frame.bytes)
                )),
                Err(error) => failures.push(format!("{at}: {}: {error}", decoded.context())),
            }
            checked += 1;
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {checked} frames failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(checked >= 1000, "only {checked} corpus frames checked");
    check_findings(&findings);
    // The corpus's Metadata v13 frames (newer clients) all fit the v12
    // layout.
    assert!(
        newest_layout >= 50,
        "only {newest_layout} frames read with a newer layout"
    );
    println!(
        "{checked} frames round-trip ({newest_layout} of versions newer than the definitions \
         read with the newest layout, {beyond_definitions} kept raw); {} findings, as expected",
        findings.len()
    );
}

/// A skimmed frame (`DecodeOptions::skim`, what `kwire read` lines and
/// statistics use) must say what its decoded tree says: the same summary,
/// the same error and violations, the same correlation id and client id
/// and the same numbers the Kafka layer reads (`SKIM_KEEPS`). Skimmed for
/// JSON as well (`DecodeOptions::json`, what `kwire read --json` uses), it
/// must also write its body as the tree's JSON, byte for byte.
#[test]
fn skimming_every_corpus_frame_finds_what_its_tree_holds() {
    let (mut checked, mut with_topics, mut with_records, mut with_errors) = (0, 0, 0, 0);
    let mut written = 0;
    for path in frame_files() {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        for (frame, json) in parse_frames(&path)
            .into_iter()
            .flat_map(|frame| [(frame.clone(), false), (frame, true)])
        {
            let at = format!("{name}:{} (json {json})", frame.line);
            let skim = DecodeOptions {
                skim: true,
                json,
                ..DecodeOptions::default()
            };
            let (Some(tree), Some(skimmed)) =
                (frame.decode(&DecodeOptions::default()), frame.decode(&skim))
            else {
                continue;
            };
            if let Some(text) = &skimmed.body_json {
                let mut whole = JsonWriter::in_memory();
                tree.body.as_ref().expect("a body").write_json(&mut whole);
                assert_eq!(
                    String::from_utf8_lossy(text),
                    String::from_utf8_lossy(&whole.into_bytes()),
                    "{at}: JSON differs"
                );
                written += 1;
            }
            assert!(
                json || skimmed.body_json.is_none(),
                "{at}: JSON unasked for"
            );
            let expected = tree.body.as_ref().map(Summary::of_tree);
            assert_eq!(skimmed.summary, expected, "{at}: summaries differ");
            let describe = |errors: &[kwire::codec::DecodeError]| {
                errors.iter().map(ToString::to_string).collect::<Vec<_>>()
            };
            assert_eq!(
                skimmed.error.as_ref().map(ToString::to_string),
                tree.error.as_ref().map(ToString::to_string),
                "{at}: errors differ"
            );
            assert_eq!(
                describe(&skimmed.violations),
                describe(&tree.violations),
                "{at}: violations differ"
            );
            assert_eq!(
                (skimmed.correlation_id, skimmed.client_id()),
                (tree.correlation_id, tree.client_id()),
                "{at}: headers differ"
            );
            // A skimmed body keeps the numbers the Kafka layer reads.
            let kept = |body: &Struct| {
                SKIM_KEEPS
                    .iter()
                    .map(|name| (*name, body.int(name)))
                    .collect::<Vec<_>>()
            };
            assert_eq!(
                skimmed.body.as_ref().map(kept),
                tree.body.as_ref().map(kept),
                "{at}: kept numbers differ"
            );
            let summary = expected.unwrap_or_default();
            with_topics += usize::from(!summary.topics.is_empty());
            with_records += usize::from(!summary.records.is_empty());
            with_errors += usize::from(!summary.errors.is_empty());
            checked += 1;
        }
    }
    // The corpus covers what a summary holds, and nearly every frame is
    // skimmed.
    assert!(checked >= 2000, "only {checked} corpus frames checked");
    assert!(written >= 1000, "only {written} frames written as JSON");
    assert!(with_topics >= 300, "only {with_topics} frames name topics");
    assert!(
        with_records >= 100,
        "only {with_records} frames hold records"
    );
    assert!(with_errors >= 20, "only {with_errors} frames hold errors");
    println!(
        "{checked} frames skimmed alike, {written} of them written as JSON: {with_topics} with \
         topics, {with_records} with records, {with_errors} with errors"
    );
}

/// The malformed frames and protocol violations real peers sent in the
/// corpus, one a line, are listed in `corpus/findings.txt` with the reason
/// for each group; kwire must report exactly those. `KWIRE_BLESS=1`
/// rewrites the list (keeping its comment lines).
fn check_findings(found: &[String]) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/findings.txt");
    if std::env::var_os("KWIRE_BLESS").is_some() {
        let kept: String = std::fs::read_to_string(&path)
            .unwrap_or_default()
            .lines()
            .filter(|line| line.starts_with('#'))
            .map(|line| format!("{line}\n"))
            .collect();
        let listed: String = found.iter().map(|line| format!("{line}\n")).collect();
        std::fs::write(&path, kept + &listed).expect("write findings.txt");
        return;
    }
    let text = std::fs::read_to_string(&path).expect("corpus/findings.txt");
    let expected: Vec<&str> = text
        .lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .collect();
    let unexpected: Vec<&String> = found
        .iter()
        .filter(|line| !expected.contains(&line.as_str()))
        .collect();
    let missing: Vec<&&str> = expected
        .iter()
        .filter(|line| !found.iter().any(|found| found == **line))
        .collect();
    assert!(
        unexpected.is_empty() && missing.is_empty(),
        "findings differ from corpus/findings.txt\nnot listed:\n{unexpected:#?}\nlisted but not found:\n{missing:#?}"
    );
}

#[test]
fn json_form_of_every_corpus_frame_rebuilds_the_same_message() {
    let mut checked = 0;
    for path in frame_files() {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        for frame in parse_frames(&path) {
            let at = format!("{name}:{}", frame.line);
            let Some(decoded) = frame.decode(&DecodeOptions::default()) else {
                continue;
            };
            let Some(body) = decoded.body.as_ref().filter(|_| decoded.error.is_none()) else {
                continue;
            };
            let api = schema::api(decoded.api_key).expect("known api");
            let spec = match decoded.direction {
                Direction::Request => api.request,
                Direction::Response => api.response,
            };
            let json = serde_json::to_value(body).expect("json");
            let rebuilt = message_from_json(spec, decoded.api_version, &json)
                .unwrap_or_else(|error| panic!("{at}: {} from JSON: {error}", decoded.context()));
            if has_records(body) {
                let mut rebuilt = serde_json::to_value(&rebuilt).expect("json");
                let mut json = json;
                forget_compressed_crcs(&mut rebuilt);
                forget_compressed_crcs(&mut json);
                assert_eq!(rebuilt, json, "{at}");
            } else {
                assert_eq!(&rebuilt, body, "{at}: {}", decoded.context());
            }
            checked += 1;
        }
    }
    assert!(checked >= 100, "only {checked} corpus frames checked");
}

/// Compressing again need not give the same bytes as the client did, so the
/// CRC and length of a compressed batch may differ; the rest must match.
fn forget_compressed_crcs(json: &mut serde_json::Value) {
    match json {
        serde_json::Value::Object(object) => {
            if object
                .get("compression")
                .is_some_and(|codec| codec != "none")
            {
                object.remove("crc");
                object.remove("batch_length");
                object.remove("message_size");
            }
            object.values_mut().for_each(forget_compressed_crcs);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(forget_compressed_crcs),
        _ => {}
    }
}

fn first_difference(left: &[u8], right: &[u8]) -> usize {
    left.iter()
        .zip(right)
        .position(|(a, b)| a != b)
        .unwrap_or(left.len().min(right.len()))
}

/// Frame headers are read by a flat fast path when they are well formed
/// (`codec::decode_header`). For every corpus header, and for each of them
/// cut short at every length or with any one of its bytes changed, the
/// fast path must give what the general walk gives: the same tree, error,
/// violations and end position; skimmed, the same correlation id, client
/// id, error and end position, and no tree when whole.
#[test]
fn every_corpus_header_reads_flat_as_the_walk_reads_it() {
    let options = DecodeOptions::default();
    let skim = DecodeOptions {
        skim: true,
        ..DecodeOptions::default()
    };
    let read = |bytes: &Bytes, spec, version, flat: bool| {
        let mut reader = Reader::new(bytes.clone());
        let decoded = if flat {
            decode_header(&mut reader, spec, version, &options).message
        } else {
            decode_message(&mut reader, spec, version, &options)
        };
        let violations: Vec<String> = decoded.violations.iter().map(ToString::to_string).collect();
        (
            decoded.body,
            decoded.error.as_ref().map(ToString::to_string),
            violations,
            reader.offset(),
        )
    };
    let (mut compared, mut whole, mut skimmed_flat) = (0, 0, 0);
    for path in frame_files() {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        for frame in parse_frames(&path) {
            let Some(api) = schema::api(frame.api_key) else {
                continue;
            };
            let (spec, version) = match frame.kind {
                LineKind::Request => (
                    &schema::REQUEST_HEADER,
                    schema::request_header_version(api, frame.api_version),
                ),
                LineKind::Response => (
                    &schema::RESPONSE_HEADER,
                    schema::response_header_version(api, frame.api_version),
                ),
                LineKind::SaslRaw => continue,
            };
            let header = frame.bytes.slice(4.min(frame.bytes.len())..);
            let studied = header.len().min(48);
            let cuts = (0..studied).map(|len| header.slice(..len));
            let changed = (0..studied).map(|at| {
                let mut bytes = header.to_vec();
                bytes[at] ^= 0x80;
                Bytes::from(bytes)
            });
            for variant in std::iter::once(header.clone()).chain(cuts).chain(changed) {
                let flat = read(&variant, spec, version, true);
                let walked = read(&variant, spec, version, false);
                assert_eq!(flat, walked, "{name}:{}: {variant:?}", frame.line);
                let mut reader = Reader::new(variant.clone());
                let skimmed = decode_header(&mut reader, spec, version, &skim);
                let tree = &walked.0;
                assert_eq!(
                    (
                        skimmed.correlation_id.map(i64::from),
                        skimmed.client_id.as_deref(),
                        skimmed.message.error.as_ref().map(ToString::to_string),
                        reader.offset(),
                    ),
                    (
                        tree.int("correlation_id"),
                        tree.str("client_id"),
                        walked.1.clone(),
                        walked.3
                    ),
                    "{name}:{}: skimmed {variant:?}",
                    frame.line
                );
                // No tree when read flat; the walk's where it had to walk.
                let body = &skimmed.message.body;
                assert!(
                    *body == Struct::default() || body == tree,
                    "{name}:{}: skimmed tree {body:?}",
                    frame.line
                );
                skimmed_flat += usize::from(*body == Struct::default() && walked.1.is_none());
                whole += usize::from(walked.1.is_none());
                compared += 1;
            }
        }
    }
    println!("{compared} headers compared, {whole} whole, {skimmed_flat} skimmed without a tree");
    assert!(compared >= 50_000, "only {compared} headers compared");
    assert!(
        skimmed_flat >= 20_000,
        "only {skimmed_flat} headers skimmed without a tree"
    );
    assert!(whole >= 20_000, "only {whole} headers decoded whole");
}
