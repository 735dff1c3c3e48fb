//! `kwire conform --tls` against a real broker over real TLS: Tansu 0.6.0
//! (memory storage) behind socat's OpenSSL listener (Tansu cannot serve
//! TLS itself: see tests/support/mod.rs), with a CA, server and client
//! certificates made by the openssl CLI for 127.0.0.1 and localhost.
//!
//! Over TLS the outcome of every case of every suite in suites/ (raw
//! and malformed input included) must equal the plaintext Tansu
//! expectation of tests/conform/tansu.json; a `--record` of the run must open in `kwire
//! read` with the decoded exchanges; each kind of handshake failure must
//! end with exit 2 and a one-line cause; `--tls-insecure` and mutual TLS
//! must work. SASL over TLS (SCRAM-SHA-256 to Tansu on SQLite storage
//! with `--authentication`) must end as plaintext SASL does
//! (tests/conform/tansu-sasl-scram-sha-256.json), and a differential run
//! (`--against`) must reach both brokers over TLS.
//!
//! Needs: Tansu 0.6.0 (see tests/conform_engine.rs), `openssl` and
//! `socat` (Debian: `apt-get install openssl socat`; .ci/setup installs
//! them).

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::process::{Command, Output};

use serde_json::Value as Json;
use support::{
    case_key, create_sasl_account, expected_outcomes, make_certificates, manifest_dir,
    outcome_differences, start_tansu_tls, Storage, TlsFiles, TlsTansu, SASL_PASSWORD, SASL_USER,
};

/// Runs `kwire conform` with `args`, without colour.
fn conform<S: AsRef<OsStr>>(args: &[S]) -> Output {
    conform_with_env(args, &[])
}

/// [`conform`] with more environment variables.
fn conform_with_env<S: AsRef<OsStr>>(args: &[S], envs: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kwire"))
        .arg("conform")
        .args(args)
        .envs(envs.iter().copied())
        .env("NO_COLOR", "1")
        .output()
        .expect("run kwire")
}

fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// `--suite suites/NAME.json` for `names`.
fn suite_args(names: &[&str]) -> Vec<String> {
    names
        .iter()
        .flat_map(|name| {
            [
                "--suite".to_owned(),
                manifest_dir()
                    .join(format!("suites/{name}.json"))
                    .display()
                    .to_string(),
            ]
        })
        .collect()
}

/// Asserts that a run completed and ended with exit 1, a gating case
/// failed (Tansu fails some MUST cases: the expectation files say which);
/// returns its standard output and error.
fn assert_gate_failed(output: &Output) -> (String, String) {
    let (stdout, stderr) = text(output);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    (stdout, stderr)
}

/// Asserts exit 2 with nothing run and `wanted` in the one-line error.
fn assert_refused(output: &Output, wanted: &str) {
    let (stdout, stderr) = text(output);
    assert_eq!(output.status.code(), Some(2), "{stdout}\n{stderr}");
    let line = stderr
        .lines()
        .find(|line| line.starts_with("kwire: "))
        .unwrap_or_else(|| panic!("no error line in {stderr}"));
    assert!(line.contains(wanted), "{line:?} does not say {wanted:?}");
    assert!(!stdout.contains("passed"), "{stdout}");
}

/// Certificates in a new temporary directory, and Tansu behind TLS with
/// them (demanding a client certificate with `client_auth`).
fn tls_tansu(client_auth: bool) -> (tempfile::TempDir, TlsFiles, TlsTansu) {
    let dir = tempfile::tempdir().expect("tempdir");
    let files = make_certificates(dir.path());
    let broker = start_tansu_tls(&files, client_auth, Storage::Memory, &[]);
    (dir, files, broker)
}

/// The `--json` report at `path`.
fn read_report(path: &str) -> Json {
    serde_json::from_str(&std::fs::read_to_string(path).expect("json report"))
        .expect("parse the report")
}

