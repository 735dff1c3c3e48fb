//! Mangled variants of every corpus capture, through the real `kwire read`
//! binary (the code path of the command line, not only the library).
//!
//! A capture's TCP segments are rewritten, deterministically (a seeded
//! generator), and written back out as a pcap file (`common::write_segments`;
//! each segment keeps the capture time of the packet it came from).
//! `KWIRE_VARIANTS_DIR=DIR` keeps the variant files there for a look.
//! - Lossless: payloads re-split at random byte boundaries, neighbouring
//!   segments swapped, segments sent again a little later, and all three at
//!   once (3 seeds). The text output must be byte for byte the output for
//!   the original file, and so must the NDJSON of one combined variant.
//! - A segment dropped: a few bytes inside one frame (past its header's
//!   first fields, so the frame's end is known) are cut out of their
//!   segment. The `--stats --json` loss counters must be exactly the clean
//!   ones plus: gap bytes = the bytes dropped, one frame lost, nothing
//!   skipped while resynchronising (and the frame no longer counted as
//!   undecodable if it was). The text must keep every line but that
//!   exchange's, which is flagged `[lost bytes]` (ids may move: the lost
//!   exchange is handed out once the hole is known). Left out: a
//!   connection's first frame, before which kwire has not recognised Kafka
//!   (a hole then leaves the bytes around it to resynchronising), and SASL
//!   connections, where a lost step changes how the later ones read.
//! - Joined late: one connection loses its handshake and the first bytes of
//!   each direction, up to `into` bytes inside request k (client side) and
//!   up to the response to request k (broker side). The counters must be
//!   the clean ones but resync bytes = the rest of request k (and the
//!   undecodable frames cut off not counted); request k's response shows
//!   without its request, inferred or by its header alone; every exchange
//!   after it, and on the other connections, is unchanged.
//! - Truncated: the file ends in the middle of a packet record (the last
//!   one, or the last one carrying Kafka bytes, with what follows dropped).
//!   kwire warns, exits 0, prints exactly what it prints for the file
//!   without that record, counts one truncated packet, and every exchange
//!   wholly before the cut is printed.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

use common::{
    json_lines, kwire, lossless_variants, name_of, oracle_pairs, read_all, segments_of, stdout_of,
    write_segments, Lcg,
};
use kwire::capture::TcpSegment;
use kwire::exchange::ExchangeState;
use kwire::session::{Analyzer, AnalyzerOptions};
use serde_json::{json, Value as Json};

/// Where the variants are written: a temporary directory, or the one
/// `KWIRE_VARIANTS_DIR` names, which keeps them for a look after a failure.
enum VariantsDir {
    Temporary(tempfile::TempDir),
    Kept(std::path::PathBuf),
}

impl VariantsDir {
    fn path(&self) -> &Path {
        match self {
            VariantsDir::Temporary(dir) => dir.path(),
            VariantsDir::Kept(dir) => dir,
        }
    }
}

fn variants_dir() -> VariantsDir {
    match std::env::var_os("KWIRE_VARIANTS_DIR") {
        Some(dir) => {
            std::fs::create_dir_all(&dir).expect("KWIRE_VARIANTS_DIR");
            VariantsDir::Kept(dir.into())
        }
        None => VariantsDir::Temporary(tempfile::tempdir().expect("temp dir")),
    }
}

fn corpus_captures() -> Vec<std::path::PathBuf> {
    let captures: Vec<_> = oracle_pairs()
        .into_iter()
        .map(|(capture, _)| capture)
        .collect();
    assert!(!captures.is_empty(), "no corpus captures");
    captures
}

fn text_of(path: &Path) -> String {
    stdout_of(&["read", path.to_str().expect("utf-8 path")])
}

fn losses_of(path: &Path) -> Json {
    let stats: Json = serde_json::from_str(&stdout_of(&[
        "read",
        "--stats",
        "--json",
        path.to_str().expect("utf-8 path"),
    ]))
    .expect("stats JSON");
    stats["losses"].clone()
}

