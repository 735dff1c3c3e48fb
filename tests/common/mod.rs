//! Helpers shared by the integration tests that read the corpus captures:
//! the `.frames` oracle (`corpus/extract_frames.py`'s independent cut of
//! each capture) and the comparison of kwire's exchanges with it, the
//! findings real peers caused (`corpus/findings.txt`), the deterministic
//! mangling of a capture's TCP segments (re-split, reordered, duplicated)
//! and writing segments back out as a pcap file, and running the `kwire`
//! binary. Each test binary uses a part of it.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use kwire::capture::{parse_tcp, CaptureReader, LinkType, PcapWriter, RawPacket, TcpSegment};
use kwire::exchange::{Exchange, ExchangeState};
use kwire::frame::{DecodedFrame, Direction};
use kwire::sasl::SaslFraming;
use kwire::session::{read_capture, AnalyzerOptions, CaptureReport};
use kwire::value::hex;

/// The files in `dir` with one of `extensions`, sorted; None when `dir`
/// cannot be read (reference captures are not shipped with the project).
pub fn files_with_extensions(dir: &Path, extensions: &[&str]) -> Option<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).ok()?;
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| {
            path.extension()
                .is_some_and(|ext| extensions.iter().any(|wanted| ext == *wanted))
        })
        .collect();
    files.sort();
    Some(files)
}

/// Every `corpus/frames/*.frames` file (at least one).
pub fn corpus_frame_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/frames");
    let files = files_with_extensions(&dir, &["frames"])
        .unwrap_or_else(|| panic!("cannot read {}", dir.display()));
    assert!(!files.is_empty(), "no .frames files in {}", dir.display());
    files
}

/// One frame line of a `.frames` file, with the pairing it encodes.
#[derive(Debug)]
pub enum Item {
    Request {
        key: i16,
        version: i16,
        frame: String,
        response: Option<String>,
    },
    /// A raw SASL token after SaslHandshake v0.
    Raw { frame: String, from_client: bool },
    /// A response no request in the capture matches.
    Orphan { frame: String },
}

#[derive(Debug, Default)]
pub struct OracleConnection {
    pub client: String,
    pub broker: String,
    pub items: Vec<Item>,
}

/// Parses a `.frames` file with its comments: `# conn N client A -> server
/// B` names the connection, and a `resp` line right after its `req` is that
/// request's response.
pub fn parse_oracle(text: &str) -> Vec<OracleConnection> {
    let mut connections: Vec<OracleConnection> = Vec::new();
    let mut raw_from_client = true;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# sasl-raw ") {
            raw_from_client = rest.starts_with("c2s");
            continue;
        }
        if let Some(rest) = line.strip_prefix("# conn ") {
            let words: Vec<&str> = rest.split_whitespace().collect();
            if let [_, "client", client, "->", "server", broker] = words[..] {
                connections.push(OracleConnection {
                    client: client.to_owned(),
                    broker: broker.to_owned(),
                    items: Vec::new(),
                });
            }
            continue;
        }
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        let [kind, key, version, _, frame] = words[..] else {
            panic!("bad oracle line {line:?}");
        };
        let key: i16 = key.parse().expect("key");
        let version: i16 = version.parse().expect("version");
        let connection = connections
            .last_mut()
            .expect("a frame before any connection");
        let frame = frame.to_owned();
        match kind {
            "req" => connection.items.push(Item::Request {
                key,
                version,
                frame,
                response: None,
            }),
            "resp" if key == -1 => connection.items.push(Item::Orphan { frame }),
            "resp" => match connection.items.last_mut() {
                Some(Item::Request { response, .. }) => *response = Some(frame),
                _ => panic!("a response without its request: {line:?}"),
            },
            "sasl-raw" => connection.items.push(Item::Raw {
                frame,
                from_client: raw_from_client,
            }),
            other => panic!("unknown kind {other:?}"),
        }
    }
    connections
}

