//! Brokers for the integration tests, started on loopback and killed when
//! dropped: librdkafka's mock cluster (corpus/scenarios/mockcluster.c,
//! compiled with `cc -lrdkafka`) and Tansu (memory or SQLite storage),
//! plaintext or behind a TLS listener; the SCRAM account the SASL runs
//! log in with; the committed outcome expectations (tests/conform/NAME.json)
//! and how to compare a run with them. Shared by the conformance tests
//! through `mod support;`.
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
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use kwire::client::sasl::Mechanism;
use kwire::client::{ConnectOptions, Connection};
use kwire::codec::message_from_json;
use kwire::display::to_json;
use kwire::schema;
use serde_json::{json, Value as Json};

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

/// Where Tansu keeps its data.
#[derive(Clone, Copy)]
pub enum Storage<'a> {
    /// In memory; SCRAM credentials are not kept.
    Memory,
    /// `sqlite:///tansu.db` in this directory (Tansu opens the database
    /// relative to its working directory). Unlike memory storage it keeps
    /// SCRAM credentials (AlterUserScramCredentials), and keeps them
    /// across a restart on the same directory. Needs Tansu built with the
    /// `libsql` feature.
    Sqlite(&'a Path),
}

impl Storage<'_> {
    fn name(self) -> &'static str {
        match self {
            Storage::Memory => "memory",
            Storage::Sqlite(_) => "SQLite",
        }
    }

    /// What to do when Tansu does not start on this storage.
    fn hint(self) -> &'static str {
        match self {
            Storage::Memory => "",
            Storage::Sqlite(_) => {
                "\nSQLite storage needs Tansu built with the libsql feature: \
                 `cargo install tansu --version 0.6.0 --locked --features dynostore,libsql`"
            }
        }
    }
}

/// `tansu broker` on `storage` with `extra` options, listening on
/// loopback `port` and advertising loopback `advertised_port`.
fn tansu_command(storage: Storage, extra: &[&str], port: u16, advertised_port: u16) -> Command {
    let mut command = Command::new(tansu_binary());
    let url = match storage {
        Storage::Memory => "memory://tansu/",
        Storage::Sqlite(dir) => {
            command.current_dir(dir);
            "sqlite:///tansu.db"
        }
    };
    command
        .args(["broker", "--storage-engine", url])
        .args([
            "--listener-url",
            &format!("tcp://127.0.0.1:{port}"),
            "--advertised-listener-url",
            &format!("tcp://127.0.0.1:{advertised_port}"),
        ])
        .args(extra);
    command
}

/// What a Tansu on `storage` with `extra` options is, for messages and
/// the expectation files: "tansu 0.6.0 (SQLite storage, --authentication)".
fn tansu_description(storage: Storage, extra: &[&str]) -> String {
    let options: String = extra.iter().map(|option| format!(", {option}")).collect();
    format!("tansu 0.6.0 ({} storage{options})", storage.name())
}

/// Calls `start` up to three times, since another process may take a
/// free port between choosing and binding it; else returns the last
/// words of the last try.
fn with_retries<T>(mut start: impl FnMut() -> Result<T, String>) -> Result<T, String> {
    let mut last_log = String::new();
    for _ in 0..3 {
        match start() {
            Ok(started) => return Ok(started),
            Err(log) => last_log = log,
        }
    }
    Err(last_log)
}

/// Starts Tansu with memory storage on a free loopback port.
pub fn start_tansu() -> BrokerProcess {
    start_tansu_on(Storage::Memory, &[])
}

