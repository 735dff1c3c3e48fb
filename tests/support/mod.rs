//! Brokers for the integration tests, started on loopback and killed when
//! dropped: librdkafka's mock cluster (corpus/scenarios/mockcluster.c,
//! compiled with `cc -lrdkafka`) and Tansu (memory storage). Shared by the
//! conformance tests through `mod support;`.

// Each test crate uses part of this module.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A broker process, killed when dropped.
pub struct BrokerProcess {
    child: Child,
    pub bootstrap: String,
    /// What it is, for messages and the expectation file.
    pub description: String,
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Compiles and starts the mock cluster with `brokers` brokers (it ends
/// by itself after 10 minutes).
pub fn start_mock_cluster(dir: &Path, brokers: u32) -> BrokerProcess {
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
        .arg(brokers.to_string())
        .arg("600")
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
pub fn start_tansu() -> BrokerProcess {
    start_tansu_with(&[], "tansu 0.6.0 (memory storage)")
}

/// [`start_tansu`] with more broker options (`--authentication`).
pub fn start_tansu_with(extra: &[&str], description: &str) -> BrokerProcess {
    let binary = tansu_binary();
    let mut last_log = String::new();
    for _ in 0..3 {
        let port = free_port();
        let url = format!("tcp://127.0.0.1:{port}");
        let mut child = Command::new(&binary)
            .args(["broker", "--storage-engine", "memory://tansu/"])
            .args(["--listener-url", &url, "--advertised-listener-url", &url])
            .args(extra)
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
                    description: description.to_owned(),
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