/// Asserts that broker `label`'s results in `report` have the outcomes
/// of tests/conform/NAME.json, for the cases of `suites` (of every suite
/// when empty).
fn assert_outcomes(report: &Json, label: &str, name: &str, suites: &[&str]) {
    let actual: BTreeMap<String, String> = report["results"]
        .as_array()
        .expect("results")
        .iter()
        .filter(|result| result["broker"] == label)
        .map(|result| {
            let outcome = result["outcome"].as_str().expect("outcome");
            (case_key(result), outcome.to_owned())
        })
        .collect();
    let mut expected = expected_outcomes(name);
    expected.retain(|key, _| {
        suites.is_empty()
            || suites
                .iter()
                .any(|suite| key.starts_with(&format!("{suite}.")))
    });
    assert!(!expected.is_empty(), "no expectation for {suites:?}");
    let differences = outcome_differences(&expected, &actual);
    assert!(
        differences.is_empty(),
        "over TLS, broker {label}'s outcomes differ from tests/conform/{name}.json (plaintext):\n  {}",
        differences.join("\n  ")
    );
}

/// Asserts that the `--json` report at `path` has the outcomes
/// tests/conform/tansu.json records for plaintext Tansu, for the cases of
/// `suites` (of every suite when empty); returns the report.
fn assert_plaintext_outcomes(path: &str, suites: &[&str]) -> Json {
    let report = read_report(path);
    assert_outcomes(&report, "A", "tansu", suites);
    report
}

