//! The gate must catch real bugs: a proxy in this test sits between the
//! runner and a real broker (librdkafka's mock cluster, one broker), and
//! corrupts chosen responses the way a buggy broker would. For each fault,
//! exactly the cases that test the corrupted behaviour must go from pass to
//! fail, and every other case must keep its outcome.
//!
//! The proxy forwards bytes both ways on loopback. Responses are cut into
//! frames, decoded with kwire's frame module at the API and version of the
//! request they answer, changed, and encoded again; Metadata and
//! FindCoordinator responses always get the proxy's own address in place
//! of the broker's, so that routed connections go through it too.
//!
//! Needs what tests/conform_engine.rs needs for the mock cluster: a C
//! compiler and librdkafka's headers (`apt-get install build-essential
//! librdkafka-dev`).

mod support;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kwire::conform::runner::Quiet;
use kwire::conform::{self, Broker, RunOptions, Runner};
use kwire::frame::{self, Deframe};
use kwire::value::{Struct, Value};
use serde_json::Value as Json;

/// One way of corrupting the broker's answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    /// Nothing but the address rewriting: the baseline.
    None,
    /// Heartbeat answers NONE where the broker said UNKNOWN_MEMBER_ID: a
    /// coordinator that does not check membership.
    HeartbeatIgnoresMembership,
    /// ListOffsets answers leave out every partition asked for.
    ListOffsetsDropsPartitions,
    /// Fetch answers report a high watermark one past the log end.
    FetchHighWatermarkOffByOne,
    /// InitProducerId answers carry another correlation id.
    InitProducerIdWrongCorrelation,
    /// The connection is closed when an OffsetFetch request arrives.
    OffsetFetchClosesConnection,
}

const HEARTBEAT: i16 = 12;
const LIST_OFFSETS: i16 = 2;
const FETCH: i16 = 1;
const INIT_PRODUCER_ID: i16 = 22;
const OFFSET_FETCH: i16 = 9;
const METADATA: i16 = 3;
const FIND_COORDINATOR: i16 = 10;
const UNKNOWN_MEMBER_ID: i64 = 25;

/// How long any proxy thread may live: a bound on every loop here.
const PROXY_LIFETIME: Duration = Duration::from_secs(600);
const POLL: Duration = Duration::from_millis(50);

/// A loopback proxy to one broker, stopped when dropped.
struct Proxy {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(handle) = self.acceptor.take() {
            let _ = handle.join();
        }
    }
}

impl Proxy {
    fn start(upstream: SocketAddr, fault: Fault) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy on loopback");
        let addr = listener.local_addr().expect("proxy address");
        listener.set_nonblocking(true).expect("nonblocking");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let acceptor = std::thread::Builder::new()
            .name(format!("proxy-{fault:?}"))
            .spawn(move || {
                let deadline = Instant::now() + PROXY_LIFETIME;
                let mut links = Vec::new();
                while !flag.load(Ordering::SeqCst) && Instant::now() < deadline {
                    match listener.accept() {
                        Ok((client, _)) => {
                            if let Some(link) = Link::open(client, upstream, addr, fault, &flag) {
                                links.push(link);
                            }
                        }
                        Err(_) => std::thread::sleep(POLL),
                    }
                }
                for link in links {
                    link.join();
                }
            })
            .expect("spawn the proxy");
        Proxy {
            addr,
            stop,
            acceptor: Some(acceptor),
        }
    }
}

/// Requests waiting for their answer on one connection: correlation id to
/// API key and version.
type Pending = Arc<Mutex<HashMap<i32, (i16, i16)>>>;

/// One client connection and its upstream twin, a thread each way.
struct Link {
    threads: [JoinHandle<()>; 2],
}

impl Link {
    fn open(
        client: TcpStream,
        upstream: SocketAddr,
        proxy: SocketAddr,
        fault: Fault,
        stop: &Arc<AtomicBool>,
    ) -> Option<Link> {
        client.set_nonblocking(false).ok()?;
        let server = TcpStream::connect_timeout(&upstream, Duration::from_secs(5)).ok()?;
        for stream in [&client, &server] {
            stream.set_read_timeout(Some(POLL)).ok()?;
            stream.set_nodelay(true).ok()?;
        }
        let pending: Pending = Arc::default();
        let up = {
            let (from, to) = (client.try_clone().ok()?, server.try_clone().ok()?);
            let (pending, stop) = (pending.clone(), stop.clone());
            std::thread::spawn(move || requests(from, to, &pending, fault, &stop))
        };
        let down = {
            let (from, to) = (server, client);
            let stop = stop.clone();
            std::thread::spawn(move || responses(from, to, &pending, proxy, fault, &stop))
        };
        Some(Link {
            threads: [up, down],
        })
    }

