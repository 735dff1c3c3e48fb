//! Decode throughput, printed as a table: `cargo bench --bench decode`.
//!
//! Cases: the Produce requests and Fetch responses of corpus/frames (real
//! clients, mostly small), and frames built with kwire's own encoder that
//! look like a busy producer or consumer: a Produce v9 request and a Fetch
//! v12 response each carrying 1 MiB of records (20-byte keys, 100-byte
//! values, one header) in 8 partitions, uncompressed and compressed with lz4
//! and zstd. Each case is decoded with records (`decode_records: true`) and
//! without (the message tree only).
//!
//! Every case runs in rounds of at least ROUND, ROUNDS times, on one thread;
//! the table gives the best and median round. MB/s counts frame bytes as they
//! travel (compressed ones compressed); data MB/s counts the keys, values
//! and headers decoded (best round); 1 MB = 10^6 bytes. The goal is 1 GB/s
//! of frames with records decoded, on uncompressed batches.
//!
//! A second table times writing the decoded frames as JSON (records
//! decoded): MB/s of frame and of JSON text.
//!
//! Not a test: it asserts only that each generated frame decodes cleanly.
//! An argument picks cases by name: `cargo bench --bench decode -- Fetch`.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kwire::codec::{message_from_json, DecodeOptions};
use kwire::display;
use kwire::frame::{self, DecodedFrame};
use kwire::json::JsonWriter;
use kwire::records::{BatchSpec, Compression, RecordSpec};
use kwire::schema;
use kwire::value::{hex, parse_hex, Struct, Value};
use serde_json::json;

const ROUND: Duration = Duration::from_millis(250);
const ROUNDS: usize = 5;

/// Records in the generated frames: 1 MiB of keys and values over 8
/// partitions, one batch each.
const PARTITIONS: usize = 8;
const KEY_BYTES: usize = 20;
const VALUE_BYTES: usize = 100;
const RECORDS_PER_BATCH: usize = (1 << 20) / (KEY_BYTES + VALUE_BYTES) / PARTITIONS;

#[derive(Clone, Copy, PartialEq)]
enum Side {
    Request,
    /// A response to this API version.
    Response(i16, i16),
}

struct Case {
    name: String,
    frames: Vec<(Side, Bytes)>,
    /// Generated frames must decode without a problem; corpus frames are
    /// what real peers sent, problems included (corpus/findings.txt).
    strict: bool,
}

fn main() {
    let mut cases = Vec::new();
    for (api, name) in [
        (schema::PRODUCE_KEY, "Produce"),
        (schema::FETCH_KEY, "Fetch"),
    ] {
        let frames = corpus_frames(api);
        if !frames.is_empty() {
            let side = if api == schema::PRODUCE_KEY {
                "requests"
            } else {
                "responses"
            };
            cases.push(Case {
                name: format!("corpus {name} {side} ({})", frames.len()),
                frames,
                strict: false,
            });
        }
    }
    for codec in [Compression::None, Compression::Lz4, Compression::Zstd] {
        let batches = batches(codec);
        cases.push(Case {
            name: format!("Produce v9 request, 1 MiB, {codec}"),
            frames: vec![(Side::Request, produce_v9(&batches))],
            strict: true,
        });
        cases.push(Case {
            name: format!("Fetch v12 response, 1 MiB, {codec}"),
            frames: vec![(Side::Response(schema::FETCH_KEY, 12), fetch_v12(&batches))],
            strict: true,
        });
    }

    // `cargo bench --bench decode -- zstd` runs only the cases whose name
    // holds "zstd"; cargo itself passes `--bench`.
    if let Some(filter) = std::env::args().skip(1).find(|arg| !arg.starts_with("--")) {
        cases.retain(|case| case.name.contains(&filter));
    }
    println!(
        "{:<40} {:>7} {:>9} {:>9} {:>10} {:>9} {:>9} {:>11}",
        "case",
        "records",
        "MB/s best",
        "MB/s med",
        "frames/s",
        "frame MB",
        "data MB/s",
        "records/s"
    );
    for case in &cases {
        for decode_records in [true, false] {
            let options = DecodeOptions {
                records: if decode_records {
                    kwire::codec::RecordsMode::Full
                } else {
                    kwire::codec::RecordsMode::Raw
                },
                ..DecodeOptions::default()
            };
            let (bytes, tally) = check(case, &options);
            let rounds = measure(case, &options);
            let best = rounds[0];
            let median = rounds[rounds.len() / 2];
            let frames_per_round = case.frames.len() as f64;
            let mb = bytes as f64 / 1e6;
            let (data, records) = if decode_records {
                (
                    format!("{:.0}", tally.payload as f64 / 1e6 * best),
                    format!("{:.3e}", tally.records as f64 * best),
                )
            } else {
                ("-".to_owned(), "-".to_owned())
            };
            println!(
                "{:<40} {:>7} {:>9.0} {:>9.0} {:>10.0} {:>9.3} {:>9} {:>11}",
                case.name,
                if decode_records { "on" } else { "off" },
                mb * best,
                mb * median,
                frames_per_round * best,
                mb,
                data,
                records
            );
        }
    }
    json_table(&cases);
}