/// Whether a decoded frame is the oracle's frame: same size, same body
/// bytes, same correlation id.
pub fn same_frame(frame: &DecodedFrame, oracle: &str) -> bool {
    let body = hex(frame.body_bytes());
    // The correlation id follows the size, and in requests the API key and
    // version too.
    let at = match frame.direction {
        Direction::Request => 16,
        Direction::Response => 8,
    };
    let correlation_ok = frame
        .correlation_id
        .is_none_or(|id| oracle.get(at..at + 8) == Some(&format!("{:08x}", id as u32)[..]));
    frame.size * 2 == oracle.len() && oracle.ends_with(&body) && correlation_ok
}

pub struct Outcome {
    pub frames: usize,
    pub mismatches: Vec<String>,
}

/// Compares what kwire found on each connection with the oracle.
pub fn compare(exchanges: &[Exchange], oracle: &[OracleConnection]) -> Outcome {
    let mut mine: BTreeMap<u32, Vec<&Exchange>> = BTreeMap::new();
    for exchange in exchanges {
        mine.entry(exchange.connection).or_default().push(exchange);
    }
    for list in mine.values_mut() {
        list.sort_by_key(|exchange| exchange.id);
    }
    // Connections pair up by addresses, in order.
    let mut unclaimed: Vec<(u32, Vec<&Exchange>)> = mine.into_iter().collect();
    let mut outcome = Outcome {
        frames: 0,
        mismatches: Vec::new(),
    };
    for (number, connection) in oracle.iter().enumerate() {
        let at = unclaimed.iter().position(|(_, list)| {
            list[0].client.to_string() == connection.client
                && list[0].broker.to_string() == connection.broker
        });
        let Some(at) = at else {
            outcome.mismatches.push(format!(
                "oracle conn {number} {} -> {}: kwire found no exchanges",
                connection.client, connection.broker
            ));
            continue;
        };
        let (index, list) = unclaimed.remove(at);
        let here = format!("oracle conn {number} (kwire conn {index})");
        let mut mine_orphans: Vec<&Exchange> = Vec::new();
        let mut ordered = Vec::new();
        for exchange in list {
            if exchange.state == ExchangeState::RequestMissing && exchange.sasl.is_none() {
                mine_orphans.push(exchange);
            } else {
                ordered.push(exchange);
            }
        }
        let mut ordered = ordered.into_iter();
        let mut oracle_orphans = Vec::new();
        let mut items = connection.items.iter().peekable();
        while let Some(item) = items.next() {
            match item {
                Item::Orphan { frame } => oracle_orphans.push(frame),
                Item::Raw { frame, from_client } => {
                    // A client token and the server's answer, or a token
                    // the server sent alone.
                    let (client, server) = if *from_client {
                        let server = match items.peek() {
                            Some(Item::Raw {
                                frame,
                                from_client: false,
                            }) => {
                                items.next();
                                Some(frame)
                            }
                            _ => None,
                        };
                        (Some(frame), server)
                    } else {
                        (None, Some(frame))
                    };
                    let Some(exchange) = ordered.next() else {
                        outcome
                            .mismatches
                            .push(format!("{here}: missing raw SASL token"));
                        continue;
                    };
                    let raw = exchange
                        .sasl
                        .as_ref()
                        .is_some_and(|sasl| sasl.framing == SaslFraming::Raw);
                    let same =
                        |frame: Option<&String>, message: Option<&kwire::exchange::Message>| match (
                            frame, message,
                        ) {
                            (Some(frame), Some(message)) => same_frame(&message.frame, frame),
                            (None, None) => true,
                            _ => false,
                        };
                    if raw
                        && same(client, exchange.request.as_deref())
                        && same(server, exchange.response.as_deref())
                    {
                        outcome.frames +=
                            usize::from(client.is_some()) + usize::from(server.is_some());
                    } else {
                        outcome.mismatches.push(format!(
                            "{here}: raw SASL token differs: exchange {}",
                            exchange.id
                        ));
                    }
                }
                Item::Request {
                    key,
                    version,
                    frame,
                    response,
                } => {
                    let Some(exchange) = ordered.next() else {
                        outcome
                            .mismatches
                            .push(format!("{here}: missing request {key} v{version}"));
                        continue;
                    };
                    let request_ok = exchange
                        .request
                        .as_ref()
                        .is_some_and(|message| same_frame(&message.frame, frame));
                    let response_ok = match (response, &exchange.response) {
                        (Some(frame), Some(message)) => same_frame(&message.frame, frame),
                        (None, None) => true,
                        _ => false,
                    };
                    let api_ok = exchange.api_key == *key && exchange.api_version == *version;
                    if request_ok && response_ok && api_ok {
                        outcome.frames += 1 + usize::from(response.is_some());
                    } else {
                        outcome.mismatches.push(format!(
                            "{here}: request {key} v{version} differs (kwire exchange {} {} v{}, \
                             request {request_ok}, response {response_ok}, state {:?})",
                            exchange.id, exchange.api_key, exchange.api_version, exchange.state
                        ));
                    }
                }
            }
        }
        for extra in ordered {
            outcome.mismatches.push(format!(
                "{here}: kwire has an extra exchange {} ({} v{}, {:?})",
                extra.id, extra.api_key, extra.api_version, extra.state
            ));
        }
        let mut matched = 0;
        for frame in &oracle_orphans {
            let found = mine_orphans.iter().position(|exchange| {
                exchange
                    .response
                    .as_ref()
                    .is_some_and(|message| same_frame(&message.frame, frame))
            });
            match found {
                Some(position) => {
                    mine_orphans.remove(position);
                    matched += 1;
                }
                None => outcome
                    .mismatches
                    .push(format!("{here}: orphan response not found")),
            }
        }
        outcome.frames += matched;
        for extra in mine_orphans {
            outcome.mismatches.push(format!(
                "{here}: kwire has an extra orphan response {}",
                extra.id
            ));
        }
    }
    for (index, list) in unclaimed {
        outcome.mismatches.push(format!(
            "kwire conn {index} ({} exchanges) is not in the oracle",
            list.len()
        ));
    }
    outcome
}