#[test]
fn lossless_variants_print_the_same_text() {
    let dir = variants_dir();
    let mut runs = 0;
    for capture in corpus_captures() {
        let name = name_of(&capture);
        let reference = text_of(&capture);
        let segments = segments_of(&capture);
        // The segments written back unchanged: the writer loses nothing.
        let file = dir.path().join("same.pcap");
        write_segments(&file, &segments);
        assert_eq!(
            text_of(&file),
            reference,
            "{name}: rewritten without change"
        );
        for seed in 1..4 {
            for (how, variant) in lossless_variants(&segments, seed) {
                let file = dir.path().join(format!("{how}-{seed}.pcap"));
                write_segments(&file, &variant);
                let text = text_of(&file);
                if text != reference {
                    let first = text
                        .lines()
                        .zip(reference.lines())
                        .position(|(a, b)| a != b);
                    panic!(
                        "{name} {how} seed {seed}: the text differs, first at line {first:?}:\n\
                         {:?}\ninstead of\n{:?}",
                        first.and_then(|at| text.lines().nth(at)),
                        first.and_then(|at| reference.lines().nth(at)),
                    );
                }
                runs += 1;
                if how == "all" && seed == 1 {
                    let path = file.to_str().expect("utf-8 path");
                    let original = capture.to_str().expect("utf-8 path");
                    assert_eq!(
                        stdout_of(&["read", "--json", path]),
                        stdout_of(&["read", "--json", original]),
                        "{name} {how} seed {seed}: the NDJSON differs"
                    );
                }
            }
        }
    }
    println!("{runs} lossless variants print the same text");
}

/// One direction of a connection: its segments' payloads laid out by
/// sequence number, and the frames they hold.
struct Stream {
    /// Sequence number of the first byte (the SYN's plus one).
    isn: u32,
    data: Vec<u8>,
    /// (offset, length with the size prefix) of each frame.
    frames: Vec<(usize, usize)>,
}

impl Stream {
    fn offset(&self, seq: u32) -> usize {
        seq.wrapping_sub(self.isn) as usize
    }
}

type Way = (SocketAddr, SocketAddr);

/// The streams of the connections whose handshake is in the capture and
/// whose port pair is used once, by direction.
fn streams_of(segments: &[TcpSegment]) -> BTreeMap<Way, Stream> {
    let mut syns: BTreeMap<Way, Vec<u32>> = BTreeMap::new();
    for segment in segments.iter().filter(|s| s.syn) {
        let list = syns.entry((segment.src, segment.dst)).or_default();
        if !list.contains(&segment.seq) {
            list.push(segment.seq);
        }
    }
    let mut streams = BTreeMap::new();
    for (way, seqs) in syns {
        let [syn] = seqs[..] else {
            continue;
        };
        let isn = syn.wrapping_add(1);
        let mut data = Vec::new();
        for segment in segments.iter().filter(|s| (s.src, s.dst) == way) {
            if segment.payload.is_empty() || segment.syn {
                continue;
            }
            let at = segment.seq.wrapping_sub(isn) as usize;
            let end = at + segment.payload.len();
            if data.len() < end {
                data.resize(end, 0);
            }
            data[at..end].copy_from_slice(&segment.payload);
        }
        let mut frames = Vec::new();
        let mut at = 0;
        while at + 4 <= data.len() {
            let size = u32::from_be_bytes(data[at..at + 4].try_into().expect("4 bytes")) as usize;
            if at + 4 + size > data.len() {
                break;
            }
            frames.push((at, 4 + size));
            at += 4 + size;
        }
        streams.insert(way, Stream { isn, data, frames });
    }
    streams
}

/// Cuts `[from, to)` (stream offsets) out of the segment of `way` that
/// holds them, keeping the bytes around them as two segments.
fn drop_bytes(
    segments: &[TcpSegment],
    way: Way,
    stream: &Stream,
    from: usize,
    to: usize,
) -> Option<Vec<TcpSegment>> {
    let at = segments.iter().position(|s| {
        let start = stream.offset(s.seq);
        (s.src, s.dst) == way
            && !s.syn
            && !s.payload.is_empty()
            && start <= from
            && to <= start + s.payload.len()
    })?;
    let victim = &segments[at];
    let start = stream.offset(victim.seq);
    let piece = |from: usize, to: usize| {
        let payload = victim.payload.slice(from - start..to - start);
        TcpSegment {
            seq: stream.isn.wrapping_add(from as u32),
            wire_len: payload.len() as u32,
            payload,
            fin: victim.fin && to == start + victim.payload.len(),
            ..victim.clone()
        }
    };
    let mut out = segments[..at].to_vec();
    if from > start {
        out.push(piece(start, from));
    }
    if to < start + victim.payload.len() {
        out.push(piece(to, start + victim.payload.len()));
    }
    out.extend_from_slice(&segments[at + 1..]);
    Some(out)
}

