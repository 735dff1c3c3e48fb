//! The Kafka-on-TCP layer against real captures.
//!
//! Every corpus capture (`corpus/captures/X.pcap`) is read with
//! `session::read_capture`, and the frames it yields per connection, with
//! their pairing, must be exactly those that `corpus/extract_frames.py` cut
//! into `corpus/frames/X.frames` (an independent implementation in Python).
//! Directories named in `KWIRE_ORACLE_DIRS` (colon-separated) add more
//! `X.pcap` + `X.frames` pairs. The public captures in `../shared/captures`
//! are read too, when present, for invariants only.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use kwire::capture::{parse_tcp, CaptureReader, TcpSegment};
use kwire::exchange::{Exchange, ExchangeState};
use kwire::frame::{DecodedFrame, Direction};
use kwire::sasl::SaslFraming;
use kwire::session::{
    read_capture, Analyzer, AnalyzerOptions, CaptureReport, ConnectionKind, LossCounters,
};
use kwire::value::hex;

/// One frame line of a `.frames` file, with the pairing it encodes.
#[derive(Debug)]
enum Item {
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
struct OracleConnection {
    client: String,
    broker: String,
    items: Vec<Item>,
}

/// Parses a `.frames` file with its comments: `# conn N client A -> server
/// B` names the connection, and a `resp` line right after its `req` is that
/// request's response.
fn parse_oracle(text: &str) -> Vec<OracleConnection> {
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
fn same_frame(frame: &DecodedFrame, oracle: &str) -> bool {
    let body = hex(&frame.body_bytes);
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

struct Outcome {
    frames: usize,
    mismatches: Vec<String>,
}

/// Compares what kwire found on each connection with the oracle.
fn compare(exchanges: &[Exchange], oracle: &[OracleConnection]) -> Outcome {
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
                        |frame: Option<&String>, message: &Option<kwire::exchange::Message>| match (
                            frame, message,
                        ) {
                            (Some(frame), Some(message)) => same_frame(&message.frame, frame),
                            (None, None) => true,
                            _ => false,
                        };
                    if raw && same(client, &exchange.request) && same(server, &exchange.response) {
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

fn oracle_pairs() -> Vec<(PathBuf, PathBuf)> {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let mut pairs = Vec::new();
    let mut add = |captures: &Path, frames: &Path| {
        let Ok(entries) = std::fs::read_dir(captures) else {
            return;
        };
        let mut found: Vec<PathBuf> = entries
            .map(|entry| entry.expect("directory entry").path())
            .filter(|path| {
                path.extension()
                    .is_some_and(|ext| ext == "pcap" || ext == "pcapng")
            })
            .collect();
        found.sort();
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

fn read_all(path: &Path, options: AnalyzerOptions) -> (Vec<Exchange>, CaptureReport) {
    let mut exchanges = Vec::new();
    let report = read_capture(path, options, |exchange| exchanges.push(exchange))
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    (exchanges, report)
}

/// Properties every analysis must have, whatever the capture.
fn check_invariants(name: &str, exchanges: &[Exchange], report: &CaptureReport) {
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

#[test]
fn corpus_captures_yield_the_oracle_frames() {
    let pairs = oracle_pairs();
    assert!(!pairs.is_empty(), "no corpus captures with .frames oracles");
    let mut failures = Vec::new();
    let mut total = 0;
    for (capture, frames) in &pairs {
        let name = capture
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let options = AnalyzerOptions {
            show_secrets: true,
            ..AnalyzerOptions::default()
        };
        let (exchanges, report) = read_all(capture, options);
        check_invariants(&name, &exchanges, &report);
        let oracle = parse_oracle(&std::fs::read_to_string(frames).expect("frames file"));
        let outcome = compare(&exchanges, &oracle);
        let oracle_frames: usize = oracle
            .iter()
            .flat_map(|connection| &connection.items)
            .map(|item| match item {
                Item::Request { response, .. } => 1 + usize::from(response.is_some()),
                Item::Raw { .. } | Item::Orphan { .. } => 1,
            })
            .sum();
        println!(
            "{name}: {}/{oracle_frames} frames matched, {} exchanges, losses {:?}",
            outcome.frames,
            exchanges.len(),
            report.losses
        );
        total += outcome.frames;
        for mismatch in outcome.mismatches {
            failures.push(format!("{name}: {mismatch}"));
        }
        if outcome.frames != oracle_frames {
            failures.push(format!(
                "{name}: {} of {oracle_frames} frames matched",
                outcome.frames
            ));
        }
        let losses = report.losses;
        assert_eq!(
            (losses.gap_bytes, losses.frames_lost, losses.resync_bytes),
            (0, 0, 0),
            "{name}: a clean capture has no losses"
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    println!("{total} frames matched in {} captures", pairs.len());
}

#[test]
fn public_captures_keep_the_invariants() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/captures");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        println!(
            "skipped: {} is absent (public captures are not shipped)",
            dir.display()
        );
        return;
    };
    let mut paths: Vec<PathBuf> = entries
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| {
            path.extension()
                .is_some_and(|ext| ext == "pcap" || ext == "pcapng")
        })
        .collect();
    paths.sort();
    for path in paths {
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let (exchanges, report) = read_all(&path, AnalyzerOptions::default());
        check_invariants(&name, &exchanges, &report);
        let kafka = report
            .connections
            .iter()
            .filter(|connection| connection.kind == ConnectionKind::Kafka)
            .count();
        let complete = exchanges
            .iter()
            .filter(|exchange| exchange.state == ExchangeState::Complete)
            .count();
        let inferred = exchanges
            .iter()
            .filter(|exchange| exchange.inferred)
            .count();
        let errors = exchanges
            .iter()
            .filter(|exchange| exchange.decode_error().is_some())
            .count();
        println!(
            "{name}: {} packets, {kafka} Kafka connections, {} exchanges ({complete} complete, \
             {inferred} inferred, {errors} with decode errors), losses {:?}",
            report.packets,
            exchanges.len(),
            report.losses
        );
        assert!(kafka > 0, "{name}: no Kafka connection recognised");
    }
}

/// The TCP segments of a capture, in file order.
fn segments_of(path: &Path) -> Vec<TcpSegment> {
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

fn analyze(segments: Vec<TcpSegment>) -> (Vec<Exchange>, LossCounters) {
    let mut analyzer = Analyzer::new(AnalyzerOptions::default());
    let mut exchanges = Vec::new();
    for segment in segments {
        analyzer.push_segment(segment, &mut exchanges);
    }
    analyzer.finish(&mut exchanges);
    (exchanges, analyzer.losses())
}

/// What must not depend on how the bytes were cut into packets: per
/// exchange, in id order, its connection, API, correlation id, state and
/// frame sizes.
type Outline = Vec<(
    u32,
    i16,
    i16,
    i32,
    ExchangeState,
    Option<usize>,
    Option<usize>,
)>;

fn outline(exchanges: &[Exchange]) -> Outline {
    let mut sorted: Vec<&Exchange> = exchanges.iter().collect();
    sorted.sort_by_key(|exchange| exchange.id);
    sorted
        .iter()
        .map(|e| {
            (
                e.connection,
                e.api_key,
                e.api_version,
                e.correlation_id,
                e.state,
                e.request_size(),
                e.response_size(),
            )
        })
        .collect()
}

/// A tiny deterministic generator: mangled variants are the same on every
/// run.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, bound: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) % bound.max(1) as u64) as usize
    }
}

/// Cuts every payload at random points into several segments.
fn resplit(segments: &[TcpSegment], rng: &mut Lcg) -> Vec<TcpSegment> {
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
fn reorder(segments: &[TcpSegment], rng: &mut Lcg) -> Vec<TcpSegment> {
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
fn duplicate(segments: &[TcpSegment], rng: &mut Lcg) -> Vec<TcpSegment> {
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

#[test]
fn lossless_mangling_changes_no_exchange() {
    let pairs = oracle_pairs();
    for (capture, _) in &pairs {
        let name = capture
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let segments = segments_of(capture);
        let (clean, clean_losses) = analyze(segments.clone());
        let reference = outline(&clean);
        for seed in 1..4 {
            let mut rng = Lcg(seed);
            let variants = [
                ("resplit", resplit(&segments, &mut rng)),
                ("reorder", reorder(&segments, &mut rng)),
                ("duplicate", duplicate(&segments, &mut rng)),
                (
                    "all",
                    duplicate(&reorder(&resplit(&segments, &mut rng), &mut rng), &mut rng),
                ),
            ];
            for (how, variant) in variants {
                let (exchanges, losses) = analyze(variant);
                assert_eq!(losses, clean_losses, "{name} {how} seed {seed}");
                let got = outline(&exchanges);
                if got != reference {
                    let first = got.iter().zip(&reference).position(|(a, b)| a != b);
                    panic!(
                        "{name} {how} seed {seed}: {} exchanges instead of {}, first difference \
                         at {first:?}: {:?} vs {:?}",
                        got.len(),
                        reference.len(),
                        first.map(|at| got[at]),
                        first.map(|at| reference[at]),
                    );
                }
            }
        }
    }
}

#[test]
fn a_dropped_segment_is_reported_and_the_rest_still_pairs() {
    for (capture, _) in &oracle_pairs() {
        let name = capture
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let segments = segments_of(capture);
        let (clean, _) = analyze(segments.clone());
        let clean_complete = clean
            .iter()
            .filter(|e| e.state == ExchangeState::Complete)
            .count();
        // A segment with no later data behind it in its direction leaves
        // no trace when dropped (nothing acknowledges or follows it).
        let followed = |at: usize| {
            let victim = &segments[at];
            segments[at + 1..].iter().any(|later| {
                later.src == victim.src && later.dst == victim.dst && !later.payload.is_empty()
            })
        };
        let data: Vec<usize> = (0..segments.len())
            .filter(|&at| segments[at].payload.len() > 8 && !segments[at].fin && followed(at))
            .collect();
        let mut rng = Lcg(11);
        for _ in 0..4 {
            let victim = data[data.len() / 4 + rng.below(data.len() / 2)];
            let mut variant = segments.clone();
            let dropped = variant.remove(victim).payload.len() as u64;
            let (exchanges, losses) = analyze(variant);
            let at = format!("{name}: without packet {victim}");
            assert_eq!(losses.gap_bytes, dropped, "{at}");
            assert!(losses.frames_lost >= 1, "{at}: {losses:?}");
            let complete = exchanges
                .iter()
                .filter(|e| e.state == ExchangeState::Complete)
                .count();
            // One segment holds parts of a few frames at most: the exchanges
            // they belong to may be lost, no more.
            assert!(
                complete + 4 >= clean_complete,
                "{at}: {complete} of {clean_complete}"
            );
        }
    }
}

#[test]
fn a_capture_joined_late_loses_only_what_it_missed() {
    let mut total_expected = 0;
    let mut total_missing = 0;
    for (capture, _) in &oracle_pairs() {
        let name = capture
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let segments = segments_of(capture);
        let (clean, _) = analyze(segments.clone());
        // Skip the start of the capture, SYNs included, so that the
        // connections open then are joined in the middle.
        for skip in [segments.len() / 10, segments.len() / 3] {
            let first_packet = segments[skip].packet;
            let (exchanges, losses) = analyze(segments[skip..].to_vec());
            let at = format!("{name}: from packet {first_packet}");
            assert_eq!(losses.gap_bytes, 0, "{at}");
            let key = |e: &Exchange| {
                (
                    e.client,
                    e.api_key,
                    e.api_version,
                    e.correlation_id,
                    e.request_size(),
                    e.response_size(),
                )
            };
            let got: Vec<_> = exchanges
                .iter()
                .filter(|e| e.state == ExchangeState::Complete)
                .map(key)
                .collect();
            // Every exchange wholly after the start must be found, whole;
            // except raw SASL tokens, which carry no header to be found by
            // when the handshake before them was missed.
            let expected: Vec<_> = clean
                .iter()
                .filter(|e| e.state == ExchangeState::Complete && e.sasl.is_none())
                .filter(|e| e.packets.iter().all(|&packet| packet >= first_packet))
                .map(key)
                .collect();
            let missing: Vec<_> = expected.iter().filter(|e| !got.contains(e)).collect();
            assert!(
                missing.is_empty(),
                "{at}: {} of {} missing: {missing:?}",
                missing.len(),
                expected.len()
            );
            let extra = got.iter().filter(|e| {
                !clean
                    .iter()
                    .any(|c| c.state == ExchangeState::Complete && key(c) == **e)
            });
            assert_eq!(
                extra.count(),
                0,
                "{at}: an exchange the full capture does not have"
            );
            total_expected += expected.len();
            total_missing += missing.len();
        }
    }
    println!("joined late: {total_expected} exchanges expected, {total_missing} missing");
}
