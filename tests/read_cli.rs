//! `kwire read` end to end: the binary on every corpus capture (and the
//! public captures in `../shared/captures` when present), checking that the
//! text, NDJSON and stats outputs agree with each other, that filters,
//! `--write` and stdin behave, and that errors exit with 2.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{kwire, stdout_of};

use serde_json::Value as Json;

fn captures() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut paths = Vec::new();
    for dir in [
        root.join("corpus/captures"),
        root.join("../shared/captures"),
    ] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path
                .extension()
                .is_some_and(|ext| ext == "pcap" || ext == "pcapng")
            {
                paths.push(path);
            }
        }
    }
    paths.sort();
    assert!(!paths.is_empty(), "no corpus captures");
    paths
}

fn json_lines(text: &str) -> Vec<Json> {
    text.lines()
        .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
        .collect()
}

/// `2024-05-01T12:34:56.123456789Z`
fn is_rfc3339_nanos(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 30
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && bytes[10] == b'T'
        && bytes[13] == b':'
        && bytes[16] == b':'
        && bytes[19] == b'.'
        && bytes[29] == b'Z'
}

#[test]
fn text_json_and_stats_agree_on_every_capture() {
    const KEYS: &[&str] = &[
        "api_key",
        "api_name",
        "api_version",
        "correlation_id",
        "client",
        "broker",
        "ts",
        "ts_ns",
        "latency_us",
        "request",
        "response",
        "client_id",
        "connection",
        "state",
        "inferred",
        "sizes",
        "errors",
        "summary",
    ];
    for capture in captures() {
        let path = capture.to_str().expect("utf-8 path");
        let text = stdout_of(&["read", path]);
        let json = json_lines(&stdout_of(&["read", "--json", path]));
        assert_eq!(
            text.lines().count(),
            json.len(),
            "{path}: text and JSON lines"
        );
        let stats: Json = serde_json::from_str(&stdout_of(&["read", "--stats", "--json", path]))
            .expect("stats JSON");
        assert_eq!(stats["exchanges"], json.len() as u64, "{path}: stats count");
        let per_api: u64 = stats["apis"]
            .as_array()
            .expect("apis")
            .iter()
            .map(|api| api["exchanges"].as_u64().expect("count"))
            .sum();
        assert_eq!(per_api, json.len() as u64, "{path}: per-API counts");
        for (line, object) in text.lines().zip(&json) {
            for key in KEYS {
                assert!(object.get(key).is_some(), "{path}: no {key} in {object}");
            }
            assert!(
                is_rfc3339_nanos(object["ts"].as_str().expect("ts")),
                "{path}: {}",
                object["ts"]
            );
            let state = object["state"].as_str().expect("state");
            assert_eq!(
                object["latency_us"].is_null(),
                state != "complete",
                "{path}: latency of a {state} exchange"
            );
            assert_eq!(
                object["response"].is_null() && object["decode_errors"]["response"].is_null(),
                object["sizes"]["response"].is_null()
                    || object["api_key"] == 17
                        && object["api_version"] == 0
                        && !object["sasl"].is_null(),
                "{path}: response tree of {object}"
            );
            // The text line names the same exchange.
            let api = format!(
                "{} v{}",
                object["api_name"].as_str().expect("name"),
                object["api_version"]
            );
            assert!(line.contains(&api), "{path}: {line} vs {api}");
            assert!(
                line.contains(&format!("#{}", object["correlation_id"])),
                "{path}: {line}"
            );
            assert!(
                line.contains(object["client"].as_str().expect("client")),
                "{path}: {line}"
            );
        }
        // The report over the whole capture is the same either way.
        let text_stats = stdout_of(&["read", "--stats", path]);
        for heading in ["Requests by API", "Errors by code", "Connections", "Losses"] {
            assert!(text_stats.contains(heading), "{path}: {heading}");
        }
        // Deterministic.
        assert_eq!(
            stdout_of(&["read", path]),
            text,
            "{path}: second run differs"
        );
    }
}