#[test]
fn tls_run_matches_plaintext_outcomes_and_records_decrypted_exchanges() {
    let (dir, files, broker) = tls_tansu(false);
    let bootstrap = &broker.tls.bootstrap;
    let file = |name: &str| dir.path().join(name).display().to_string();
    let mut args: Vec<String> = [
        "--bootstrap",
        bootstrap,
        "--tls",
        "--tls-ca",
        &files.ca.display().to_string(),
    ]
    .map(str::to_owned)
    .to_vec();
    args.extend([
        "--suite".to_owned(),
        manifest_dir().join("suites").display().to_string(),
    ]);
    for (flag, name) in [
        ("--json", "run.json"),
        ("--junit", "run.xml"),
        ("--markdown", "run.md"),
        ("--record", "run.pcap"),
    ] {
        args.extend([flag.to_owned(), file(name)]);
    }
    let output = conform(&args);
    let (stdout, _) = assert_gate_failed(&output);
    assert!(
        stdout.contains(&format!("broker A: {bootstrap} (TLS; ")),
        "{stdout}"
    );

    // Same cases, same outcomes as plaintext Tansu.
    let report = assert_plaintext_outcomes(&file("run.json"), &[]);
    assert_eq!(report["brokers"][0]["transport"], "TLS");
    let markdown = std::fs::read_to_string(file("run.md")).expect("markdown");
    assert!(
        markdown.contains(&format!("- broker A: `{bootstrap}` (TLS; ")),
        "{markdown}"
    );
    let junit = std::fs::read_to_string(file("run.xml")).expect("junit");
    assert!(
        junit.contains(&format!(
            "<property name=\"broker A\" value=\"{bootstrap} (TLS)\"/>"
        )),
        "{junit}"
    );

    // The recording holds the decrypted Kafka exchanges.
    let read = Command::new(env!("CARGO_BIN_EXE_kwire"))
        .args(["read", "--json", "--no-progress"])
        .arg(file("run.pcap"))
        .output()
        .expect("run kwire read");
    assert!(read.status.success(), "{}", text(&read).1);
    let exchanges: Vec<Json> = String::from_utf8_lossy(&read.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON exchange per line"))
        .collect();
    let apis: BTreeSet<&str> = exchanges
        .iter()
        .filter(|exchange| exchange["state"] == "complete" && exchange["broker"] == **bootstrap)
        .filter_map(|exchange| exchange["api_name"].as_str())
        .collect();
    for api in ["ApiVersions", "Metadata", "Produce", "Fetch", "ListOffsets"] {
        assert!(apis.contains(api), "no complete {api} exchange in {apis:?}");
    }
    assert!(
        exchanges
            .iter()
            .any(|exchange| exchange["api_name"] == "Produce"
                && exchange["summary"]["records"].as_u64().unwrap_or(0) > 0),
        "no Produce exchange with decoded records"
    );
}

#[test]
fn tls_failures_exit_2_with_their_cause_and_insecure_mode_warns() {
    let (dir, files, broker) = tls_tansu(false);
    let ca = files.ca.display().to_string();
    let handshake = suite_args(&["handshake"]);
    let run = |args: &[&str]| {
        let mut all: Vec<String> = args.iter().map(|arg| (*arg).to_owned()).collect();
        all.extend(handshake.iter().cloned());
        conform(&all)
    };
    let tls = broker.tls.bootstrap.as_str();

    // The system's roots do not know the test CA.
    assert_refused(
        &run(&["--bootstrap", tls, "--tls"]),
        &format!("broker A at {tls}: TLS: the broker's certificate is signed by an unknown issuer: pass its CA bundle with --tls-ca FILE"),
    );
    // The certificate names 127.0.0.1 and localhost only.
    assert_refused(
        &run(&[
            "--bootstrap",
            tls,
            "--tls",
            "--tls-ca",
            &ca,
            "--tls-server-name",
            "kafka.example",
        ]),
        "the broker's certificate is not valid for \"kafka.example\" (it names 127.0.0.1, localhost): use --tls-server-name NAME",
    );
    // A plaintext client on the TLS port: socat's OpenSSL drops it.
    assert_refused(
        &run(&["--bootstrap", tls]),
        "(if it is a TLS listener, add --tls)",
    );
    // A TLS client on Tansu's plaintext port: Tansu waits for the rest of
    // what it takes for a frame, so the handshake times out.
    assert_refused(
        &run(&[
            "--bootstrap",
            &broker.plaintext.bootstrap,
            "--tls",
            "--tls-ca",
            &ca,
            "--connect-timeout-ms",
            "1000",
        ]),
        "no TLS answer within 1000 ms: is this a plaintext listener? (drop --tls)",
    );
    // localhost is one of the certificate's names.
    let by_name = tls.replace("127.0.0.1", "localhost");
    assert_gate_failed(&run(&["--bootstrap", &by_name, "--tls", "--tls-ca", &ca]));

    // No verification: the run works, and says loudly that it was not
    // verified, before and after.
    let json = dir.path().join("insecure.json").display().to_string();
    let output = run(&[
        "--bootstrap",
        tls,
        "--tls",
        "--tls-insecure",
        "--json",
        &json,
    ]);
    let (stdout, stderr) = assert_gate_failed(&output);
    assert!(
        stdout.contains(&format!(
            "broker A: {tls} (TLS, certificate NOT verified: --tls-insecure; "
        )),
        "{stdout}"
    );
    assert_eq!(
        stderr.matches("WARNING: --tls-insecure").count(),
        2,
        "{stderr}"
    );
    let report = assert_plaintext_outcomes(&json, &["handshake"]);
    assert_eq!(
        report["brokers"][0]["transport"],
        "TLS, certificate NOT verified: --tls-insecure"
    );
}

#[test]
fn mutual_tls_presents_the_client_certificate() {
    let (dir, files, broker) = tls_tansu(true);
    let tls = broker.tls.bootstrap.as_str();
    let ca = files.ca.display().to_string();
    let mut without = vec!["--bootstrap", tls, "--tls", "--tls-ca", &ca];
    let handshake = suite_args(&["handshake"]);
    without.extend(handshake.iter().map(String::as_str));
    // Under TLS 1.3 the listener says it wants a certificate on the
    // first read, after the client's side of the handshake.
    assert_refused(
        &conform(&without),
        "the broker refused the handshake (alert CertificateRequired): it may want a client certificate it trusts (--tls-cert, --tls-key)",
    );
    let (cert, key) = (
        files.client_cert.display().to_string(),
        files.client_key.display().to_string(),
    );
    let json = dir.path().join("mtls.json").display().to_string();
    let mut with = without.clone();
    with.extend(["--tls-cert", &cert, "--tls-key", &key, "--json", &json]);
    let (stdout, _) = assert_gate_failed(&conform(&with));
    assert!(
        stdout.contains(&format!("broker A: {tls} (TLS, client certificate; ")),
        "{stdout}"
    );
    assert_plaintext_outcomes(&json, &["handshake"]);
}

/// SASL over TLS (SASL_SSL): the sasl suite logs in with SCRAM-SHA-256
/// through the TLS listener, to Tansu on SQLite storage with
/// `--authentication` and an account made beforehand, and every case
/// ends as it does in plaintext.
#[test]
fn sasl_over_tls_matches_plaintext_sasl_outcomes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let files = make_certificates(dir.path());
    create_sasl_account(dir.path());
    let broker = start_tansu_tls(
        &files,
        false,
        Storage::Sqlite(dir.path()),
        &["--authentication"],
    );
    let tls = broker.tls.bootstrap.as_str();
    let json = dir.path().join("sasl.json").display().to_string();
    let ca = files.ca.display().to_string();
    let mut args: Vec<String> = [
        "--bootstrap",
        tls,
        "--tls",
        "--tls-ca",
        &ca,
        "--sasl-mechanism",
        "SCRAM-SHA-256",
        "--sasl-username",
        SASL_USER,
        "--json",
        &json,
    ]
    .map(str::to_owned)
    .to_vec();
    args.extend(suite_args(&["sasl"]));
    let output = conform_with_env(&args, &[("KWIRE_SASL_PASSWORD", SASL_PASSWORD)]);
    let (stdout, _) = assert_gate_failed(&output);
    assert!(
        stdout.contains(&format!("broker A: {tls} (TLS; ")),
        "{stdout}"
    );
    let report = read_report(&json);
    assert_eq!(report["brokers"][0]["transport"], "TLS");
    assert_outcomes(&report, "A", "tansu-sasl-scram-sha-256", &[]);
}

