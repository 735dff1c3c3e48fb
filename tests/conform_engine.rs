//! The conformance engine against real brokers, started here on loopback:
//! librdkafka's mock cluster (the C program in
//! corpus/scenarios/mockcluster.c, compiled with `cc -lrdkafka`) and Tansu
//! (memory storage). Every case of every suite in suites/ runs against each
//! broker, and the outcome of each case (and version) must equal the
//! committed expectation in tests/conform/BROKER.json. A runner change that
//! flips an outcome fails; a new suite needs its outcomes recorded:
//! `KWIRE_BLESS=1 cargo test --test conform_engine` rewrites the files
//! (review the diff: every changed outcome is a claim about a broker).
//!
//! Needs: a C compiler and librdkafka's headers (Debian: `apt-get install
//! build-essential librdkafka-dev`), and Tansu 0.6.0 (`cargo install tansu
//! --version 0.6.0 --locked --features dynostore`; KWIRE_TANSU names
//! another binary).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use kwire::client::ConnectOptions;
use kwire::conform::runner::Quiet;
use kwire::conform::{self, Broker, Outcome, RunOptions, Runner};
use serde_json::Value as Json;

/// A broker process, killed when dropped.
struct BrokerProcess {
    child: Child,
    bootstrap: String,
    /// What it is, for messages and the expectation file.
    description: String,
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Compiles and starts the mock cluster (3 brokers, at most 10 minutes).
fn start_mock_cluster(dir: &Path) -> BrokerProcess {
    let source = manifest_dir().join("corpus/scenarios/mockcluster.c");
    let binary = dir.join("mockcluster");
    let compiled = Command::new("cc")
        .arg("-O1")
        .arg("-o")
        .arg(&binary)
        .arg(&source)
        .arg("-lrdkafka")
        .output()
        .unwrap_or_else(|error| {
            panic!("cannot run cc ({error}): install a C compiler, e.g. `apt-get install build-essential librdkafka-dev`")
        });
    assert!(
        compiled.status.success(),
        "cannot compile {}: {}\ninstall librdkafka's headers: `apt-get install librdkafka-dev`",
        source.display(),
        String::from_utf8_lossy(&compiled.stderr)
    );
    let mut child = Command::new(&binary)
        .args(["3", "600"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the mock cluster");
    let stdout = child.stdout.take().expect("stdout");
    let stderr = child.stderr.take().expect("stderr");
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = sender.send(line);
    });
    let line = receiver
        .recv_timeout(Duration::from_secs(20))
        .expect("the mock cluster printed no bootstrap address within 20 s");
    let bootstrap = line.trim().split(',').next().unwrap_or_default().to_owned();
    assert!(
        bootstrap.starts_with("127.0.0.1:"),
        "unexpected bootstrap {line:?}"
    );
    // The second line of stderr names the library version.
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let mut reader = BufReader::new(stderr);
        let _ = reader.read_line(&mut line);
        let _ = sender.send(line);
        // Keep draining so the cluster never blocks on a full pipe.
        let _ = std::io::copy(&mut reader, &mut std::io::sink());
    });
    let version = receiver
        .recv_timeout(Duration::from_secs(5))
        .unwrap_or_default();
    BrokerProcess {
        child,
        bootstrap,
        description: format!("{} mock cluster", version.trim()),
    }
}

fn tansu_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("KWIRE_TANSU") {
        return PathBuf::from(path);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    let cargo_bin = home.join(".cargo/bin/tansu");
    if cargo_bin.is_file() {
        return cargo_bin;
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if dir.join("tansu").is_file() {
                return dir.join("tansu");
            }
        }
    }
    panic!(
        "tansu is not installed: `cargo install tansu --version 0.6.0 --locked --features dynostore`"
    );
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free loopback port")
}

/// Starts Tansu with memory storage on a free loopback port; tries a few
/// ports in case another process takes the chosen one first.
fn start_tansu() -> BrokerProcess {
    let binary = tansu_binary();
    let mut last_log = String::new();
    for _ in 0..3 {
        let port = free_port();
        let url = format!("tcp://127.0.0.1:{port}");
        let mut child = Command::new(&binary)
            .args(["broker", "--storage-engine", "memory://tansu/"])
            .args(["--listener-url", &url, "--advertised-listener-url", &url])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start tansu");
        let bootstrap = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            if TcpStream::connect_timeout(
                &bootstrap.parse().expect("addr"),
                Duration::from_millis(200),
            )
            .is_ok()
            {
                if let Some(mut stderr) = child.stderr.take() {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut stderr, &mut std::io::sink());
                    });
                }
                return BrokerProcess {
                    child,
                    bootstrap,
                    description: "tansu 0.6.0 (memory storage)".to_owned(),
                };
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
        if let Some(mut stderr) = child.stderr.take() {
            let _ = stderr.read_to_string(&mut last_log);
        }
    }
    panic!("tansu did not start listening: {last_log}");
}