#[test]
fn filters_keep_what_they_say() {
    for capture in captures() {
        let path = capture.to_str().expect("utf-8 path");
        let all = json_lines(&stdout_of(&["read", "--json", path]));
        let kept =
            |filter: &str| json_lines(&stdout_of(&["read", "--json", "--filter", filter, path]));
        let produce = kept("api=Produce");
        assert_eq!(
            produce.len(),
            all.iter().filter(|o| o["api_key"] == 0).count(),
            "{path}"
        );
        assert!(produce.iter().all(|o| o["api_name"] == "Produce"));
        let not_metadata = kept("not (api=Metadata or api=ApiVersions)");
        assert_eq!(
            not_metadata.len(),
            all.iter()
                .filter(|o| o["api_key"] != 3 && o["api_key"] != 18)
                .count(),
            "{path}"
        );
        let with_errors = kept("error!=NONE");
        assert_eq!(
            with_errors.len(),
            all.iter()
                .filter(|o| !o["errors"].as_array().expect("errors").is_empty())
                .count(),
            "{path}"
        );
        let slow = kept("latency>50ms");
        assert_eq!(
            slow.len(),
            all.iter()
                .filter(|o| o["latency_us"].as_f64().is_some_and(|us| us > 50_000.0))
                .count(),
            "{path}"
        );
    }
}

/// What identifies an exchange across two captures of it.
fn identity(object: &Json) -> String {
    format!(
        "{} {} {} v{} #{} {}",
        object["client"],
        object["broker"],
        object["api_name"],
        object["api_version"],
        object["correlation_id"],
        object["state"]
    )
}

fn identities(objects: &[Json]) -> Vec<String> {
    let mut keys: Vec<String> = objects.iter().map(identity).collect();
    keys.sort();
    keys
}

#[test]
fn write_saves_the_kept_exchanges() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("kept.pcap");
    let out = out.to_str().expect("utf-8 path");
    for capture in captures() {
        let path = capture.to_str().expect("utf-8 path");
        // Whole connections: the output holds every byte of their streams,
        // so reading it gives exactly the same exchanges.
        let kept = json_lines(&stdout_of(&[
            "read", "--json", "--filter", "conn<3", "--write", out, path,
        ]));
        let reread = json_lines(&stdout_of(&["read", "--json", out]));
        assert_eq!(identities(&kept), identities(&reread), "{path}: conn<3");
        // Some exchanges of a connection: the streams have holes where the
        // others were, but what decodes again was kept.
        let filter = "not api=ApiVersions";
        let kept = identities(&json_lines(&stdout_of(&[
            "read", "--json", "--filter", filter, "--write", out, path,
        ])));
        for object in json_lines(&stdout_of(&["read", "--json", out])) {
            let clean = object["state"] == "complete"
                && object["decode_errors"]["request"].is_null()
                && object["decode_errors"]["response"].is_null();
            if clean {
                assert!(
                    kept.contains(&identity(&object)),
                    "{path}: {} not kept",
                    identity(&object)
                );
            }
        }
    }
}

