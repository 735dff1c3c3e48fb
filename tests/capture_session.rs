//! The Kafka-on-TCP layer against real captures.
//!
//! Every corpus capture (`corpus/captures/X.pcap`) is read with
//! `session::read_capture`, and the frames it yields per connection, with
//! their pairing, must be exactly those that `corpus/extract_frames.py` cut
//! into `corpus/frames/X.frames` (an independent implementation in Python).
//! Directories named in `KWIRE_ORACLE_DIRS` (colon-separated) add more
//! `X.pcap` + `X.frames` pairs. The public captures in `../shared/captures`
//! are read too, when present, for invariants only.

mod common;

use std::path::Path;

use common::{
    check_invariants, compare, lossless_variants, oracle_frame_count, oracle_pairs, parse_oracle,
    read_all, segments_of, Lcg,
};
use kwire::capture::TcpSegment;
use kwire::exchange::{Exchange, ExchangeState};
use kwire::session::{Analyzer, AnalyzerOptions, ConnectionKind, LossCounters};

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
        let oracle_frames = oracle_frame_count(&oracle);
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
    let Some(paths) = common::files_with_extensions(&dir, &["pcap", "pcapng"]) else {
        println!(
            "skipped: {} is absent (public captures are not shipped)",
            dir.display()
        );
        return;
    };
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
            for (how, variant) in lossless_variants(&segments, seed) {
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