/// `--against` a second broker over TLS: both Tansus behind their own
/// TLS listener (same CA), both reported as TLS, each broker's outcomes
/// are plaintext Tansu's, and the two do not diverge.
#[test]
fn differential_run_over_tls_reaches_both_brokers() {
    let (dir, files, a) = tls_tansu(false);
    let b = start_tansu_tls(&files, false, Storage::Memory, &[]);
    let (a, b) = (a.tls.bootstrap.as_str(), b.tls.bootstrap.as_str());
    let json = dir.path().join("against.json").display().to_string();
    let ca = files.ca.display().to_string();
    let mut args: Vec<String> = [
        "--bootstrap",
        a,
        "--against",
        b,
        "--tls",
        "--tls-ca",
        &ca,
        "--json",
        &json,
    ]
    .map(str::to_owned)
    .to_vec();
    let suites = ["handshake", "metadata"];
    args.extend(suite_args(&suites));
    // Two brokers of the same make do not diverge, but each fails the
    // MUST cases plaintext Tansu fails: exit 1, as in plaintext.
    let (stdout, _) = assert_gate_failed(&conform(&args));
    assert!(
        stdout.contains("conformance gate: FAIL (exit 1): "),
        "{stdout}"
    );
    let report = read_report(&json);
    for (label, bootstrap, origin) in [("A", a, "--bootstrap"), ("B", b, "--against")] {
        assert!(
            stdout.contains(&format!(
                "broker {label}: {bootstrap} (TLS; external broker given with {origin}; "
            )),
            "{stdout}"
        );
    }
    let brokers = report["brokers"].as_array().expect("brokers");
    assert_eq!(brokers.len(), 2, "{brokers:#?}");
    for (broker, (label, bootstrap)) in brokers.iter().zip([("A", a), ("B", b)]) {
        assert_eq!(broker["label"], label);
        assert_eq!(broker["bootstrap"], bootstrap);
        assert_eq!(broker["transport"], "TLS");
        assert_outcomes(&report, label, "tansu", &suites);
    }
    assert_eq!(report["divergences"], Json::Array(Vec::new()));
    assert_eq!(report["verdict"]["exit_code"], 1);
}