    fn join(self) {
        for thread in self.threads {
            let _ = thread.join();
        }
    }
}

/// Reads what arrives within one poll; None at end of stream or error.
fn read_some(stream: &mut TcpStream, chunk: &mut [u8]) -> Option<usize> {
    match stream.read(chunk) {
        Ok(0) => None,
        Ok(read) => Some(read),
        Err(error)
            if matches!(
                error.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            Some(0)
        }
        Err(_) => None,
    }
}

fn close_both(a: &TcpStream, b: &TcpStream) {
    let _ = a.shutdown(Shutdown::Both);
    let _ = b.shutdown(Shutdown::Both);
}

/// Client to broker: bytes go through as they come (malformed input
/// included); whole frames are also read for their header, to know what
/// each answer answers.
fn requests(
    mut client: TcpStream,
    mut server: TcpStream,
    pending: &Pending,
    fault: Fault,
    stop: &AtomicBool,
) {
    let deadline = Instant::now() + PROXY_LIFETIME;
    let mut chunk = vec![0u8; 64 * 1024];
    let mut buffer: Vec<u8> = Vec::new();
    let mut parsing = true;
    while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
        let Some(read) = read_some(&mut client, &mut chunk) else {
            break;
        };
        let data = &chunk[..read];
        if parsing {
            buffer.extend_from_slice(data);
            while let Deframe::Frame(size) = frame::next_frame(&buffer, frame::DEFAULT_MAX_FRAME) {
                let whole: Vec<u8> = buffer.drain(..size).collect();
                if let (Some(key), Some(version), Some(id)) =
                    (be16(&whole, 4), be16(&whole, 6), be32(&whole, 8))
                {
                    if fault == Fault::OffsetFetchClosesConnection && key == OFFSET_FETCH {
                        close_both(&client, &server);
                        return;
                    }
                    if let Ok(mut map) = pending.lock() {
                        map.insert(id, (key, version));
                    }
                }
            }
            if matches!(
                frame::next_frame(&buffer, frame::DEFAULT_MAX_FRAME),
                Deframe::Malformed(_)
            ) {
                // Not Kafka framing any more: pass the rest on untouched.
                parsing = false;
                buffer.clear();
            }
        }
        if !data.is_empty() && server.write_all(data).is_err() {
            break;
        }
    }
    close_both(&client, &server);
}

/// Broker to client: every frame is decoded, changed as the fault says,
/// and encoded again.
fn responses(
    mut server: TcpStream,
    mut client: TcpStream,
    pending: &Pending,
    proxy: SocketAddr,
    fault: Fault,
    stop: &AtomicBool,
) {
    let deadline = Instant::now() + PROXY_LIFETIME;
    let mut chunk = vec![0u8; 64 * 1024];
    let mut buffer: Vec<u8> = Vec::new();
    while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
        let Some(read) = read_some(&mut server, &mut chunk) else {
            break;
        };
        buffer.extend_from_slice(&chunk[..read]);
        loop {
            match frame::next_frame(&buffer, frame::DEFAULT_MAX_FRAME) {
                Deframe::Frame(size) => {
                    let whole: Vec<u8> = buffer.drain(..size).collect();
                    let asked = be32(&whole, 4)
                        .and_then(|id| pending.lock().ok().and_then(|mut map| map.remove(&id)));
                    let out = match asked {
                        Some((key, version)) => corrupt(whole, key, version, proxy, fault),
                        None => whole,
                    };
                    if client.write_all(&out).is_err() {
                        close_both(&client, &server);
                        return;
                    }
                }
                Deframe::NeedMore(_) => break,
                Deframe::Malformed(_) => {
                    close_both(&client, &server);
                    return;
                }
            }
        }
    }
    close_both(&client, &server);
}

fn be16(bytes: &[u8], at: usize) -> Option<i16> {
    let slice = bytes.get(at..at + 2)?;
    Some(i16::from_be_bytes([slice[0], slice[1]]))
}

