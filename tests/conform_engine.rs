//! The conformance engine against real brokers, started here on loopback:
//! librdkafka's mock cluster (the C program in
//! corpus/scenarios/mockcluster.c, compiled with `cc -lrdkafka`) and Tansu
//! (memory storage), plus a Tansu with `--authentication` and SQLite
//! storage for the SASL suite. Every case of every suite in suites/ runs
//! against each broker, and the outcome of each case (and version) must
//! equal the committed expectation in tests/conform/BROKER.json. The SASL
//! suite runs through the command line once per mechanism, with an
//! account the test creates (tests/conform/tansu-sasl-MECHANISM.json). The
//! command line is tested here too, with the embedded broker (librdkafka
//! loaded at run time) among others. A runner change that
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
//! librdkafka's mock cluster has no SASL: its request handlers
//! (rdkafka_mock_handlers.c) cover neither SaslHandshake nor
//! SaslAuthenticate, so against it the SASL suite is skipped.
//!
//! Needs: a C compiler and librdkafka's headers (Debian: `apt-get install
//! build-essential librdkafka-dev`), and Tansu 0.6.0 with SQLite storage
//! (`cargo install tansu --version 0.6.0 --locked --features
//! dynostore,libsql`; KWIRE_TANSU names another binary).

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use kwire::client::sasl::{self, Mechanism, SaslConfig};
use kwire::client::Connection;
use kwire::conform::runner::Quiet;
use kwire::conform::{self, Broker, RunOptions, Runner};
use serde_json::{json, Value as Json};
use support::{
    case_key, connect_options, create_sasl_account, expectation_path, expectations, manifest_dir,
    outcome_differences, request, start_mock_cluster, start_tansu, start_tansu_on, text_map,
    BrokerProcess, Storage, SASL_PASSWORD, SASL_USER,
};

