//! `kwire live` sniffing loopback while a real client (kcat, librdkafka)
//! talks to a real broker (librdkafka's mock cluster, started here from
//! corpus/scenarios/mockcluster.c): the exchanges printed as NDJSON must be
//! the ones that happened. CI runs as root; without the right to capture
//! the test checks instead that kwire says what is missing and how to
//! grant it.
//!
//! Needs: kcat (Debian: `apt-get install kcat`), a C compiler and
//! librdkafka's headers (`apt-get install build-essential librdkafka-dev`).

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

mod support;

/// A child process, killed when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `kwire live` with `args`; returns it once its capture is open
/// (it says so on stderr), with its stdout, or its stderr if it failed.
fn start_kwire(args: &[&str]) -> Result<(Killed, std::process::ChildStdout), String> {
    let mut child = Killed(
        Command::new(env!("CARGO_BIN_EXE_kwire"))
            .arg("live")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start kwire live"),
    );
    let stdout = child.0.stdout.take().expect("stdout");
    let mut stderr = BufReader::new(child.0.stderr.take().expect("stderr"));
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = stderr.read_line(&mut line);
        let _ = tx.send(line.clone());
        let mut rest = String::new();
        let _ = stderr.read_to_string(&mut rest);
    });
    // On every path the child is killed and waited for when dropped.
    let line = rx
        .recv_timeout(Duration::from_secs(20))
        .map_err(|_| "kwire live said nothing within 20 s".to_owned())?;
    if line.starts_with("kwire: capturing on lo") {
        Ok((child, stdout))
    } else {
        Err(line)
    }
}

fn kcat(args: &[&str], input: &str) {
    let mut child = Command::new("kcat")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("cannot run kcat ({error}): `apt-get install kcat`"));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write to kcat");
    let output = child.wait_with_output().expect("kcat");
    assert!(
        output.status.success(),
        "kcat failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn read_json(stdout: std::process::ChildStdout) -> Vec<serde_json::Value> {
    BufReader::new(stdout)
        .lines()
        .map(|line| serde_json::from_str(&line.expect("line")).expect("NDJSON"))
        .collect()
}

#[test]
fn live_capture_sees_kcat_talk_to_a_mock_broker() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cluster = support::start_mock_cluster(dir.path(), 1);
    let bootstrap = cluster.bootstrap.clone();
    let port = bootstrap.rsplit(':').next().unwrap_or_default().to_owned();
    let bpf = format!("tcp port {port}");
    // Two captures of the same traffic: one stops at its count, the other
    // at its duration.
    let common = ["-i", "lo", "--json", "--port", &port, "-f", &bpf];
    let counted = [&common[..], &["--count", "2", "--duration", "30"]].concat();
    let timed = [&common[..], &["--count", "1000", "--duration", "8"]].concat();
    let (mut counted, counted_out) = match start_kwire(&counted) {
        Ok(started) => started,
        Err(message) => {
            // SAFETY: geteuid has no preconditions.
            let root = unsafe { libc::geteuid() } == 0;
            assert!(!root, "kwire live failed as root: {message}");
            // Without the right to capture: the message says what to do.
            assert!(message.contains("CAP_NET_RAW"), "{message}");
            assert!(
                message.contains("setcap cap_net_raw,cap_net_admin=eip"),
                "{message}"
            );
            eprintln!("not root and no CAP_NET_RAW: checked the message only");
            return;
        }
    };
    let (mut timed, timed_out) = start_kwire(&timed).expect("second capture");

    let topic = format!("kwire-live-{}", std::process::id());
    kcat(
        &["-b", &bootstrap, "-P", "-t", &topic, "-p", "0"],
        "hello\nworld\n",
    );

    let status = timed.0.wait().expect("kwire exits after --duration");
    assert!(status.success());
    let exchanges = read_json(timed_out);
    let names: Vec<&str> = exchanges
        .iter()
        .map(|e| e["api_name"].as_str().unwrap_or(""))
        .collect();
    assert!(names.contains(&"ApiVersions"), "{names:?}");
    assert!(names.contains(&"Metadata"), "{names:?}");
    let produce = exchanges
        .iter()
        .find(|e| e["api_name"] == "Produce")
        .unwrap_or_else(|| panic!("no Produce in {names:?}"));
    assert_eq!(produce["state"], "complete");
    assert_eq!(produce["summary"]["records"], 2);
    assert!(produce["summary"]["topics"][&topic].is_array(), "{produce}");
    assert_eq!(produce["broker"], bootstrap);
    assert!(produce["client_id"].is_string());
    // The same JSON form as `kwire read --json`.
    for key in [
        "id",
        "ts",
        "time",
        "connection",
        "latency_us",
        "sizes",
        "request",
        "response",
    ] {
        assert!(produce.get(key).is_some(), "{key} in {produce}");
    }

    let status = counted.0.wait().expect("kwire exits after --count");
    assert!(status.success());
    assert_eq!(read_json(counted_out).len(), 2);
}

/// As an ordinary user: without capabilities kwire says what is missing
/// and how to grant it; with them (setcap on a copy of the binary) it
/// captures and then gives every capability up. Needs root to set up
/// (setpriv from util-linux, setcap from libcap2-bin).
#[test]
fn an_ordinary_user_is_told_what_to_grant_then_gives_it_up() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("not root: cannot switch users to test this");
        return;
    }
    if Command::new("setcap").arg("-v").output().is_err() {
        panic!("setcap is missing: `apt-get install libcap2-bin`");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let binary = dir.path().join("kwire");
    std::fs::copy(env!("CARGO_BIN_EXE_kwire"), &binary).expect("copy kwire");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::set_permissions(&binary, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let as_nobody = || {
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(&binary)
            .args(["live", "-i", "lo", "--json", "--duration", "0.5"])
            .output()
            .expect("setpriv (util-linux)")
    };
    let output = as_nobody();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("CAP_NET_RAW"), "{stderr}");
    assert!(
        stderr.contains("sudo setcap cap_net_raw,cap_net_admin=eip $(which kwire)"),
        "{stderr}"
    );

    let granted = Command::new("setcap")
        .arg("cap_net_raw,cap_net_admin=eip")
        .arg(&binary)
        .status()
        .expect("setcap");
    assert!(granted.success());
    let output = as_nobody();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("capture open; every capability given up\n"),
        "{stderr}"
    );
}