/// The decoded frames of each case written as JSON (`kwire decode --json`'s
/// form, compact, through `json::JsonWriter` to a sink), records decoded:
/// MB/s of frame and of JSON text, best round.
fn json_table(cases: &[Case]) {
    println!();
    println!(
        "{:<40} {:>13} {:>12} {:>9}",
        "JSON writing", "frame MB/s", "JSON MB/s", "JSON MB"
    );
    let options = DecodeOptions::default();
    for case in cases {
        let decoded: Vec<DecodedFrame> = case
            .frames
            .iter()
            .map(|(side, bytes)| decode(*side, bytes.clone(), &options))
            .collect();
        let frame_bytes: usize = case.frames.iter().map(|(_, bytes)| bytes.len()).sum();
        let mut counter = Counter(0);
        write_json(&decoded, &mut counter);
        let json_bytes = counter.0;
        let mut rates = Vec::with_capacity(ROUNDS);
        for _ in 0..ROUNDS {
            let start = Instant::now();
            let mut passes = 0u64;
            while start.elapsed() < ROUND {
                write_json(&decoded, &mut std::io::sink());
                passes += 1;
            }
            rates.push(passes as f64 / start.elapsed().as_secs_f64());
        }
        let best = rates.iter().copied().fold(0.0, f64::max);
        println!(
            "{:<40} {:>13.0} {:>12.0} {:>9.3}",
            case.name,
            frame_bytes as f64 / 1e6 * best,
            json_bytes as f64 / 1e6 * best,
            json_bytes as f64 / 1e6
        );
    }
}

fn write_json(frames: &[DecodedFrame], out: &mut dyn std::io::Write) {
    let mut writer = JsonWriter::to_stream(out);
    for frame in frames {
        display::write_frame_json(&mut writer, frame);
        writer.end_line().expect("written");
    }
    writer.flush().expect("written");
}

/// Counts the bytes written to it.
struct Counter(usize);

impl std::io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Decodes every frame of a case once; returns the passes per second of each
/// round, best first.
fn measure(case: &Case, options: &DecodeOptions) -> Vec<f64> {
    let mut rates = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let start = Instant::now();
        let mut passes = 0u64;
        while start.elapsed() < ROUND {
            for (side, bytes) in &case.frames {
                black_box(decode(*side, bytes.clone(), options));
            }
            passes += 1;
        }
        rates.push(passes as f64 / start.elapsed().as_secs_f64());
    }
    rates.sort_by(|a, b| b.total_cmp(a));
    rates
}

fn decode(side: Side, bytes: Bytes, options: &DecodeOptions) -> DecodedFrame {
    match side {
        Side::Request => frame::decode_request(bytes, options),
        Side::Response(api, version) => frame::decode_response(bytes, api, version, options),
    }
}

/// Decodes each frame once, insisting on a clean decode for a strict case;
/// returns the bytes in one pass and what the records hold.
fn check(case: &Case, options: &DecodeOptions) -> (usize, Tally) {
    let mut bytes = 0;
    let mut total = Tally::default();
    for (side, frame) in &case.frames {
        let decoded = decode(*side, frame.clone(), options);
        let mut problems = Vec::new();
        if let Some(body) = &decoded.body {
            tally(body, &mut problems, &mut total);
        }
        if case.strict {
            let error = &decoded.error;
            assert!(error.is_none(), "{}: {error:?}", case.name);
            assert!(problems.is_empty(), "{}: {problems:?}", case.name);
        }
        bytes += frame.len();
    }
    (bytes, total)
}

/// Records in a tree and the bytes of their keys, values and headers.
#[derive(Clone, Copy, Default)]
struct Tally {
    records: usize,
    payload: usize,
}

fn tally(tree: &Struct, problems: &mut Vec<String>, out: &mut Tally) {
    fn walk(value: &Value, problems: &mut Vec<String>, out: &mut Tally) {
        match value {
            Value::Records(set) => {
                problems.extend(set.problems().map(str::to_owned));
                for record in set.records() {
                    out.records += 1;
                    out.payload += record.key().map_or(0, <[u8]>::len)
                        + record.value().map_or(0, <[u8]>::len)
                        + record
                            .headers()
                            .map(|(key, value)| key.len() + value.map_or(0, <[u8]>::len))
                            .sum::<usize>();
                }
            }
            Value::Struct(inner) => tally(inner, problems, out),
            Value::Array(items) => items.iter().for_each(|item| walk(item, problems, out)),
            _ => {}
        }
    }
    tree.fields
        .iter()
        .for_each(|field| walk(&field.value, problems, out));
}