pub fn oracle_pairs() -> Vec<(PathBuf, PathBuf)> {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let mut pairs = Vec::new();
    let mut add = |captures: &Path, frames: &Path| {
        let Some(found) = files_with_extensions(captures, &["pcap", "pcapng"]) else {
            return;
        };
        for capture in found {
            // Not `with_extension`: names like `python-legacy-0.10-mock`
            // hold dots.
            let stem = capture.file_stem().expect("stem").to_string_lossy();
            let frames = frames.join(format!("{stem}.frames"));
            if frames.exists() {
                pairs.push((capture, frames));
            }
        }
    };
    add(&corpus.join("captures"), &corpus.join("frames"));
    if let Some(dirs) = std::env::var_os("KWIRE_ORACLE_DIRS") {
        for dir in std::env::split_paths(&dirs) {
            add(&dir, &dir);
        }
    }
    pairs
}

pub fn read_all(path: &Path, options: AnalyzerOptions) -> (Vec<Exchange>, CaptureReport) {
    let mut exchanges = Vec::new();
    let report = read_capture(path, options, |exchange| exchanges.push(exchange))
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    (exchanges, report)
}

/// Properties every analysis must have, whatever the capture.
pub fn check_invariants(name: &str, exchanges: &[Exchange], report: &CaptureReport) {
    let mut ids: Vec<u64> = exchanges.iter().map(|exchange| exchange.id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(
        ids.len(),
        exchanges.len(),
        "{name}: exchange ids are unique"
    );
    for exchange in exchanges {
        let at = format!("{name}: exchange {}", exchange.id);
        assert!(
            exchange.request.is_some() || exchange.response.is_some(),
            "{at} has neither side"
        );
        assert!(!exchange.packets.is_empty(), "{at} has no packets");
        assert!(
            exchange
                .packets
                .iter()
                .all(|&packet| packet < report.packets),
            "{at}: packet out of range"
        );
        if let Some(latency) = exchange.latency_ns() {
            assert!(latency >= 0, "{at}: negative latency");
        }
        match exchange.state {
            ExchangeState::Complete => {
                assert!(
                    exchange.request.is_some() && exchange.response.is_some(),
                    "{at}"
                )
            }
            ExchangeState::RequestMissing => assert!(exchange.request.is_none(), "{at}"),
            ExchangeState::ResponseMissing | ExchangeState::NoResponseExpected => {
                assert!(exchange.response.is_none(), "{at}")
            }
        }
        if exchange.inferred {
            assert_eq!(exchange.state, ExchangeState::RequestMissing, "{at}");
        }
    }
    let counted: u64 = report.connections.iter().map(|c| c.exchanges).sum();
    assert_eq!(
        counted,
        exchanges.len() as u64,
        "{name}: exchanges per connection add up"
    );
}

/// The TCP segments of a capture, in file order.
pub fn segments_of(path: &Path) -> Vec<TcpSegment> {
    let mut reader = CaptureReader::open(path).expect("capture opens");
    let link = reader.link_type();
    let mut segments = Vec::new();
    while let Some(Ok(packet)) = reader.next_packet() {
        if let Ok(segment) = parse_tcp(link, &packet) {
            segments.push(segment);
        }
    }
    segments
}

/// A tiny deterministic generator: mangled variants are the same on every
/// run.
pub struct Lcg(pub u64);

impl Lcg {
    pub fn below(&mut self, bound: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) % bound.max(1) as u64) as usize
    }
}

