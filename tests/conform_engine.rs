//! The conformance engine against real brokers, started here on loopback:
//! librdkafka's mock cluster (the C program in
//! corpus/scenarios/mockcluster.c, compiled with `cc -lrdkafka`) and Tansu
//! (memory storage), plus a second Tansu with `--authentication` for the
//! SASL suite. Every case of every suite in suites/ runs against each
//! broker, and the outcome of each case (and version) must equal the
//! committed expectation in tests/conform/BROKER.json. The command line is
//! tested here too, with the embedded broker (librdkafka loaded at run
//! time) among others. A runner change that
//! flips an outcome fails; a new suite needs its outcomes recorded:
//! `KWIRE_BLESS=1 cargo test --test conform_engine` rewrites the files
//! (review the diff: every changed outcome is a claim about a broker).
//!
//! Each file holds, per case, the `outcomes`, the mismatch behind every
//! non-pass (`why`, rewritten by blessing) and, for every failure, a
//! `findings` entry written by a person: what the broker does and why it
//! breaks the rule the case cites. Blessing keeps the findings; a failure
//! without one fails the test, so a new failure has to be looked at.
//!
//! Needs: a C compiler and librdkafka's headers (Debian: `apt-get install
//! build-essential librdkafka-dev`), and Tansu 0.6.0 (`cargo install tansu
//! --version 0.6.0 --locked --features dynostore`; KWIRE_TANSU names
//! another binary).

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use kwire::client::sasl::{Mechanism, SaslConfig};
use kwire::client::ConnectOptions;
use kwire::conform::runner::Quiet;
use kwire::conform::{self, Broker, Outcome, RunOptions, Runner};
use serde_json::Value as Json;
use support::{manifest_dir, start_mock_cluster, start_tansu, start_tansu_with, BrokerProcess};

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

/// Replaces the run token in a reason, so that blessing twice writes the
/// same text.
fn redact_run(text: &str, run: &str) -> String {
    text.replace(run, "${run}")
}

impl Outcomes {
    fn get(&self, key: &str) -> Option<&str> {
        self.outcomes.get(key).map(String::as_str)
    }
}

/// Runs every suite against one broker.
fn outcomes(broker: &BrokerProcess) -> Outcomes {
    outcomes_with(broker, options())
}

/// Runs the cases `options` selects against one broker.
fn outcomes_with(broker: &BrokerProcess, options: RunOptions) -> Outcomes {
    let suites =
        conform::load(&[manifest_dir().join("suites")]).unwrap_or_else(|errors| panic!("{errors}"));
    let run = options.vars["run"].as_str().unwrap_or_default().to_owned();
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
            why.insert(result.key(), redact_run(&reason, &run));
        }
    }
    Outcomes { outcomes: map, why }
}