fn options() -> RunOptions {
    let mut vars = serde_json::Map::new();
    vars.insert("run".to_owned(), Json::String(conform::run_token()));
    RunOptions {
        connect: ConnectOptions {
            connect_timeout: Duration::from_secs(5),
            io_timeout: Duration::from_secs(10),
            ..ConnectOptions::default()
        },
        sasl: None,
        vars,
        case_globs: Vec::new(),
        masks: Vec::new(),
        alive_check: true,
    }
}

/// Outcome by case key, and for the others than `pass` why.
struct Outcomes {
    outcomes: BTreeMap<String, String>,
    why: BTreeMap<String, String>,
}

impl Outcomes {
    fn get(&self, key: &str) -> Option<&str> {
        self.outcomes.get(key).map(String::as_str)
    }
}

/// Runs every suite against one broker.
fn outcomes(broker: &BrokerProcess) -> Outcomes {
    let suites =
        conform::load(&[manifest_dir().join("suites")]).unwrap_or_else(|errors| panic!("{errors}"));
    let options = options();
    let probed = Broker::probe("A", &broker.bootstrap, &options.connect)
        .unwrap_or_else(|error| panic!("{}: {error}", broker.description));
    let brokers = [probed];
    let runner = Runner {
        suites: &suites,
        brokers: &brokers,
        options: &options,
    };
    let output = runner.run(&mut Quiet);
    let mut map = BTreeMap::new();
    let mut why = BTreeMap::new();
    for result in &output.results {
        // Invariants before comparing outcomes: a failure says where and
        // why, a skip or error says why.
        match result.outcome {
            Outcome::Fail => {
                let failure = result.failure.as_ref().expect("a failure has details");
                assert!(
                    !failure.message.is_empty() && !failure.step_label.is_empty(),
                    "{result:?}"
                );
            }
            Outcome::Skip | Outcome::Error => {
                assert!(
                    result
                        .reason
                        .as_deref()
                        .is_some_and(|reason| !reason.is_empty()),
                    "{result:?}"
                );
            }
            Outcome::Pass => assert!(result.failure.is_none()),
        }
        let previous = map.insert(result.key(), result.outcome.name().to_owned());
        assert!(previous.is_none(), "two results for {}", result.key());
        let reason = match &result.failure {
            Some(failure) => {
                let step = failure.step.map_or_else(
                    || "after the case".to_owned(),
                    |step| format!("step {step}"),
                );
                Some(match failure.mismatches.first() {
                    Some(mismatch) => format!("{step}: {mismatch}"),
                    None => format!("{step}: {}", failure.message),
                })
            }
            None => result.reason.clone(),
        };
        if let Some(reason) = reason {
            why.insert(result.key(), reason);
        }
    }
    Outcomes { outcomes: map, why }
}

/// Compares outcomes with tests/conform/NAME.json, or rewrites it with
/// KWIRE_BLESS=1.
fn check_expectations(name: &str, broker: &BrokerProcess, run: &Outcomes) {
    let actual = &run.outcomes;
    let path = manifest_dir()
        .join("tests/conform")
        .join(format!("{name}.json"));
    if std::env::var_os("KWIRE_BLESS").is_some() {
        let json = serde_json::json!({
            "broker": broker.description,
            "outcomes": actual,
            "why": run.why,
        });
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(
            &path,
            serde_json::to_string_pretty(&json).expect("json") + "\n",
        )
        .expect("write");
        return;
    }
    let text = std::fs::read_to_string(&path).unwrap_or_else(|error| {
        panic!(
            "cannot read {}: {error}; record it with KWIRE_BLESS=1",
            path.display()
        )
    });
    let expected: Json = serde_json::from_str(&text).expect("expectation JSON");
    let expected: BTreeMap<String, String> = expected["outcomes"]
        .as_object()
        .expect("outcomes")
        .iter()
        .map(|(key, value)| (key.clone(), value.as_str().unwrap_or_default().to_owned()))
        .collect();
    let mut differences = Vec::new();
    for key in expected.keys().chain(actual.keys()) {
        let (want, got) = (expected.get(key), actual.get(key));
        if want != got
            && !differences
                .iter()
                .any(|line: &String| line.starts_with(&format!("{key}:")))
        {
            differences.push(format!(
                "{key}: expected {}, got {}",
                want.map_or("(no entry)", String::as_str),
                got.map_or("(did not run)", String::as_str)
            ));
        }
    }
    assert!(
        differences.is_empty(),
        "{} ({}): outcomes differ from {}:\n  {}\n(if the change is intended, rerun with KWIRE_BLESS=1 and review the diff)",
        name,
        broker.description,
        path.display(),
        differences.join("\n  ")
    );
}

#[test]
fn librdkafka_mock_cluster_outcomes_match_expectations() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mock = start_mock_cluster(dir.path());
    let actual = outcomes(&mock);
    // The engine's own claims, independent of the expectation file.
    assert_eq!(
        actual.get("handshake.api-versions.every-version@0"),
        Some("pass")
    );
    assert_eq!(actual.get("handshake.raw.unknown-api-key"), Some("pass"));
    check_expectations("librdkafka-mock", &mock, &actual);
}