/// A corpus capture with what kwire prints for it, to compare variants
/// with.
struct Clean {
    name: String,
    segments: Vec<TcpSegment>,
    streams: BTreeMap<Way, Stream>,
    text: String,
    objects: Vec<Json>,
    losses: Json,
}

impl Clean {
    fn read(capture: &Path) -> Clean {
        let segments = segments_of(capture);
        let path = capture.to_str().expect("utf-8 path");
        Clean {
            name: name_of(capture),
            streams: streams_of(&segments),
            segments,
            text: text_of(capture),
            objects: json_lines(&stdout_of(&["read", "--json", path])),
            losses: losses_of(capture),
        }
    }

    fn stem(&self) -> &str {
        self.name.trim_end_matches(".pcap")
    }

    /// The exchanges of the connection whose client is `client`, in order.
    fn connection(&self, client: SocketAddr, broker: SocketAddr) -> Vec<&Json> {
        self.objects
            .iter()
            .filter(|o| on(o, client, broker))
            .collect()
    }
}

fn on(object: &Json, client: SocketAddr, broker: SocketAddr) -> bool {
    object["client"] == client.to_string() && object["broker"] == broker.to_string()
}

fn has_error(object: &Json, side: &str) -> bool {
    !object["decode_errors"][side].is_null()
}

fn undecodable(losses: &Json) -> u64 {
    losses["undecodable_frames"].as_u64().expect("a count")
}