/// Compares outcomes with tests/conform/NAME.json, or rewrites it with
/// KWIRE_BLESS=1 (keeping the findings of cases that still fail).
fn check_expectations(name: &str, broker: &BrokerProcess, run: &Outcomes) {
    let actual = &run.outcomes;
    let path = manifest_dir()
        .join("tests/conform")
        .join(format!("{name}.json"));
    let existing: Option<Json> = std::fs::read_to_string(&path)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok());
    let findings_of = |json: &Json| -> BTreeMap<String, String> {
        json["findings"]
            .as_object()
            .map(|map| {
                map.iter()
                    .map(|(key, value)| {
                        (key.clone(), value.as_str().unwrap_or_default().to_owned())
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    if std::env::var_os("KWIRE_BLESS").is_some() {
        let mut findings = existing.as_ref().map(findings_of).unwrap_or_default();
        findings.retain(|key, _| actual.get(key).is_some_and(|outcome| outcome == "fail"));
        let json = serde_json::json!({
            "broker": broker.description,
            "outcomes": actual,
            "why": run.why,
            "findings": findings,
        });
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(
            &path,
            serde_json::to_string_pretty(&json).expect("json") + "\n",
        )
        .expect("write");
        assert_failures_explained(name, &path, actual, &findings);
        return;
    }
    let expected = existing.unwrap_or_else(|| {
        panic!(
            "cannot read {}; record it with KWIRE_BLESS=1",
            path.display()
        )
    });
    let findings = findings_of(&expected);
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
    assert_failures_explained(name, &path, actual, &findings);
}

/// Every failing case needs a finding: a failure is a claim about the
/// broker, and the claim has to be checked by a person.
fn assert_failures_explained(
    name: &str,
    path: &Path,
    actual: &BTreeMap<String, String>,
    findings: &BTreeMap<String, String>,
) {
    let unexplained: Vec<&String> = actual
        .iter()
        .filter(|(key, outcome)| {
            *outcome == "fail" && findings.get(*key).is_none_or(|text| text.trim().is_empty())
        })
        .map(|(key, _)| key)
        .collect();
    assert!(
        unexplained.is_empty(),
        "{name}: these cases fail without a finding in {}: {}\nread each failure, make sure it is the broker's doing and not the suite's, and say what the broker does in \"findings\"",
        path.display(),
        unexplained
            .iter()
            .map(|key| key.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
}

#[test]
fn librdkafka_mock_cluster_outcomes_match_expectations() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mock = start_mock_cluster(dir.path(), 3);
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

/// Tansu with `--authentication`: the SASL cases that need no account on
/// the broker, with SCRAM-SHA-256 as the run's mechanism. (Tansu 0.6.0
/// keeps SCRAM credentials in its storage, which takes requests only after
/// authentication, so a fresh broker has no user to log in as: the
/// cases that authenticate are left out.)
#[test]
fn tansu_sasl_outcomes_match_expectations() {
    let tansu = start_tansu_with(
        &["--authentication"],
        "tansu 0.6.0 (memory storage, --authentication)",
    );
    let mut options = options();
    let sasl = SaslConfig {
        mechanism: Mechanism::ScramSha256,
        username: "kwire".to_owned(),
        password: "kwire-has-no-account".to_owned(),
    };
    for (name, value) in [
        ("sasl_mechanism", sasl.mechanism.name().to_owned()),
        ("sasl_username", sasl.username.clone()),
        ("sasl_password", sasl.password.clone()),
    ] {
        options.vars.insert(name.to_owned(), Json::String(value));
    }
    options.sasl = Some(sasl);
    options.case_globs = [
        "sasl.handshake.*",
        "sasl.before-auth.*",
        "sasl.authenticate.*",
        "sasl.plain.*",
    ]
    .iter()
    .map(|glob| (*glob).to_owned())
    .collect();
    let actual = outcomes_with(&tansu, options);
    assert_eq!(actual.get("sasl.before-auth.request-refused"), Some("pass"));
    assert_eq!(actual.get("sasl.plain.good-credentials"), Some("skip"));
    check_expectations("tansu-sasl", &tansu, &actual);
}

/// The command line end to end, in the differential mode, with every
/// report file and a recording.
#[test]
fn cli_differential_run_writes_reports_and_exits_1() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mock = start_mock_cluster(dir.path(), 3);
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
fn cli_reports_a_missing_embedded_broker_and_bad_suites_with_exit_2() {
    // Without --bootstrap kwire loads librdkafka for its embedded broker;
    // a library that is not there is an error that says what to install.
    let output = Command::new(env!("CARGO_BIN_EXE_kwire"))
        .args(["conform", "--suite"])
        .arg(manifest_dir().join("suites"))
        .env("KWIRE_LIBRDKAFKA", "/nonexistent/librdkafka.so.1")
        .output()
        .expect("run kwire");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot load /nonexistent/librdkafka.so.1")
            && stderr.contains("apt-get install librdkafka1")
            && stderr.contains("--bootstrap HOST:PORT"),
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

/// Without --bootstrap, kwire runs against librdkafka's mock cluster,
/// loaded at run time, and says so.
#[test]
fn cli_without_bootstrap_runs_against_the_embedded_mock_cluster() {
    let output = Command::new(env!("CARGO_BIN_EXE_kwire"))
        .args(["conform", "--suite"])
        .arg(manifest_dir().join("suites/handshake.json"))
        .arg("--suite")
        .arg(manifest_dir().join("suites/metadata.json"))
        .env("NO_COLOR", "1")
        .output()
        .expect("run kwire");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    // The mock cluster fails handshake.api-versions.above-max, a MUST.
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    let broker_line = stdout
        .lines()
        .find(|line| line.starts_with("broker A: 127.0.0.1:"))
        .unwrap_or_else(|| panic!("no broker line in {stdout}"));
    assert!(
        broker_line.contains("embedded librdkafka")
            && broker_line.contains("mock cluster (3 brokers)")
            && broker_line.contains("no --bootstrap was given"),
        "{broker_line}"
    );
    assert!(
        stdout.contains("\u{2713} PASS  metadata.brokers.reachable"),
        "{stdout}"
    );
    assert!(
        stdout.contains("conformance gate: FAIL (exit 1): handshake.api-versions.above-max"),
        "{stdout}"
    );
    // librdkafka's own log lines stay out of the output.
    assert!(!stderr.contains("PROTOERR"), "{stderr}");
}