fn be32(bytes: &[u8], at: usize) -> Option<i32> {
    let slice = bytes.get(at..at + 4)?;
    Some(i32::from_be_bytes([slice[0], slice[1], slice[2], slice[3]]))
}

/// Decodes a response, applies the address rewriting and the fault, and
/// encodes it again; a response that does not decode goes through as is.
fn corrupt(whole: Vec<u8>, key: i16, version: i16, proxy: SocketAddr, fault: Fault) -> Vec<u8> {
    let mut decoded = frame::decode_response(
        Bytes::from(whole.clone()),
        key,
        version,
        &Default::default(),
    );
    let Some(body) = decoded.body.as_mut().filter(|_| decoded.error.is_none()) else {
        return whole;
    };
    match key {
        METADATA => {
            for broker in items_mut(body, "brokers") {
                point_at(broker, proxy);
            }
        }
        FIND_COORDINATOR => {
            point_at(body, proxy);
            for coordinator in items_mut(body, "coordinators") {
                point_at(coordinator, proxy);
            }
        }
        _ => {}
    }
    match (fault, key) {
        (Fault::HeartbeatIgnoresMembership, HEARTBEAT)
            if body.int("error_code") == Some(UNKNOWN_MEMBER_ID) =>
        {
            set(body, "error_code", Value::Int(0));
        }
        (Fault::ListOffsetsDropsPartitions, LIST_OFFSETS) => {
            for topic in items_mut(body, "topics") {
                set(topic, "partitions", Value::Array(Vec::new()));
            }
        }
        (Fault::FetchHighWatermarkOffByOne, FETCH) => {
            for topic in items_mut(body, "responses") {
                for partition in items_mut(topic, "partitions") {
                    if let Some(mark) = partition.int("high_watermark") {
                        set(partition, "high_watermark", Value::Int(mark + 1));
                    }
                }
            }
        }
        (Fault::InitProducerIdWrongCorrelation, INIT_PRODUCER_ID) => {
            if let Some(id) = decoded.header.int("correlation_id") {
                set(&mut decoded.header, "correlation_id", Value::Int(id + 1000));
            }
        }
        _ => {}
    }
    frame::reencode(&decoded).unwrap_or(whole)
}