/// A capture written with a filter that keeps some exchanges of a
/// connection has holes where the others were, between frames. Read back,
/// each kept exchange must be found again, paired as it was: a hole on the
/// broker side is not taken for the loss of the next response (the next
/// response's correlation id says which went missing), and a connection
/// whose first request left is of a version newer than kwire's tables is
/// still found by that request (Metadata v13 from librdkafka 2.x).
#[test]
fn exchanges_kept_from_a_connection_pair_again_when_read_back() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("kept.pcap");
    let out = out.to_str().expect("utf-8 path");
    let filters = [
        "api=Metadata",
        "api=Metadata or api=Produce",
        "api=Fetch",
        "api=Heartbeat or api=OffsetCommit or api=JoinGroup",
    ];
    let mut checked = 0;
    for capture in captures() {
        let path = capture.to_str().expect("utf-8 path");
        for filter in filters {
            let kept = json_lines(&stdout_of(&[
                "read", "--json", "--filter", filter, "--write", out, path,
            ]));
            let reread = identities(&json_lines(&stdout_of(&["read", "--json", out])));
            for object in &kept {
                assert!(
                    reread.contains(&identity(object)),
                    "{path} [{filter}]: {} not read back",
                    identity(object)
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 300, "only {checked} exchanges checked");
}

#[test]
fn stdin_reads_like_a_file() {
    let capture = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/captures/kcat-mock.pcap");
    let file = std::fs::File::open(&capture).expect("corpus capture");
    let output = Command::new(env!("CARGO_BIN_EXE_kwire"))
        .args(["read", "-"])
        .stdin(file)
        .output()
        .expect("run kwire");
    assert!(output.status.success());
    let from_file = stdout_of(&["read", capture.to_str().expect("utf-8 path")]);
    assert_eq!(String::from_utf8(output.stdout).expect("utf-8"), from_file);
}

/// `--time absolute` and `--time epoch` show each exchange's request time
/// (NDJSON's `ts`) in the line's time column, to the microsecond; the
/// rest of the line is as `--time relative`, the default, writes it.
#[test]
fn time_columns_show_the_exchange_time() {
    for capture in captures().iter().take(4) {
        let capture = capture.to_str().expect("utf-8 path");
        let json = json_lines(&stdout_of(&["read", capture, "--json"]));
        let relative = stdout_of(&["read", capture]);
        assert_eq!(
            stdout_of(&["read", capture, "--time", "relative"]),
            relative
        );
        for column in ["absolute", "epoch"] {
            let text = stdout_of(&["read", capture, "--time", column]);
            assert_eq!(text.lines().count(), json.len(), "{capture}");
            for ((line, object), plain) in text.lines().zip(&json).zip(relative.lines()) {
                let ts = object["ts"].as_str().expect("ts");
                // RFC 3339 with nanoseconds: cut to microseconds.
                let wanted = match column {
                    "absolute" => format!("{}Z", &ts[..ts.len() - 4]),
                    _ => epoch_seconds(ts),
                };
                let mut words = line.split_whitespace();
                let (id, time) = (words.next(), words.next());
                assert_eq!(time, Some(wanted.as_str()), "{capture}: {line}");
                let mut plain_words = plain.split_whitespace();
                assert_eq!(id, plain_words.next());
                assert!(words.eq(plain_words.skip(1)), "{capture}: {line} / {plain}");
            }
        }
    }
}

/// `2026-11-21T20:17:07.248015000Z` as `1795292227.248015`, by the
/// civil-from-days rule (Howard Hinnant's days_from_civil).
fn epoch_seconds(rfc3339: &str) -> String {
    let number = |range: std::ops::Range<usize>| -> i64 {
        rfc3339[range].parse().expect("a number in the timestamp")
    };
    let (year, month, day) = (number(0..4), number(5..7), number(8..10));
    let (hour, minute, second) = (number(11..13), number(14..16), number(17..19));
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second;
    format!("{seconds}.{}", &rfc3339[20..26])
}

/// `--count N` (`-c N`) keeps the first N exchanges the rest of the
/// command would have kept, in text and in NDJSON (where it keeps to the
/// reading thread), then stops reading.
#[test]
fn count_keeps_the_first_n_exchanges() {
    for capture in captures().iter().take(6) {
        let capture = capture.to_str().expect("utf-8 path");
        for extra in [&[][..], &["--json"], &["--filter", "api=Produce"]] {
            let all = stdout_of(&[&["read", capture][..], extra].concat());
            let total = all.lines().count();
            for count in [1, 3, total.max(1) + 5] {
                let n = count.to_string();
                let args = [&["read", capture, "--count", &n][..], extra].concat();
                let wanted: Vec<&str> = all.lines().take(count).collect();
                let got = stdout_of(&args);
                assert_eq!(got.lines().collect::<Vec<_>>(), wanted, "{args:?}");
            }
        }
    }
    let capture = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/captures/kcat-mock.pcap");
    let output = kwire(&["read", capture.to_str().expect("utf-8 path"), "-c", "0"]);
    assert_eq!(output.status.code(), Some(2));
}

/// tshark reads a capture compressed whole; so does kwire, by content,
/// whatever the file is called, with the same output as the plain file.
#[test]
fn a_compressed_capture_reads_like_the_plain_one() {
    use std::io::Write;
    let capture = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/captures/kcat-mock.pcap");
    let bytes = std::fs::read(&capture).expect("corpus capture");
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gzip.write_all(&bytes).expect("gzip");
    let dir = tempfile::tempdir().expect("temp dir");
    let compressed = [
        ("capture.pcap.gz", gzip.finish().expect("gzip")),
        (
            "capture.zst",
            zstd::encode_all(&bytes[..], 0).expect("zstd"),
        ),
    ];
    let plain = capture.to_str().expect("utf-8 path");
    for (name, bytes) in compressed {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).expect("write");
        let path = path.to_str().expect("utf-8 path");
        for mode in [&[][..], &["--json"], &["--stats"]] {
            let want = stdout_of(&[&["read", plain][..], mode].concat());
            assert!(!want.is_empty());
            let got = stdout_of(&[&["read", path][..], mode].concat());
            assert_eq!(got, want, "{name} {mode:?}");
        }
    }
}

#[test]
fn errors_exit_with_2_and_say_why() {
    let capture = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/captures/kcat-mock.pcap");
    let capture = capture.to_str().expect("utf-8 path");
    let cases: &[(&[&str], &str)] = &[
        (
            &["read", "--filter", "api=Produce topic=x", capture],
            "at byte 12: expected `and`, `or`",
        ),
        (
            &["read", "/nonexistent/capture.pcap"],
            "cannot open capture /nonexistent/capture.pcap",
        ),
        (
            &["read", "-", "--write", "/tmp/never.pcap"],
            "--write reads the capture twice",
        ),
        (
            &["read", capture, "--write", capture],
            "would overwrite the capture being read",
        ),
    ];
    for (args, message) in cases {
        let output = kwire(args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.starts_with("kwire: "), "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
}

#[test]
fn a_truncated_capture_warns_and_still_prints() {
    let capture = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/captures/kcat-mock.pcap");
    let bytes = std::fs::read(&capture).expect("corpus capture");
    let dir = tempfile::tempdir().expect("temp dir");
    let cut = dir.path().join("cut.pcap");
    std::fs::write(&cut, &bytes[..bytes.len() * 2 / 3]).expect("write");
    let output = kwire(&["read", cut.to_str().expect("utf-8 path")]);
    assert_eq!(output.status.code(), Some(0));
    assert!(!output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("warning") && stderr.contains("ends early"),
        "{stderr}"
    );
}

/// Objects anywhere in `value` whose `crc_ok` is false.
fn bad_crcs(value: &Json) -> usize {
    match value {
        Json::Object(object) => {
            usize::from(object.get("crc_ok") == Some(&Json::Bool(false)))
                + object.values().map(bad_crcs).sum::<usize>()
        }
        Json::Array(items) => items.iter().map(bad_crcs).sum(),
        _ => 0,
    }
}

#[test]
fn a_record_batch_with_a_bad_crc_is_flagged_and_counted() {
    let capture = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/captures/kcat-mock.pcap");
    let mut bytes = std::fs::read(&capture).expect("corpus capture");
    // The first record value of the capture, in kcat's first Produce: one
    // bit changed makes its batch's CRC-32C wrong, and nothing else.
    let value = b"value 1 the quick brown fox";
    let at = bytes
        .windows(value.len())
        .position(|window| window == value)
        .expect("a record value");
    bytes[at + 6] ^= 0x01;
    let dir = tempfile::tempdir().expect("temp dir");
    let damaged = dir.path().join("bad-crc.pcap");
    std::fs::write(&damaged, &bytes).expect("write");
    let path = damaged.to_str().expect("utf-8 path");

    let lines = stdout_of(&["read", path]);
    let flagged: Vec<&str> = lines
        .lines()
        .filter(|line| line.contains("[bad CRC]"))
        .collect();
    assert_eq!(flagged.len(), 1, "{lines}");
    assert!(flagged[0].contains("Produce v7") && flagged[0].contains("kcat-none[0] 8 records"));
    let clean = stdout_of(&["read", capture.to_str().expect("utf-8 path")]);
    assert!(!clean.contains("[bad CRC]"), "{clean}");
    // The filter keeps that exchange alone, and --write saves its packets.
    let kept = stdout_of(&["read", path, "--filter", "state=bad_crc"]);
    assert_eq!(kept.lines().collect::<Vec<_>>(), flagged);
    let saved = dir.path().join("saved.pcap");
    let saved = saved.to_str().expect("utf-8 path");
    stdout_of(&["read", path, "--filter", "state=bad-crc", "--write", saved]);
    let again = stdout_of(&["read", saved, "--filter", "state=bad_crc"]);
    assert_eq!(again.lines().count(), 1, "{again}");
    assert!(
        again.contains("[bad CRC]") && again.contains("Produce v7"),
        "{again}"
    );

    // The JSON shows the batch's CRC as wrong; the statistics count it.
    let json: usize = json_lines(&stdout_of(&["read", "--json", path]))
        .iter()
        .map(bad_crcs)
        .sum();
    assert_eq!(json, 1);
    let stats = stdout_of(&["read", "--stats", path]);
    assert!(
        stats.contains("record batches with a bad CRC: 1\n"),
        "{stats}"
    );
    let stats: Json =
        serde_json::from_str(&stdout_of(&["read", "--stats", "--json", path])).expect("JSON");
    assert_eq!(stats["bad_crc_batches"], 1);
    let clean: Json = serde_json::from_str(&stdout_of(&[
        "read",
        "--stats",
        "--json",
        capture.to_str().expect("utf-8 path"),
    ]))
    .expect("JSON");
    assert_eq!(clean["bad_crc_batches"], 0);
}

#[test]
fn json_from_worker_threads_is_what_one_thread_writes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let written = |name: &str| dir.path().join(name).to_str().expect("utf-8").to_owned();
    let (one_out, many_out) = (written("one.pcap"), written("many.pcap"));
    let mut lines = 0;
    for capture in captures() {
        let path = capture.to_str().expect("utf-8 path");
        for filter in [
            "",
            "api=Produce or api=Fetch or api=Metadata",
            "error!=NONE",
        ] {
            let run = |threads: &str, out: &str, batch: &str, direct_min: &str| {
                let mut args = vec!["read", "--json", "--threads", threads, "--write", out];
                args.extend(["--json-batch", batch, "--json-direct-min", direct_min, path]);
                if !filter.is_empty() {
                    args.extend(["--filter", filter]);
                }
                stdout_of(&args)
            };
            let one = run("1", &one_out, "1", "65536");
            // Batches of one exchange: many in flight, done out of order,
            // and some by the reading thread while the workers are behind.
            let many = run("3", &many_out, "1", "65536");
            assert_eq!(one, many, "{path} [{filter}]: --json differs on threads");
            // Exchanges with a body's JSON of 200 bytes or more written by
            // the reading thread, between the workers' lines.
            let direct = run("3", &many_out, "4", "200");
            assert_eq!(
                one, direct,
                "{path} [{filter}]: --json differs written directly"
            );
            let (one_pcap, many_pcap) = (std::fs::read(&one_out), std::fs::read(&many_out));
            assert_eq!(
                one_pcap.expect("written"),
                many_pcap.expect("written"),
                "{path} [{filter}]: --write differs on threads"
            );
            lines += one.lines().count();
        }
    }
    assert!(lines >= 1000, "only {lines} lines compared");
}