#[test]
fn a_dropped_segment_costs_exactly_its_bytes_and_one_frame() {
    let dir = variants_dir();
    let mut checked = 0;
    let mut failures = Vec::new();
    for capture in corpus_captures() {
        let clean = Clean::read(&capture);
        // Frames of 40 bytes or more with another frame after them in
        // their direction (so that the hole is known to be one). Not a
        // connection's first frame: until its first request is whole, kwire
        // has not recognised the connection as Kafka, and a hole then
        // leaves the bytes around it to be skipped while resynchronising
        // (`session`, "Undecided").
        //
        // Nor a connection that authenticates with SASL: a step lost there
        // changes how the steps after it read (the mechanism named in a
        // lost SaslHandshake is unknown; a lost raw token breaks the
        // pairing of client and server tokens), which is right but is not
        // one line.
        let sasl: Vec<String> = clean
            .objects
            .iter()
            .filter(|o| o["api_key"] == 17 || o["api_key"] == 36)
            .map(|o| o["client"].as_str().expect("client").to_owned())
            .collect();
        let mut candidates = Vec::new();
        for (way, stream) in &clean.streams {
            if sasl.contains(&way.0.to_string()) || sasl.contains(&way.1.to_string()) {
                continue;
            }
            for pair in stream.frames.windows(2).skip(1) {
                let (at, length) = pair[0];
                if length >= 40 {
                    candidates.push((*way, at, length));
                }
            }
        }
        if candidates.is_empty() {
            println!("{}: only SASL connections, no frame to cut", clean.name);
            continue;
        }
        let mut rng = Lcg(7);
        let mut done = 0;
        let mut tries = 0;
        while done < 3 && tries < 50 {
            tries += 1;
            let (way, at, length) = candidates[rng.below(candidates.len())];
            // Past the size prefix, API key, version and correlation id,
            // and before the frame's end.
            let from = at + 16 + rng.below(length - 32);
            let to = from + 1 + rng.below((at + length - from).min(16) - 1);
            let Some(variant) = drop_bytes(&clean.segments, way, &clean.streams[&way], from, to)
            else {
                continue;
            };
            let here = format!(
                "{}: bytes {from}..{to} of {} -> {} (frame at {at}, {length} bytes)",
                clean.name, way.0, way.1
            );
            let file = dir
                .path()
                .join(format!("dropped-{}-{from}-{to}.pcap", clean.stem()));
            write_segments(&file, &variant);
            if let Err(error) = check_dropped(&clean, &file, way, at, to - from) {
                failures.push(format!("{here}: {error}"));
            }
            done += 1;
            checked += 1;
        }
        assert_eq!(done, 3, "{}: found no segment to cut", clean.name);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(checked >= 30, "only {checked} dropped segments checked");
    println!("{checked} dropped segments reported exactly");
}

/// `dropped` bytes of the frame at `at` in `way` are missing from `file`.
fn check_dropped(
    clean: &Clean,
    file: &Path,
    way: Way,
    at: usize,
    dropped: usize,
) -> Result<(), String> {
    // The frame hit is lost, not undecodable: if it did not decode in the
    // clean capture (a version newer than kwire's tables, a malformed
    // frame), it leaves that count.
    let stream = &clean.streams[&way];
    let request = clean
        .objects
        .iter()
        .any(|o| o["client"] == way.0.to_string());
    let (client, broker, side, correlation_at) = if request {
        (way.0, way.1, "request", at + 8)
    } else {
        (way.1, way.0, "response", at + 4)
    };
    let correlation = i32::from_be_bytes(
        stream.data[correlation_at..correlation_at + 4]
            .try_into()
            .expect("4 bytes"),
    );
    let hit = clean
        .connection(client, broker)
        .into_iter()
        .find(|o| o["correlation_id"] == correlation);
    let was_undecodable = hit.is_some_and(|o| has_error(o, side));
    let mut expected = clean.losses.clone();
    expected["undecodable_frames"] = json!(undecodable(&clean.losses) - u64::from(was_undecodable));
    expected["gap_bytes"] = json!(dropped);
    expected["frames_lost"] = json!(1);
    expected["resync_bytes"] = json!(0);
    let losses = losses_of(file);
    if losses != expected {
        return Err(format!("losses {losses}, expected {expected}"));
    }
    // The same lines but one, flagged: the lost exchange may come out
    // later (once the hole is known to be one), and so take a later id,
    // which moves the ids of the exchanges in between.
    let without_id = |text: &str| -> Vec<String> {
        let mut lines: Vec<String> = text
            .lines()
            .map(|line| {
                let line = line.trim_start();
                line[line.find(' ').expect("an id")..].to_owned()
            })
            .collect();
        lines.sort_unstable();
        lines
    };
    let (lines, clean_lines) = (without_id(&text_of(file)), without_id(&clean.text));
    let new: Vec<&String> = lines.iter().filter(|l| !clean_lines.contains(l)).collect();
    let gone: Vec<&String> = clean_lines.iter().filter(|l| !lines.contains(l)).collect();
    // Time, addresses, API, version and correlation id.
    let head = |line: &str| {
        line.split_whitespace()
            .take(7)
            .collect::<Vec<_>>()
            .join(" ")
    };
    let one_flagged = lines.len() == clean_lines.len()
        && new.len() == 1
        && gone.len() == 1
        && new[0].contains("[lost bytes]")
        && head(new[0]) == head(gone[0]);
    if !one_flagged {
        return Err(format!("lines changed: {gone:#?} became {new:#?}"));
    }
    Ok(())
}

/// What identifies an exchange across two reads of the same traffic: all
/// but its position.
fn identity(object: &Json) -> String {
    format!(
        "{} {} {} v{} #{} {} {}/{} {}",
        object["client"],
        object["broker"],
        object["api_name"],
        object["api_version"],
        object["correlation_id"],
        object["state"],
        object["sizes"]["request"],
        object["sizes"]["response"],
        object["summary"]["line"],
    )
}

#[test]
fn a_capture_joined_late_skips_exactly_the_cut_frame() {
    let dir = variants_dir();
    let mut checked = 0;
    let mut failures = Vec::new();
    for capture in corpus_captures() {
        let clean = Clean::read(&capture);
        // Connections whose client sent at least 3 requests, all answered,
        // with no raw SASL tokens (those carry no header to be found by).
        let mut connections: Vec<Way> = Vec::new();
        for (&way, stream) in &clean.streams {
            let Some(answers) = clean.streams.get(&(way.1, way.0)) else {
                continue;
            };
            let objects = clean.connection(way.0, way.1);
            let plain = objects.len() == stream.frames.len()
                && objects.len() == answers.frames.len()
                && objects
                    .iter()
                    .all(|o| o["state"] == "complete" && o["sasl"].is_null());
            if stream.frames.len() >= 3 && plain {
                connections.push(way);
            }
        }
        if connections.is_empty() {
            println!(
                "{}: no connection with 3 plain exchanges to join late",
                clean.name
            );
            continue;
        }
        let mut rng = Lcg(3);
        for _ in 0..3 {
            let way = connections[rng.below(connections.len())];
            let k = 1 + rng.below(clean.streams[&way].frames.len() - 2);
            let into = [1, 3, 9][rng.below(3)];
            let here = format!(
                "{}: {} -> {} joined {into} bytes into request {k}",
                clean.name, way.0, way.1
            );
            let file = dir.path().join(format!(
                "late-{}-{}-{k}-{into}.pcap",
                clean.stem(),
                way.0.port()
            ));
            if let Err(error) = check_late(&clean, &file, way, k, into) {
                failures.push(format!("{here}: {error}"));
            }
            checked += 1;
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(checked >= 30, "only {checked} late joins checked");
    println!("{checked} late joins skipped exactly the cut frame");
}

/// The connection `way` (client to broker) of `clean` joined `into` bytes
/// into its request `k`, written to `file`.
fn check_late(clean: &Clean, file: &Path, way: Way, k: usize, into: usize) -> Result<(), String> {
    let back = (way.1, way.0);
    let (requests, responses) = (&clean.streams[&way], &clean.streams[&back]);
    let (request_at, request_length) = requests.frames[k];
    let cut = request_at + into;
    // The broker's side starts with the response to request k.
    let correlation = &requests.data[request_at + 8..request_at + 12];
    let &(response_at, _) = responses
        .frames
        .iter()
        .find(|&&(at, _)| &responses.data[at + 4..at + 8] == correlation)
        .expect("request k's response");
    // Everything of the connection before those points goes, the SYNs
    // and bare ACKs too; the segment across a point is cut there.
    let mut variant = Vec::new();
    for segment in &clean.segments {
        let (stream, from) = if (segment.src, segment.dst) == way {
            (requests, cut)
        } else if (segment.src, segment.dst) == back {
            (responses, response_at)
        } else {
            variant.push(segment.clone());
            continue;
        };
        if segment.syn {
            continue;
        }
        let start = stream.offset(segment.seq);
        let end = start + segment.payload.len();
        if end <= from && !(segment.payload.is_empty() && start == from) {
            continue;
        }
        if start < from {
            let payload = segment.payload.slice(from - start..);
            variant.push(TcpSegment {
                seq: stream.isn.wrapping_add(from as u32),
                wire_len: payload.len() as u32,
                payload,
                ..segment.clone()
            });
        } else {
            variant.push(segment.clone());
        }
    }
    write_segments(file, &variant);
    let late = json_lines(&stdout_of(&[
        "read",
        "--json",
        file.to_str().expect("utf-8 path"),
    ]));
    let mine = clean.connection(way.0, way.1);

    // Request k's response is there without its request: decoded if its
    // API could be inferred, else shown by its header and size as an
    // unknown API (counted as undecodable, but no decode error: the frame
    // is not at fault).
    let orphans: Vec<&Json> = late
        .iter()
        .filter(|o| o["state"] == "request_missing")
        .collect();
    let [orphan] = orphans[..] else {
        return Err(format!(
            "one response must lack its request, not {}: {orphans:#?}\nexchanges on the \
             connection: {:#?}",
            orphans.len(),
            late.iter()
                .filter(|o| o["client"] == way.0.to_string() || o["client"] == way.1.to_string())
                .map(identity)
                .collect::<Vec<_>>()
        ));
    };
    let answered = mine[k];
    let same_response = on(orphan, way.0, way.1)
        && orphan["correlation_id"] == answered["correlation_id"]
        && orphan["sizes"]["response"] == answered["sizes"]["response"];
    let decoded_right = if orphan["inferred"] == true {
        orphan["api_key"] == answered["api_key"]
            && has_error(orphan, "response") == has_error(answered, "response")
    } else {
        orphan["api_key"] == -1
            && orphan["api_name"] == "unknown API"
            && !has_error(orphan, "response")
    };
    if !(same_response && decoded_right) {
        return Err(format!("the orphan {orphan} does not answer {answered}"));
    }

    // Skipped while resynchronising: the rest of request k. The frames cut
    // off no longer count as undecodable; the orphan does if it does not
    // decode or is shown by its header only.
    let mut expected_undecodable = undecodable(&clean.losses);
    for object in &mine[..=k] {
        expected_undecodable -= u64::from(has_error(object, "request"));
        expected_undecodable -= u64::from(has_error(object, "response"));
    }
    expected_undecodable += u64::from(has_error(orphan, "response") || orphan["inferred"] == false);
    let mut expected = clean.losses.clone();
    expected["resync_bytes"] = json!(request_length - into);
    expected["undecodable_frames"] = json!(expected_undecodable);
    let losses = losses_of(file);
    if losses != expected {
        return Err(format!("losses {losses}, expected {expected}"));
    }

    // The other connections are untouched; on this one, the exchanges
    // after request k are whole.
    let mut kept: Vec<String> = clean
        .objects
        .iter()
        .filter(|o| !on(o, way.0, way.1))
        .chain(mine[k + 1..].iter().copied())
        .map(identity)
        .collect();
    let mut got: Vec<String> = late
        .iter()
        .filter(|o| o["state"] != "request_missing")
        .map(identity)
        .collect();
    kept.sort();
    got.sort();
    if got != kept {
        let missing: Vec<&String> = kept.iter().filter(|e| !got.contains(e)).collect();
        let extra: Vec<&String> = got.iter().filter(|e| !kept.contains(e)).collect();
        return Err(format!("missing {missing:#?}, extra {extra:#?}"));
    }
    Ok(())
}

/// The offset of every packet record in a classic pcap file, and its
/// captured length.
fn pcap_records(bytes: &[u8]) -> Vec<(usize, usize)> {
    let little = match bytes[..4] {
        [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1] => true,
        [0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d] => false,
        _ => panic!("not a classic pcap file"),
    };
    let mut records = Vec::new();
    let mut at = 24;
    while at + 16 <= bytes.len() {
        let field: [u8; 4] = bytes[at + 8..at + 12].try_into().expect("4 bytes");
        let caplen = if little {
            u32::from_le_bytes(field)
        } else {
            u32::from_be_bytes(field)
        } as usize;
        records.push((at, caplen));
        at += 16 + caplen;
    }
    assert_eq!(at, bytes.len(), "records end with the file");
    records
}

#[test]
fn a_truncated_capture_warns_and_prints_every_earlier_exchange() {
    let dir = variants_dir();
    for capture in corpus_captures() {
        let name = name_of(&capture);
        let bytes = std::fs::read(&capture).expect("capture");
        let records = pcap_records(&bytes);
        let segments = segments_of(&capture);
        let (clean, _) = read_all(&capture, AnalyzerOptions::default());
        let last_data = segments
            .iter()
            .rev()
            .find(|s| !s.payload.is_empty())
            .expect("a packet with data")
            .packet as usize;
        for victim in [records.len() - 1, last_data] {
            let here = format!("{name}: cut in packet {victim}");
            let (at, caplen) = records[victim];
            let cut = dir.path().join("cut.pcap");
            std::fs::write(&cut, &bytes[..at + 16 + caplen / 2]).expect("write");
            let before = dir.path().join("before.pcap");
            std::fs::write(&before, &bytes[..at]).expect("write");
            let cut = cut.to_str().expect("utf-8 path");

            let output = kwire(&["read", cut]);
            assert_eq!(output.status.code(), Some(0), "{here}");
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(
                stderr.contains("kwire: warning: ") && stderr.contains("ends early"),
                "{here}: {stderr}"
            );
            let text = String::from_utf8(output.stdout).expect("utf-8");
            assert_eq!(text, text_of(&before), "{here}: what comes before is read");

            let mut expected = losses_of(&before);
            expected["packets_truncated"] = json!(1);
            assert_eq!(losses_of(Path::new(cut)), expected, "{here}: loss counters");

            // Every exchange wholly before the cut is printed.
            let printed = json_lines(&stdout_of(&["read", "--json", cut]));
            let key = |client: &str, api_key: i64, correlation: i64, sizes: [Option<u64>; 2]| {
                format!("{client} {api_key} #{correlation} {sizes:?}")
            };
            let printed: Vec<String> = printed
                .iter()
                .filter(|o| o["state"] == "complete")
                .map(|o| {
                    key(
                        o["client"].as_str().expect("client"),
                        o["api_key"].as_i64().expect("key"),
                        o["correlation_id"].as_i64().expect("id"),
                        [
                            o["sizes"]["request"].as_u64(),
                            o["sizes"]["response"].as_u64(),
                        ],
                    )
                })
                .collect();
            let earlier = clean.iter().filter(|e| {
                e.state == ExchangeState::Complete
                    && e.packets.iter().all(|&packet| packet < victim as u64)
            });
            for exchange in earlier {
                let key = key(
                    &exchange.client.to_string(),
                    i64::from(exchange.api_key),
                    i64::from(exchange.correlation_id),
                    [
                        exchange.request_size().map(|n| n as u64),
                        exchange.response_size().map(|n| n as u64),
                    ],
                );
                assert!(printed.contains(&key), "{here}: {key:?} is not printed");
            }
        }
    }
}

/// Captures joined where both sides hold something that reads as a
/// request, the broker's being a response that leaves bytes over (an old
/// Produce response with correlation id 2 reads as a Produce v2 request
/// header): the side seen first used to win, and the whole connection was
/// read with client and broker swapped. Every exchange's broker must be
/// one of the brokers of the full capture.
#[test]
fn joining_where_both_sides_read_as_requests_keeps_the_roles() {
    let dir = variants_dir();
    // (capture, first packet kept, counted from 1 as editcap does)
    let cases = [
        ("python-mock.pcap", 59),
        ("python-mock.pcap", 86),
        ("python-mock.pcap", 116),
        ("python-tansu.pcap", 254),
        ("python-legacy-0.9-mock.pcap", 179),
        ("kcat-mock.pcap", 59),
        ("kcat-legacy-mock.pcap", 71),
    ];
    for (name, first) in cases {
        let capture = common::corpus_dir().join("captures").join(name);
        let (clean, _) = read_all(&capture, AnalyzerOptions::default());
        let brokers: Vec<SocketAddr> = clean.iter().map(|exchange| exchange.broker).collect();
        let bytes = std::fs::read(&capture).expect("capture");
        let (at, _) = pcap_records(&bytes)[first - 1];
        let tail = dir.path().join(format!("from-{first}-{name}"));
        std::fs::write(&tail, [&bytes[..24], &bytes[at..]].concat()).expect("write");
        let (late, _) = read_all(&tail, AnalyzerOptions::default());
        assert!(!late.is_empty(), "{name} from packet {first}: no exchanges");
        for exchange in &late {
            assert!(
                brokers.contains(&exchange.broker),
                "{name} from packet {first}: {} -> {} ({}) has the roles swapped",
                exchange.client,
                exchange.broker,
                exchange.api_name()
            );
        }
    }
}

/// Every corpus capture joined late, from every packet on (the first
/// packet kept is 2, 3, 4, ... counted from 1, as editcap does): an
/// analysis without SYNs, where each connection's roles are told from
/// content alone. Every exchange's broker must be one of the brokers of the
/// full capture, except for the starts in `AMBIGUOUS`.
#[test]
fn joining_at_any_packet_keeps_the_roles() {
    /// Starts where the bytes left cannot tell client from broker:
    /// (capture, first packet kept, counted from 1).
    const AMBIGUOUS: &[(&str, usize)] = &[
        // The connection's last frame, an OffsetCommit v0-2 response, is all
        // that is left of it; it decodes whole, no byte over, as a Produce
        // v1 request too, and the broker's address shows in no other
        // connection before this one closes.
        ("python-legacy-0.10-tansu.pcap", 133),
        ("python-legacy-0.10-tansu.pcap", 134),
    ];
    let dir = common::corpus_dir().join("captures");
    let captures = common::files_with_extensions(&dir, &["pcap"]).expect("corpus captures");
    let mut starts = 0;
    let mut swapped = Vec::new();
    for capture in captures {
        let name = name_of(&capture);
        let (clean, report) = read_all(&capture, AnalyzerOptions::default());
        let brokers: Vec<SocketAddr> = clean.iter().map(|exchange| exchange.broker).collect();
        let segments = segments_of(&capture);
        for first in 1..report.packets {
            starts += 1;
            let mut analyzer = Analyzer::new(AnalyzerOptions::default());
            let mut late = Vec::new();
            for segment in segments.iter().filter(|segment| segment.packet >= first) {
                analyzer.push_segment(segment.clone(), &mut late);
            }
            analyzer.finish(&mut late);
            let wrong = late
                .iter()
                .find(|exchange| !brokers.contains(&exchange.broker));
            let start = (name.as_str(), first as usize + 1);
            match wrong {
                Some(exchange) if !AMBIGUOUS.contains(&start) => swapped.push(format!(
                    "{} from packet {}: {} -> {} ({})",
                    start.0,
                    start.1,
                    exchange.client,
                    exchange.broker,
                    exchange.api_name()
                )),
                None if AMBIGUOUS.contains(&start) => {
                    swapped.push(format!("{start:?} is read right: take it off the list"))
                }
                _ => {}
            }
        }
    }
    assert!(
        swapped.is_empty(),
        "{} of {starts} late starts:\n{}",
        swapped.len(),
        swapped.join("\n")
    );
}