/// Cuts every payload at random points into several segments.
pub fn resplit(segments: &[TcpSegment], rng: &mut Lcg) -> Vec<TcpSegment> {
    let mut out = Vec::new();
    for segment in segments {
        if segment.payload.len() < 2 || segment.syn || segment.snapped {
            out.push(segment.clone());
            continue;
        }
        let mut start = 0;
        while start < segment.payload.len() {
            let end = (start + 1 + rng.below(segment.payload.len())).min(segment.payload.len());
            let last = end == segment.payload.len();
            let payload = segment.payload.slice(start..end);
            out.push(TcpSegment {
                seq: segment.seq.wrapping_add(start as u32),
                fin: segment.fin && last,
                wire_len: payload.len() as u32,
                payload,
                ..segment.clone()
            });
            start = end;
        }
    }
    out
}

/// Swaps neighbouring data segments of the same direction.
pub fn reorder(segments: &[TcpSegment], rng: &mut Lcg) -> Vec<TcpSegment> {
    let mut out = segments.to_vec();
    let mut at = 0;
    while at + 1 < out.len() {
        let (a, b) = (&out[at], &out[at + 1]);
        let same_way = a.src == b.src && a.dst == b.dst;
        let data = !a.payload.is_empty() && !b.payload.is_empty() && !a.syn && !b.syn;
        if same_way && data && !a.fin && rng.below(2) == 0 {
            out.swap(at, at + 1);
            at += 2;
        } else {
            at += 1;
        }
    }
    out
}

/// Sends some data segments again, a little later.
pub fn duplicate(segments: &[TcpSegment], rng: &mut Lcg) -> Vec<TcpSegment> {
    let mut out = Vec::new();
    let mut later: Vec<(usize, TcpSegment)> = Vec::new();
    for (index, segment) in segments.iter().enumerate() {
        out.push(segment.clone());
        if !segment.payload.is_empty() && rng.below(3) == 0 {
            later.push((index + 2, segment.clone()));
        }
        while later.first().is_some_and(|(due, _)| *due <= index) {
            out.push(later.remove(0).1);
        }
    }
    out.extend(later.into_iter().map(|(_, segment)| segment));
    out
}