#[test]
fn tansu_outcomes_match_expectations() {
    let tansu = start_tansu();
    let actual = outcomes(&tansu);
    assert_eq!(actual.get("handshake.api-versions.header-v0"), Some("pass"));
    assert_eq!(actual.get("metadata.brokers.reachable"), Some("pass"));
    check_expectations("tansu", &tansu, &actual);
}

/// The command line end to end, in the differential mode, with every
/// report file and a recording.
#[test]
fn cli_differential_run_writes_reports_and_exits_1() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mock = start_mock_cluster(dir.path());
    let tansu = start_tansu();
    let file = |name: &str| dir.path().join(name);
    let output = Command::new(env!("CARGO_BIN_EXE_kwire"))
        .arg("conform")
        .args([
            "--bootstrap",
            &mock.bootstrap,
            "--against",
            &tansu.bootstrap,
        ])
        .arg("--suite")
        .arg(manifest_dir().join("suites"))
        .arg("--json")
        .arg(file("run.json"))
        .arg("--junit")
        .arg(file("run.xml"))
        .arg("--markdown")
        .arg(file("run.md"))
        .arg("--record")
        .arg(file("run.pcap"))
        .arg("--write-baseline")
        .arg(file("baseline.json"))
        .env("NO_COLOR", "1")
        .output()
        .expect("run kwire");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains(&format!("broker A: {}", mock.bootstrap)),
        "{stdout}"
    );
    assert!(
        stdout.contains("conformance gate: FAIL (exit 1)"),
        "{stdout}"
    );

    let report: Json =
        serde_json::from_str(&std::fs::read_to_string(file("run.json")).expect("json"))
            .expect("parse");
    assert_eq!(report["verdict"]["exit_code"], 1);
    let divergences = report["divergences"].as_array().expect("divergences");
    // The mock answers ApiVersions above its maximum with UNSUPPORTED_VERSION
    // (35); Tansu answers NONE.
    assert!(
        divergences.iter().any(|divergence| divergence["case"]
            == "handshake.api-versions.above-max"
            && divergence["path"] == "error_code"
            && divergence["a"]
                .as_str()
                .is_some_and(|a| a.starts_with("35"))),
        "{divergences:#?}"
    );
    let junit = std::fs::read_to_string(file("run.xml")).expect("junit");
    assert!(junit.starts_with("<?xml") && junit.contains("<testsuite name=\"differential\""));
    let markdown = std::fs::read_to_string(file("run.md")).expect("markdown");
    assert!(
        markdown.contains("| case | level | broker | result |"),
        "{markdown}"
    );

    // With the run's failures as a baseline, the same run passes the gate.
    let again = Command::new(env!("CARGO_BIN_EXE_kwire"))
        .arg("conform")
        .args([
            "--bootstrap",
            &mock.bootstrap,
            "--against",
            &tansu.bootstrap,
        ])
        .arg("--suite")
        .arg(manifest_dir().join("suites"))
        .arg("--baseline")
        .arg(file("baseline.json"))
        .env("NO_COLOR", "1")
        .output()
        .expect("run kwire");
    let stdout = String::from_utf8_lossy(&again.stdout);
    assert_eq!(again.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("known failures (baseline)"), "{stdout}");

    // The recording opens as a capture and carries TCP payload both ways.
    let mut reader = kwire::capture::CaptureReader::open(&file("run.pcap")).expect("pcap");
    let link = reader.link_type();
    let mut payload_bytes = 0;
    let mut packets = 0;
    while let Some(packet) = reader.next_packet() {
        let segment = kwire::capture::parse_tcp(link, &packet.expect("packet")).expect("tcp");
        payload_bytes += segment.payload.len();
        packets += 1;
    }
    assert!(
        packets > 50 && payload_bytes > 1000,
        "{packets} packets, {payload_bytes} bytes"
    );
}

#[test]
fn cli_reports_missing_bootstrap_and_bad_suites_with_exit_2() {
    let output = Command::new(env!("CARGO_BIN_EXE_kwire"))
        .args(["conform", "--suite"])
        .arg(manifest_dir().join("suites"))
        .output()
        .expect("run kwire");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--bootstrap HOST:PORT is required"),
        "{stderr}"
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        r#"{"suite": "bad", "cases": [{"id": "bad.one", "title": "t", "spec": "s", "level": "MUST",
            "steps": [{"send": "Metadata", "request": {"topicz": []}}]}]}"#,
    )
    .expect("write");
    let output = Command::new(env!("CARGO_BIN_EXE_kwire"))
        .args(["conform", "--bootstrap", "127.0.0.1:1", "--suite"])
        .arg(&bad)
        .output()
        .expect("run kwire");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("bad.json: case bad.one: steps[0].request: ")
            && stderr.contains("has no field `topicz`"),
        "{stderr}"
    );

    // Nothing listens on port 1: cannot connect is an error, not a failure.
    let output = Command::new(env!("CARGO_BIN_EXE_kwire"))
        .args(["conform", "--bootstrap", "127.0.0.1:1", "--suite"])
        .arg(manifest_dir().join("suites"))
        .output()
        .expect("run kwire");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot reach broker A at 127.0.0.1:1"),
        "{stderr}"
    );
}