/// Starts Tansu on `storage` with more broker options (`--authentication`)
/// on a free loopback port.
pub fn start_tansu_on(storage: Storage, extra: &[&str]) -> BrokerProcess {
    let description = tansu_description(storage, extra);
    with_retries(|| {
        let port = free_port();
        spawn_listening(
            tansu_command(storage, extra, port, port),
            port,
            &description,
        )
    })
    .unwrap_or_else(|log| {
        panic!(
            "{description} did not start listening: {log}{}",
            storage.hint()
        )
    })
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
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        if TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
            if let Some(mut stderr) = child.stderr.take() {
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut stderr, &mut std::io::sink());
                });
            }
            return Ok(BrokerProcess {
                child,
                bootstrap: address.to_string(),
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

/// Starts Tansu on `storage` with `extra` options and socat's OpenSSL
/// listener in front of it, with the server certificate of `files`; with
/// `client_auth` the listener also demands a client certificate signed
/// by the CA. Tansu advertises the TLS address. Needs `socat` (Debian:
/// `apt-get install socat`).
pub fn start_tansu_tls(
    files: &TlsFiles,
    client_auth: bool,
    storage: Storage,
    extra: &[&str],
) -> TlsTansu {
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
    let description = tansu_description(storage, extra);
    with_retries(|| {
        let (port, tls_port) = (free_port(), free_port());
        if port == tls_port {
            return Err(format!("port {port} chosen twice"));
        }
        let plaintext = spawn_listening(
            tansu_command(storage, extra, port, tls_port),
            port,
            &description,
        )?;
        let mut socat = Command::new("socat");
        socat.arg(format!(
            "OPENSSL-LISTEN:{tls_port},bind=127.0.0.1,reuseaddr,fork,nodelay,cert={},key={},{verify}",
            files.server_cert.display(),
            files.server_key.display()
        ));
        socat.arg(format!("TCP:127.0.0.1:{port},nodelay"));
        let tls = spawn_listening(
            socat,
            tls_port,
            &format!("{description} behind socat's OpenSSL listener"),
        )?;
        Ok(TlsTansu { tls, plaintext })
    })
    .unwrap_or_else(|log| {
        panic!(
            "{description} behind socat did not start listening: {log}{}",
            storage.hint()
        )
    })
}

/// tests/conform/NAME.json: the outcomes a broker gave, with findings.
pub fn expectation_path(name: &str) -> PathBuf {
    manifest_dir()
        .join("tests/conform")
        .join(format!("{name}.json"))
}

/// The committed expectations tests/conform/NAME.json.
pub fn expectations(name: &str) -> Json {
    let path = expectation_path(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|error| {
        panic!(
            "cannot read {}: {error}; record it with \
             `KWIRE_BLESS=1 cargo test --test conform_engine`",
            path.display()
        )
    });
    serde_json::from_str(&text).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// The text values of a JSON object by key (`outcomes`, `findings`);
/// nothing when `value` is not an object.
pub fn text_map(value: &Json) -> BTreeMap<String, String> {
    value
        .as_object()
        .into_iter()
        .flatten()
        .map(|(key, value)| (key.clone(), value.as_str().unwrap_or_default().to_owned()))
        .collect()
}

/// The outcomes committed in tests/conform/NAME.json, by case key.
pub fn expected_outcomes(name: &str) -> BTreeMap<String, String> {
    let json = expectations(name);
    assert!(
        json["outcomes"].is_object(),
        "{} has no \"outcomes\" object",
        expectation_path(name).display()
    );
    text_map(&json["outcomes"])
}

/// The key of a result of a JSON report (or a serialized runner result)
/// in the expectation files: `ID@VERSION`, or `ID` for a case that does
/// not run per version.
pub fn case_key(result: &Json) -> String {
    let id = result["id"].as_str().unwrap_or_default();
    match result["version"].as_i64() {
        Some(version) => format!("{id}@{version}"),
        None => id.to_owned(),
    }
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

/// The account the SASL runs log in with.
pub const SASL_USER: &str = "kwire";
pub const SASL_PASSWORD: &str = "kwire-secret";

/// Timeouts for the tests' own connections to a broker.
pub fn connect_options() -> ConnectOptions {
    ConnectOptions {
        connect_timeout: Duration::from_secs(5),
        io_timeout: Duration::from_secs(10),
        ..ConnectOptions::default()
    }
}

/// Sends `body` as `api` at `version` and returns the response as JSON.
pub fn request(connection: &mut Connection, api: &str, version: i16, body: Json) -> Json {
    let spec = schema::api_by_name(api).expect("a known API");
    let body = message_from_json(spec.request, version, &body)
        .unwrap_or_else(|error| panic!("{api} v{version}: {error}"));
    let response = connection
        .request(spec.key, version, &body)
        .unwrap_or_else(|error| panic!("{api} v{version}: {error}"));
    to_json(
        response
            .body
            .as_ref()
            .unwrap_or_else(|| panic!("the {api} response does not decode")),
    )
}

/// Makes the account [`SASL_USER`] with [`SASL_PASSWORD`] in the SQLite
/// database in `dir`, for a Tansu started afterwards on it with
/// `--authentication`.
///
/// Tansu 0.6.0 keeps SCRAM credentials only in SQL storage (with memory
/// storage, AlterUserScramCredentials answers NONE and stores nothing),
/// and on a broker with `--authentication` every request but ApiVersions
/// and SASL needs a login first. So the account is made by kwire's own
/// client on a Tansu with authentication off, which is then stopped. (A
/// suite step cannot make it: the salted password needs the SCRAM math,
/// and making accounts is the test's setup, not a claim about the
/// broker.)
pub fn create_sasl_account(dir: &Path) {
    let setup = start_tansu_on(Storage::Sqlite(dir), &[]);
    let described = create_scram_user(&setup.bootstrap, SASL_USER, SASL_PASSWORD);
    // Tansu 0.6.0 answers DescribeUserScramCredentials with an empty
    // response whatever it stores (its handler returns the default
    // response): a Kafka broker lists the user with both mechanisms. If
    // this changes, check the listing and assert it here.
    assert!(
        described["error_code"] == 0 && described["results"].is_null(),
        "{described}"
    );
}

/// Gives `user` SCRAM-SHA-256 and SCRAM-SHA-512 credentials for
/// `password` with AlterUserScramCredentials (KIP-554) on a broker that
/// needs no authentication: salted_password is `Hi(password, salt,
/// 4096)` (RFC 5802 section 3), computed by kwire's SCRAM client code.
/// Returns what DescribeUserScramCredentials then says about the user.
fn create_scram_user(bootstrap: &str, user: &str, password: &str) -> Json {
    let mut connection = Connection::connect(bootstrap, connect_options())
        .unwrap_or_else(|error| panic!("{bootstrap}: {error}"));
    // A fixed salt keeps runs alike; a real account gets a random one.
    let salt = b"kwire-conformance-salt";
    let iterations = 4096;
    let upsertions: Vec<Json> = [Mechanism::ScramSha256, Mechanism::ScramSha512]
        .into_iter()
        .map(|mechanism| {
            let hash = mechanism.scram_hash().expect("a SCRAM mechanism");
            json!({
                "name": user,
                "mechanism": mechanism.scram_type(),
                "iterations": iterations,
                "salt": kwire::value::hex(salt),
                "salted_password": kwire::value::hex(&hash.hi(password.as_bytes(), salt, iterations)),
            })
        })
        .collect();
    let altered = request(
        &mut connection,
        "AlterUserScramCredentials",
        0,
        json!({"upsertions": upsertions}),
    );
    let results = altered["results"].as_array().map_or(&[][..], Vec::as_slice);
    assert_eq!(results.len(), 2, "{altered}");
    for result in results {
        assert!(
            result["user"] == user && result["error_code"] == 0,
            "{altered}"
        );
    }
    request(
        &mut connection,
        "DescribeUserScramCredentials",
        0,
        json!({"users": [{"name": user}]}),
    )
}