/// The structs of an array field.
fn items_mut<'a>(parent: &'a mut Struct, name: &str) -> Vec<&'a mut Struct> {
    match parent.get_mut(name) {
        Some(Value::Array(items)) => items
            .iter_mut()
            .filter_map(|item| match item {
                Value::Struct(inner) => Some(inner),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn set(parent: &mut Struct, name: &str, value: Value) {
    if let Some(slot) = parent.get_mut(name) {
        *slot = value;
    }
}

/// Replaces a broker's advertised host and port with the proxy's.
fn point_at(entry: &mut Struct, proxy: SocketAddr) {
    if entry.get("host").is_some() && entry.int("port").is_some_and(|port| port > 0) {
        set(entry, "host", Value::String(proxy.ip().to_string()));
        set(entry, "port", Value::Int(i64::from(proxy.port())));
    }
}

/// The suites the faults touch; the malformed suite sends bytes a proxy
/// would judge instead of the broker, and SASL and admin cases skip on the
/// mock cluster.
const CASES: &[&str] = &[
    "handshake.*",
    "metadata.*",
    "produce.*",
    "consume.*",
    "groups.*",
];

/// Runs the selected cases through a proxy with `fault`, outcome by case.
fn outcomes_through(upstream: SocketAddr, fault: Fault, run: &str) -> BTreeMap<String, String> {
    let proxy = Proxy::start(upstream, fault);
    let suites = conform::load(&[support::manifest_dir().join("suites")])
        .unwrap_or_else(|errors| panic!("{errors}"));
    let mut vars = serde_json::Map::new();
    vars.insert("run".to_owned(), Json::String(run.to_owned()));
    let options = RunOptions {
        connect: support::connect_options(),
        sasl: None,
        vars,
        case_globs: CASES.iter().map(|glob| (*glob).to_owned()).collect(),
        masks: Vec::new(),
        alive_check: true,
    };
    let broker = Broker::probe("A", &proxy.addr.to_string(), &options.connect)
        .unwrap_or_else(|error| panic!("{fault:?}: the proxy does not answer: {error}"));
    let brokers = [broker];
    let runner = Runner {
        suites: &suites,
        brokers: &brokers,
        options: &options,
    };
    runner
        .run(&mut Quiet)
        .results
        .iter()
        .map(|result| (result.key(), result.outcome.name().to_owned()))
        .collect()
}

/// What each fault must break: the cases whose outcome goes from pass to
/// fail. Cases the mock cluster already fails cannot notice a fault.
fn expected_catches(fault: Fault) -> BTreeSet<&'static str> {
    let cases: &[&str] = match fault {
        Fault::None => &[],
        Fault::HeartbeatIgnoresMembership => &[
            "groups.heartbeat.unknown-member-id",
            "groups.leave.removes-member",
        ],
        Fault::ListOffsetsDropsPartitions => &[
            "consume.list-offsets.earliest",
            "consume.list-offsets.latest",
        ],
        Fault::FetchHighWatermarkOffByOne => &[
            "consume.fetch.at-end",
            "consume.fetch.high-watermark",
            "produce.compression.gzip",
            "produce.compression.lz4",
            "produce.compression.none",
            "produce.compression.snappy",
            "produce.compression.zstd",
        ],
        Fault::InitProducerIdWrongCorrelation => &[
            "produce.idempotent.first-batch",
            "produce.idempotent.init-producer-id",
        ],
        Fault::OffsetFetchClosesConnection => &[
            "groups.offsets.commit-fetch",
            "groups.offsets.fetch-uncommitted",
        ],
    };
    cases.iter().copied().collect()
}

#[test]
fn each_fault_fails_exactly_the_cases_that_test_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mock = support::start_mock_cluster(dir.path(), 1);
    let upstream: SocketAddr = mock.bootstrap.parse().expect("mock address");
    let faults = [
        Fault::None,
        Fault::HeartbeatIgnoresMembership,
        Fault::ListOffsetsDropsPartitions,
        Fault::FetchHighWatermarkOffByOne,
        Fault::InitProducerIdWrongCorrelation,
        Fault::OffsetFetchClosesConnection,
    ];
    // The runs wait on the mock's group timers most of the time: in
    // parallel they take about as long as one.
    let token = conform::run_token();
    let runs: Vec<(Fault, JoinHandle<BTreeMap<String, String>>)> = faults
        .iter()
        .enumerate()
        .map(|(index, &fault)| {
            let run = format!("{token}f{index}");
            let handle = std::thread::Builder::new()
                .name(format!("run-{fault:?}"))
                .spawn(move || outcomes_through(upstream, fault, &run))
                .expect("spawn a run");
            (fault, handle)
        })
        .collect();
    let results: Vec<(Fault, BTreeMap<String, String>)> = runs
        .into_iter()
        .map(|(fault, handle)| (fault, handle.join().expect("a run panicked")))
        .collect();
    let baseline = &results[0].1;

    // Invariants first: the baseline runs everything, the proxy itself
    // breaks nothing the direct run passes, and every case a fault should
    // break passes without it.
    assert!(baseline.len() > 40, "{baseline:#?}");
    for (case, must) in [
        ("metadata.brokers.reachable", "pass"),
        ("groups.rebalance.two-members", "pass"),
        ("produce.acks.all-returns-offset", "pass"),
    ] {
        assert_eq!(baseline.get(case).map(String::as_str), Some(must), "{case}");
    }
    for (fault, _) in &results {
        for case in expected_catches(*fault) {
            assert_eq!(
                baseline.get(case).map(String::as_str),
                Some("pass"),
                "{case} must pass without a fault to catch {fault:?}"
            );
        }
    }

    let mut problems = Vec::new();
    for (fault, outcomes) in &results[1..] {
        let caught: BTreeSet<&str> = outcomes
            .iter()
            .filter(|(case, outcome)| {
                *outcome == "fail" && baseline.get(*case).is_some_and(|base| base == "pass")
            })
            .map(|(case, _)| case.as_str())
            .collect();
        let expected = expected_catches(*fault);
        if caught != expected {
            problems.push(format!(
                "{fault:?}: caught by {caught:?}, expected {expected:?}"
            ));
        }
        for (case, outcome) in outcomes {
            let base = baseline.get(case).map_or("(absent)", String::as_str);
            if outcome != base && !expected.contains(case.as_str()) {
                problems.push(format!("{fault:?}: {case} went from {base} to {outcome}"));
            }
        }
        assert_eq!(
            outcomes.len(),
            baseline.len(),
            "{fault:?}: another case count"
        );
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