/// The lossless variants of `segments` for one seed: re-split, reordered,
/// duplicated, and all three at once, each with its name.
pub fn lossless_variants(
    segments: &[TcpSegment],
    seed: u64,
) -> [(&'static str, Vec<TcpSegment>); 4] {
    let mut rng = Lcg(seed);
    [
        ("resplit", resplit(segments, &mut rng)),
        ("reorder", reorder(segments, &mut rng)),
        ("duplicate", duplicate(segments, &mut rng)),
        (
            "all",
            duplicate(&reorder(&resplit(segments, &mut rng), &mut rng), &mut rng),
        ),
    ]
}

/// How many frames the oracle holds: each request and response, each raw
/// SASL token and each orphan response.
pub fn oracle_frame_count(oracle: &[OracleConnection]) -> usize {
    oracle
        .iter()
        .flat_map(|connection| &connection.items)
        .map(|item| match item {
            Item::Request { response, .. } => 1 + usize::from(response.is_some()),
            Item::Raw { .. } | Item::Orphan { .. } => 1,
        })
        .sum()
}

/// How many exchanges kwire must show for the oracle: one per request, one
/// per orphan response, and one per raw SASL client token with the
/// server's answer (or per server token sent alone), as `compare` pairs
/// them.
pub fn oracle_exchange_count(oracle: &[OracleConnection]) -> usize {
    let mut count = 0;
    for connection in oracle {
        let mut items = connection.items.iter().peekable();
        while let Some(item) = items.next() {
            if let Item::Raw {
                from_client: true, ..
            } = item
            {
                if let Some(Item::Raw {
                    from_client: false, ..
                }) = items.peek()
                {
                    items.next();
                }
            }
            count += 1;
        }
    }
    count
}

/// The requests of the oracle (its `req` lines), per connection.
pub fn oracle_requests(oracle: &[OracleConnection]) -> usize {
    oracle
        .iter()
        .flat_map(|connection| &connection.items)
        .filter(|item| matches!(item, Item::Request { .. }))
        .count()
}

pub fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus")
}

/// The public captures in `../shared/captures` (reference material on
/// development machines and in CI, not shipped), sorted; None when the
/// directory is absent.
pub fn public_captures() -> Option<Vec<PathBuf>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/captures");
    let entries = std::fs::read_dir(dir).ok()?;
    let mut paths: Vec<PathBuf> = entries
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| {
            path.extension()
                .is_some_and(|ext| ext == "pcap" || ext == "pcapng")
        })
        .collect();
    paths.sort();
    Some(paths)
}

/// The file name of a path, for messages.
pub fn name_of(path: &Path) -> String {
    path.file_name()
        .expect("a file name")
        .to_string_lossy()
        .into_owned()
}

/// `X.frames` next to `X.pcap`: not `with_extension`, since names like
/// `python-legacy-0.10-mock` hold dots.
pub fn frames_for(capture: &Path) -> PathBuf {
    let stem = capture.file_stem().expect("stem").to_string_lossy();
    corpus_dir().join("frames").join(format!("{stem}.frames"))
}

// ---- findings ------------------------------------------------------------------

/// Which side of an exchange a frame is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Side {
    Request,
    Response,
}

/// What kwire reports about one frame a real peer got wrong, from
/// `corpus/findings.txt`, located by the exchange it belongs to.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Finding {
    /// The client's `addr:port`: correlation ids repeat across connections.
    pub client: String,
    pub api_key: i16,
    pub api_version: i16,
    pub correlation_id: i32,
    pub side: Side,
    /// `error` (the frame did not decode) or `violation` (it decoded).
    pub error: bool,
    /// What kwire says, as in the findings file.
    pub message: String,
}