fn options() -> RunOptions {
    let mut vars = serde_json::Map::new();
    vars.insert("run".to_owned(), Json::String(conform::run_token()));
    RunOptions {
        connect: connect_options(),
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

/// Replaces the run token and the broker's address in a reason, so that
/// blessing twice writes the same text.
fn redact(text: &str, run: &str, bootstrap: &str) -> String {
    text.replace(run, "${run}").replace(bootstrap, "BOOTSTRAP")
}

impl Outcomes {
    fn get(&self, key: &str) -> Option<&str> {
        self.outcomes.get(key).map(String::as_str)
    }
}

/// Runs every suite against one broker.
fn outcomes(broker: &BrokerProcess) -> Outcomes {
    outcomes_of_suites(broker, |_| true)
}

/// Runs every suite against `broker`, but `groups` against
/// `groups_broker` at the same time: a case of the groups suite on the
/// mock cluster mostly waits out its 3 s rebalance delay, and the suite
/// takes as long as all the others together.
fn outcomes_in_two_lanes(broker: &BrokerProcess, groups_broker: &BrokerProcess) -> Outcomes {
    std::thread::scope(|scope| {
        let groups = scope.spawn(|| outcomes_of_suites(groups_broker, |name| name == "groups"));
        let mut all = outcomes_of_suites(broker, |name| name != "groups");
        let groups = groups.join().expect("the groups lane finishes");
        assert!(!groups.outcomes.is_empty(), "the groups suite did not run");
        all.outcomes.extend(groups.outcomes);
        all.why.extend(groups.why);
        all
    })
}

/// Runs the suites whose name `select` takes against one broker.
fn outcomes_of_suites(broker: &BrokerProcess, select: impl Fn(&str) -> bool) -> Outcomes {
    let options = options();
    let mut suites =
        conform::load(&[manifest_dir().join("suites")]).unwrap_or_else(|errors| panic!("{errors}"));
    suites.retain(|suite| select(&suite.name));
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
    let results: Vec<Json> = output
        .results
        .iter()
        .map(|result| serde_json::to_value(result).expect("a result serializes"))
        .collect();
    outcomes_of(&results, &run, &broker.bootstrap)
}

/// Outcomes from results in the form the JSON report holds (the runner's
/// results serialized), after checking what every result must carry: a
/// failure says where and why, a skip or error says why.
fn outcomes_of(results: &[Json], run: &str, bootstrap: &str) -> Outcomes {
    let text = |value: &Json| value.as_str().unwrap_or_default().to_owned();
    let mut map = BTreeMap::new();
    let mut why = BTreeMap::new();
    for result in results {
        let outcome = text(&result["outcome"]);
        let key = case_key(result);
        let failure = &result["failure"];
        let reason = text(&result["reason"]);
        match outcome.as_str() {
            "fail" => assert!(
                !text(&failure["message"]).is_empty() && !text(&failure["step_label"]).is_empty(),
                "{result:#}"
            ),
            "skip" | "error" => assert!(!reason.is_empty(), "{result:#}"),
            "pass" => assert!(failure.is_null(), "{result:#}"),
            other => panic!("unknown outcome {other:?} in {result:#}"),
        }
        let previous = map.insert(key.clone(), outcome);
        assert!(previous.is_none(), "two results for {key}");
        let reason = if failure.is_object() {
            let step = failure["step"].as_u64().map_or_else(
                || "after the case".to_owned(),
                |step| format!("step {step}"),
            );
            let mismatch = &failure["mismatches"][0];
            Some(if mismatch.is_object() {
                let path = text(&mismatch["path"]);
                format!(
                    "{step}: at {}: expected {}, actual {}",
                    if path.is_empty() { "(top)" } else { &path },
                    text(&mismatch["expected"]),
                    text(&mismatch["actual"])
                )
            } else {
                format!("{step}: {}", text(&failure["message"]))
            })
        } else {
            (!reason.is_empty()).then_some(reason)
        };
        if let Some(reason) = reason {
            why.insert(key, redact(&reason, run, bootstrap));
        }
    }
    Outcomes { outcomes: map, why }
}

/// Runs `kwire conform` against `broker` with `args` (suites, cases, SASL
/// options) and reads the outcomes from its JSON report.
fn cli_outcomes(broker: &BrokerProcess, args: &[&str], envs: &[(&str, &str)]) -> Outcomes {
    let dir = tempfile::tempdir().expect("tempdir");
    let report = dir.path().join("run.json");
    let run = conform::run_token();
    let output = Command::new(env!("CARGO_BIN_EXE_kwire"))
        .args(["conform", "--bootstrap", &broker.bootstrap])
        .args(["--var", &format!("run={run}")])
        .args(args)
        .arg("--json")
        .arg(&report)
        .envs(envs.iter().copied())
        .env("NO_COLOR", "1")
        .output()
        .expect("run kwire");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        matches!(output.status.code(), Some(0 | 1)),
        "kwire conform {args:?} against {}: {:?}\n{stdout}\n{}",
        broker.description,
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Json = serde_json::from_str(
        &std::fs::read_to_string(&report).unwrap_or_else(|error| panic!("no report: {error}")),
    )
    .expect("the report is JSON");
    let results = report["results"].as_array().expect("results");
    outcomes_of(results, &run, &broker.bootstrap)
}

/// Compares outcomes with tests/conform/NAME.json, or rewrites it with
/// KWIRE_BLESS=1 (keeping the findings of cases that still fail).
fn check_expectations(name: &str, broker: &BrokerProcess, run: &Outcomes) {
    let actual = &run.outcomes;
    let path = expectation_path(name);
    if std::env::var_os("KWIRE_BLESS").is_some() {
        let existing: Option<Json> = std::fs::read_to_string(&path)
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok());
        let mut findings = existing
            .map(|json| text_map(&json["findings"]))
            .unwrap_or_default();
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
    let expected = expectations(name);
    let findings = text_map(&expected["findings"]);
    let differences = outcome_differences(&text_map(&expected["outcomes"]), actual);
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
    let (dir, groups_dir) = (
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
    );
    let mock = start_mock_cluster(dir.path(), 3);
    let groups_mock = start_mock_cluster(groups_dir.path(), 3);
    let actual = outcomes_in_two_lanes(&mock, &groups_mock);
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

/// The SASL suite against Tansu with `--authentication`, through the
/// command line, once per mechanism, each with its expectation file, on
/// SQLite storage with an account made beforehand (see
/// [`create_sasl_account`] for why it is made so).
#[test]
fn tansu_sasl_outcomes_match_expectations() {
    let dir = tempfile::tempdir().expect("tempdir");
    create_sasl_account(dir.path());
    let tansu = start_tansu_on(Storage::Sqlite(dir.path()), &["--authentication"]);
    // kwire's client logs in with each SCRAM mechanism (the server's
    // signature verifies) and is then served.
    for mechanism in [Mechanism::ScramSha256, Mechanism::ScramSha512] {
        let mut connection = Connection::connect(&tansu.bootstrap, connect_options())
            .unwrap_or_else(|error| panic!("{}: {error}", tansu.bootstrap));
        let config = SaslConfig {
            mechanism,
            username: SASL_USER.to_owned(),
            password: SASL_PASSWORD.to_owned(),
        };
        sasl::authenticate(&mut connection, &config, 1)
            .unwrap_or_else(|error| panic!("{}: {error}", tansu.description));
        let metadata = request(&mut connection, "Metadata", 1, json!({"topics": []}));
        assert!(
            metadata["brokers"]
                .as_array()
                .is_some_and(|brokers| !brokers.is_empty()),
            "{metadata}"
        );
    }
    let suite = manifest_dir().join("suites/sasl.json");
    let suite = suite.to_str().expect("a UTF-8 path");
    for (name, mechanism) in [
        ("tansu-sasl-scram-sha-256", "SCRAM-SHA-256"),
        ("tansu-sasl-scram-sha-512", "SCRAM-SHA-512"),
        ("tansu-sasl-plain", "PLAIN"),
    ] {
        let actual = cli_outcomes(
            &tansu,
            &[
                "--suite",
                suite,
                "--sasl-mechanism",
                mechanism,
                "--sasl-username",
                SASL_USER,
            ],
            &[("KWIRE_SASL_PASSWORD", SASL_PASSWORD)],
        );
        assert_eq!(actual.get("sasl.before-auth.request-refused"), Some("pass"));
        if mechanism.starts_with("SCRAM-") {
            assert_eq!(actual.get("sasl.scram.good-credentials"), Some("pass"));
        }
        check_expectations(name, &tansu, &actual);
    }
}

/// The suites of the differential run, in the order a directory run
/// takes them: all but `groups`, whose cases wait out the mock cluster's
/// 3 s rebalance delay (50 s of the mock's run) and whose outcomes on
/// both brokers the tests above check; and `sasl`, which needs SASL
/// options. The run with a baseline replays `handshake` and `metadata`
/// (indexes 2 and 4); `admin` comes first in both, so their metadata
/// cases meet a broker that already has topics (Tansu lists them all
/// for an empty topic list, which diverges).
const DIFFERENTIAL_SUITES: [&str; 6] = [
    "admin",
    "consume",
    "handshake",
    "malformed",
    "metadata",
    "produce",
];

/// `--suite suites/NAME.json` for each of `names`.
fn suite_args(names: &[&str]) -> Vec<std::ffi::OsString> {
    names
        .iter()
        .flat_map(|name| {
            [
                "--suite".into(),
                manifest_dir()
                    .join("suites")
                    .join(format!("{name}.json"))
                    .into_os_string(),
            ]
        })
        .collect()
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
        .args(suite_args(&DIFFERENTIAL_SUITES))
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

    // With the run's failures as a baseline, the run passes the gate
    // (replayed on two suites, which hold failures and divergences;
    // baseline entries of cases not run are no matter).
    let again = Command::new(env!("CARGO_BIN_EXE_kwire"))
        .arg("conform")
        .args([
            "--bootstrap",
            &mock.bootstrap,
            "--against",
            &tansu.bootstrap,
        ])
        .args(suite_args(&[
            DIFFERENTIAL_SUITES[2],
            DIFFERENTIAL_SUITES[4],
        ]))
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
