//! Brokers for the integration tests, started on loopback and killed when
//! dropped: librdkafka's mock cluster (corpus/scenarios/mockcluster.c,
//! compiled with `cc -lrdkafka`) and Tansu (memory storage), plaintext or
//! behind a TLS listener. Also the committed outcome expectations
//! (tests/conform/NAME.json) and how to compare a run with them. Shared
//! by the conformance tests through `mod support;`.
//!
//! Tansu 0.6.0 cannot serve TLS itself: its `--cert` and `--key` are in
//! one clap group, so giving both is refused ("the argument '--cert' cannot
//! be used with '--key'"), and its listener drops the TLS acceptor it
//! builds (`let _acceptor` in tansu-broker's `listen`) and serves every
//! connection in plaintext. [`start_tansu_tls`] therefore puts socat's
//! OpenSSL listener in front of it, and Tansu advertises that listener,
//! so every connection a client opens (bootstrap and routed) is TLS.

// Each test crate uses part of this module.
#![allow(dead_code)]

use std::collections::BTreeMap;
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
    run_tool(
        Command::new("cc")
            .arg("-O1")
            .arg("-o")
            .arg(&binary)
            .arg(&source)
            .arg("-lrdkafka"),
        &format!("cannot compile {}", source.display()),
        "install a C compiler and librdkafka's headers: `apt-get install build-essential librdkafka-dev`",
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

/// Runs a tool the tests need and asserts that it succeeded; `install`
/// says how to get it, when it is missing or fails.
fn run_tool(command: &mut Command, what: &str, install: &str) -> std::process::Output {
    let program = command.get_program().to_string_lossy().into_owned();
    let output = command
        .output()
        .unwrap_or_else(|error| panic!("cannot run {program} ({error}): {install}"));
    assert!(
        output.status.success(),
        "{what}: {}\n{install}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
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
    start_tansu_on(None, "memory://tansu/", extra, description)
        .unwrap_or_else(|log| panic!("tansu did not start listening: {log}"))
}

/// Starts `command`, which should listen on loopback `port`, and waits
/// up to 20 s for it to accept a connection; else kills it and returns
/// what it wrote to stderr.
fn spawn_listening(
    mut command: Command,
    port: u16,
    description: &str,
) -> Result<BrokerProcess, String> {
    let program = command.get_program().to_string_lossy().into_owned();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("cannot start {program}: {error}"));
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
            return Ok(BrokerProcess {
                child,
                bootstrap,
                description: description.to_owned(),
            });
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    let mut log = String::new();
    if let Some(mut stderr) = child.stderr.take() {
        let _ = stderr.read_to_string(&mut log);
    }
    Err(log)
}

/// A test PKI made with the openssl CLI: a CA, a server certificate for
/// 127.0.0.1 and localhost, and a client certificate (all P-256, valid
/// for two days).
pub struct TlsFiles {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

/// Makes [`TlsFiles`] in `dir`. Needs the `openssl` command (Debian:
/// `apt-get install openssl`).
pub fn make_certificates(dir: &Path) -> TlsFiles {
    let file = |name: &str| dir.join(name);
    let openssl = |args: &[&str]| {
        run_tool(
            Command::new("openssl").args(args).current_dir(dir),
            &format!("openssl {}", args.join(" ")),
            "install openssl: `apt-get install openssl`",
        )
    };
    let new_key = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    openssl(
        &[
            &["req", "-x509", "-days", "2", "-subj", "/CN=kwire test CA"],
            &new_key[..],
            &["-keyout", "ca.key", "-out", "ca.pem"],
            &["-addext", "basicConstraints=critical,CA:TRUE"],
            &["-addext", "keyUsage=critical,keyCertSign,cRLSign"],
        ]
        .concat(),
    );
    for (name, subject, extensions) in [
        (
            "server",
            "/CN=localhost",
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
        ),
        (
            "client",
            "/CN=kwire-client",
            "extendedKeyUsage=clientAuth\n",
        ),
    ] {
        let (csr, key, cert, ext) = (
            format!("{name}.csr"),
            format!("{name}.key"),
            format!("{name}.pem"),
            format!("{name}.ext"),
        );
        std::fs::write(
            file(&ext),
            format!("basicConstraints=CA:FALSE\n{extensions}"),
        )
        .expect("write extensions");
        openssl(
            &[
                &["req", "-subj", subject],
                &new_key[..],
                &["-keyout", &key, "-out", &csr],
            ]
            .concat(),
        );
        openssl(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            &cert,
            "-extfile",
            &ext,
        ]);
    }
    TlsFiles {
        ca: file("ca.pem"),
        server_cert: file("server.pem"),
        server_key: file("server.key"),
        client_cert: file("client.pem"),
        client_key: file("client.key"),
    }
}

/// Tansu behind a TLS listener; both are killed when dropped.
pub struct TlsTansu {
    /// The TLS listener (socat), the address Tansu advertises.
    pub tls: BrokerProcess,
    /// Tansu itself, plaintext, on another port.
    pub plaintext: BrokerProcess,
}

/// Starts Tansu (memory storage) and socat's OpenSSL listener in front of
/// it, with the server certificate of `files`; with `client_auth` the
/// listener also demands a client certificate signed by the CA. Tansu
/// advertises the TLS address. Needs `socat` (Debian: `apt-get install
/// socat`).
pub fn start_tansu_tls(files: &TlsFiles, client_auth: bool) -> TlsTansu {
    let binary = tansu_binary();
    let verify = if client_auth {
        format!("verify=1,cafile={}", files.ca.display())
    } else {
        "verify=0".to_owned()
    };
    if Command::new("socat").arg("-V").output().is_err() {
        panic!(
            "socat is not installed: `apt-get install socat` (the TLS listener in front of Tansu)"
        );
    }
    let mut last_log = String::new();
    for _ in 0..3 {
        let (port, tls_port) = (free_port(), free_port());
        if port == tls_port {
            continue;
        }
        let url = format!("tcp://127.0.0.1:{port}");
        let advertised = format!("tcp://127.0.0.1:{tls_port}");
        let mut command = Command::new(&binary);
        command
            .args(["broker", "--storage-engine", "memory://tansu/"])
            .args([
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &advertised,
            ]);
        let plaintext = match spawn_listening(command, port, "tansu 0.6.0 (memory storage)") {
            Ok(tansu) => tansu,
            Err(log) => {
                last_log = log;
                continue;
            }
        };
        let mut socat = Command::new("socat");
        socat.arg(format!(
            "OPENSSL-LISTEN:{tls_port},bind=127.0.0.1,reuseaddr,fork,nodelay,cert={},key={},{verify}",
            files.server_cert.display(),
            files.server_key.display()
        ));
        socat.arg(format!("TCP:127.0.0.1:{port},nodelay"));
        match spawn_listening(
            socat,
            tls_port,
            "tansu 0.6.0 (memory storage) behind socat's OpenSSL listener",
        ) {
            Ok(tls) => return TlsTansu { tls, plaintext },
            Err(log) => last_log = log,
        }
    }
    panic!("tansu behind socat did not start listening: {last_log}");
}

/// The outcomes committed in tests/conform/NAME.json, by case key.
pub fn expected_outcomes(name: &str) -> BTreeMap<String, String> {
    let path = manifest_dir()
        .join("tests/conform")
        .join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
    let json: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    json["outcomes"]
        .as_object()
        .unwrap_or_else(|| panic!("{} has no \"outcomes\" object", path.display()))
        .iter()
        .map(|(key, value)| (key.clone(), value.as_str().unwrap_or_default().to_owned()))
        .collect()
}

/// One line per case whose outcome differs between `expected` and
/// `actual` (a case missing on either side counts).
pub fn outcome_differences(
    expected: &BTreeMap<String, String>,
    actual: &BTreeMap<String, String>,
) -> Vec<String> {
    let keys: std::collections::BTreeSet<&String> = expected.keys().chain(actual.keys()).collect();
    keys.into_iter()
        .filter(|key| expected.get(*key) != actual.get(*key))
        .map(|key| {
            format!(
                "{key}: expected {}, got {}",
                expected.get(key).map_or("(no entry)", String::as_str),
                actual.get(key).map_or("(did not run)", String::as_str)
            )
        })
        .collect()
}

/// Starts Tansu with SQLite storage, `sqlite:///tansu.db` in `dir` (Tansu
/// opens the database relative to its working directory). Unlike memory
/// storage it keeps SCRAM credentials (AlterUserScramCredentials), and
/// keeps them across a restart on the same `dir`. Needs Tansu built with
/// the `libsql` feature.
pub fn start_tansu_sqlite(dir: &Path, extra: &[&str], description: &str) -> BrokerProcess {
    start_tansu_on(Some(dir), "sqlite:///tansu.db", extra, description).unwrap_or_else(|log| {
        panic!(
            "tansu with SQLite storage did not start listening: {log}\n\
             SQLite storage needs Tansu built with the libsql feature: \
             `cargo install tansu --version 0.6.0 --locked --features dynostore,libsql`"
        )
    })
}

/// Starts Tansu on `storage` (in working directory `dir`, if given) on a
/// free loopback port; tries a few ports in case another process takes
/// the chosen one first. Else returns Tansu's last words.
fn start_tansu_on(
    dir: Option<&Path>,
    storage: &str,
    extra: &[&str],
    description: &str,
) -> Result<BrokerProcess, String> {
    let binary = tansu_binary();
    let mut last_log = String::new();
    for _ in 0..3 {
        let port = free_port();
        let url = format!("tcp://127.0.0.1:{port}");
        let mut command = Command::new(&binary);
        if let Some(dir) = dir {
            command.current_dir(dir);
        }
        command
            .args(["broker", "--storage-engine", storage])
            .args(["--listener-url", &url, "--advertised-listener-url", &url])
            .args(extra);
        match spawn_listening(command, port, description) {
            Ok(broker) => return Ok(broker),
            Err(log) => last_log = log,
        }
    }
    Err(last_log)
}