/// The findings of one capture: the lines of `corpus/findings.txt` that
/// name its frames file, each tied to its exchange through the frames
/// file's line (its `# conn` comment, API, version and the correlation id
/// in the frame's header).
pub fn findings_of(capture: &Path) -> Vec<Finding> {
    let frames_path = frames_for(capture);
    let frames_name = name_of(&frames_path);
    let frames = std::fs::read_to_string(&frames_path)
        .unwrap_or_else(|error| panic!("{}: {error}", frames_path.display()));
    let lines: Vec<&str> = frames.lines().collect();
    let findings =
        std::fs::read_to_string(corpus_dir().join("findings.txt")).expect("corpus/findings.txt");
    let mut out = Vec::new();
    for line in findings.lines().filter(|line| !line.starts_with('#')) {
        let Some((place, what)) = line.split_once(' ') else {
            continue;
        };
        let Some((file, number)) = place.split_once(':') else {
            panic!("findings.txt: bad line {line:?}");
        };
        if file != frames_name {
            continue;
        }
        let number: usize = number.parse().expect("a line number");
        let (error, message) = if let Some(message) = what.strip_prefix("error: ") {
            (true, message)
        } else if let Some(message) = what.strip_prefix("violation: ") {
            (false, message)
        } else {
            panic!("findings.txt: bad line {line:?}");
        };
        let frame_line = lines[number - 1];
        let words: Vec<&str> = frame_line.split_whitespace().collect();
        let [kind, key, version, _, frame] = words[..] else {
            panic!("{frames_name}:{number}: not a frame line");
        };
        let side = match kind {
            "req" => Side::Request,
            "resp" => Side::Response,
            other => panic!("{frames_name}:{number}: a finding on a {other} line"),
        };
        // The correlation id follows the size, and in requests the API key
        // and version too.
        let at = if side == Side::Request { 16 } else { 8 };
        let correlation_id = u32::from_str_radix(&frame[at..at + 8], 16).expect("hex") as i32;
        let client = lines[..number]
            .iter()
            .rev()
            .find_map(|line| {
                let rest = line.strip_prefix("# conn ")?;
                let words: Vec<&str> = rest.split_whitespace().collect();
                match words[..] {
                    [_, "client", client, ..] => Some(client.to_owned()),
                    _ => None,
                }
            })
            .expect("a # conn line before the frame");
        out.push(Finding {
            client,
            api_key: key.parse().expect("key"),
            api_version: version.parse().expect("version"),
            correlation_id,
            side,
            error,
            message: message.to_owned(),
        });
    }
    out.sort();
    out
}

// ---- captures from segments ---------------------------------------------------

const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const SERVER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];

fn to_v6(ip: std::net::IpAddr) -> [u8; 16] {
    match ip {
        std::net::IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        std::net::IpAddr::V6(v6) => v6.octets(),
    }
}

/// One segment as an Ethernet/IP/TCP packet, with the segment's capture
/// time: a segment keeps the time of the packet it came from, whatever
/// became of it, so that a lossless mangling changes no timestamp kwire
/// shows.
pub fn segment_packet(segment: &TcpSegment, index: u64) -> RawPacket {
    let ethernet = etherparse::PacketBuilder::ethernet2(CLIENT_MAC, SERVER_MAC);
    let ip = match (segment.src.ip(), segment.dst.ip()) {
        (std::net::IpAddr::V4(s), std::net::IpAddr::V4(d)) => {
            ethernet.ipv4(s.octets(), d.octets(), 64)
        }
        (s, d) => ethernet.ipv6(to_v6(s), to_v6(d), 64),
    };
    let mut tcp = ip.tcp(segment.src.port(), segment.dst.port(), segment.seq, 65_535);
    if segment.syn {
        tcp = tcp.syn();
    }
    if segment.fin {
        tcp = tcp.fin();
    }
    if segment.rst {
        tcp = tcp.rst();
    }
    if let Some(ack) = segment.ack {
        tcp = tcp.ack(ack);
    }
    let mut data = Vec::with_capacity(tcp.size(segment.payload.len()));
    tcp.write(&mut data, &segment.payload)
        .expect("a packet builds");
    let length = data.len() as u32;
    RawPacket {
        index,
        ts_ns: segment.ts_ns,
        caplen: length,
        origlen: length,
        data: data.into(),
    }
}

/// Writes segments, in this order, as an Ethernet pcap file.
pub fn write_segments(path: &Path, segments: &[TcpSegment]) {
    let mut writer = PcapWriter::create(path, LinkType::Ethernet, 0).expect("pcap file");
    for (index, segment) in segments.iter().enumerate() {
        writer
            .write(&segment_packet(segment, index as u64))
            .expect("write packet");
    }
    writer.finish().expect("finish pcap");
}

// ---- the binary -------------------------------------------------------------------

/// Runs `kwire` with these arguments, stdin closed.
pub fn kwire(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kwire"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run kwire")
}

/// The standard output of a `kwire` run that must succeed.
pub fn stdout_of(args: &[&str]) -> String {
    let output = kwire(args);
    assert!(
        output.status.success(),
        "kwire {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8 output")
}

/// NDJSON, one object a line.
pub fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
        .collect()
}