// ---- frames -----------------------------------------------------------------

fn frames_dir() -> PathBuf {
    std::env::var_os("KWIRE_FRAMES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/frames"))
}

/// Produce requests or Fetch responses from corpus/frames.
fn corpus_frames(api: i16) -> Vec<(Side, Bytes)> {
    let want = if api == schema::PRODUCE_KEY {
        "req"
    } else {
        "resp"
    };
    let mut frames = Vec::new();
    let Ok(entries) = std::fs::read_dir(frames_dir()) else {
        return frames;
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "frames"))
        .collect();
    paths.sort();
    for path in paths {
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        for line in text.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [side, key, version, _, data] = fields[..] else {
                continue;
            };
            let (Ok(key), Ok(version)) = (key.parse::<i16>(), version.parse::<i16>()) else {
                continue;
            };
            if side != want || key != api {
                continue;
            }
            let Ok(bytes) = parse_hex(data) else { continue };
            let side = if want == "req" {
                Side::Request
            } else {
                Side::Response(key, version)
            };
            frames.push((side, Bytes::from(bytes)));
        }
    }
    frames
}

/// One batch per partition, each of RECORDS_PER_BATCH records with a 20-byte
/// key, a 100-byte value of text-like bytes and one header.
fn batches(codec: Compression) -> Vec<Vec<u8>> {
    (0..PARTITIONS)
        .map(|partition| {
            let records = (0..RECORDS_PER_BATCH)
                .map(|index| {
                    let key = format!("user-{partition:02}-{index:012}");
                    let value: Vec<u8> = (0..VALUE_BYTES)
                        .map(|at| b"abcdefghijklmnopqrstuvwxyz0123456789"[(at * 7 + index) % 36])
                        .collect();
                    RecordSpec {
                        timestamp: Some(1_700_000_000_000 + index as i64),
                        key: Some(Bytes::from(key.into_bytes())),
                        value: Some(Bytes::from(value)),
                        headers: vec![(
                            Bytes::from_static(b"trace-id"),
                            Some(Bytes::from(format!("{index:016x}").into_bytes())),
                        )],
                        ..RecordSpec::default()
                    }
                })
                .collect();
            let spec = BatchSpec {
                base_offset: Some((partition * RECORDS_PER_BATCH) as i64),
                compression: codec,
                producer_id: 1000,
                producer_epoch: 0,
                base_sequence: 0,
                records,
                ..BatchSpec::default()
            };
            let mut out = Vec::new();
            spec.encode_into(&mut out).expect("encode batch");
            out
        })
        .collect()
}

fn header() -> Struct {
    let mut header = Struct::default();
    header.push("correlation_id", Value::Int(42));
    header.push("client_id", Value::String("kwire-bench".into()));
    header
}

fn produce_v9(batches: &[Vec<u8>]) -> Bytes {
    let partitions: Vec<_> = batches
        .iter()
        .enumerate()
        .map(|(index, raw)| json!({"index": index, "records": hex(raw)}))
        .collect();
    let body = json!({
        "transactional_id": null,
        "acks": -1,
        "timeout_ms": 30000,
        "topic_data": [{"name": "bench", "partition_data": partitions}],
    });
    let api = schema::api(schema::PRODUCE_KEY).expect("Produce");
    let body = message_from_json(api.request, 9, &body).expect("Produce v9 from JSON");
    let bytes = frame::encode_request(schema::PRODUCE_KEY, 9, &header(), &body).expect("encode");
    Bytes::from(bytes)
}

fn fetch_v12(batches: &[Vec<u8>]) -> Bytes {
    let partitions: Vec<_> = batches
        .iter()
        .enumerate()
        .map(|(index, raw)| {
            json!({
                "partition_index": index,
                "error_code": 0,
                "high_watermark": 1_000_000,
                "last_stable_offset": 1_000_000,
                "log_start_offset": 0,
                "aborted_transactions": [],
                "preferred_read_replica": -1,
                "records": hex(raw),
            })
        })
        .collect();
    let body = json!({
        "throttle_time_ms": 0,
        "error_code": 0,
        "session_id": 0,
        "responses": [{"topic": "bench", "partitions": partitions}],
    });
    let api = schema::api(schema::FETCH_KEY).expect("Fetch");
    let body = message_from_json(api.response, 12, &body).expect("Fetch v12 from JSON");
    let mut header = Struct::default();
    header.push("correlation_id", Value::Int(42));
    let bytes = frame::encode_response(schema::FETCH_KEY, 12, &header, &body).expect("encode");
    Bytes::from(bytes)
}
