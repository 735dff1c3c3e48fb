//! Hostile input: every frame in corpus/frames, mutated by a small seeded
//! PRNG (single-byte changes, overwrites, truncations, huge lengths and
//! counts where length and count fields sit, garbage appended), is decoded
//! as a request and as a response. Nothing may panic, every truncated frame
//! must report an error that names API, version, path and offset, and the
//! memory one decode allocates must stay proportional to the frame: this
//! binary counts every allocation (`Counting`) and checks the peak of each
//! decode against `memory_bound`.
//!
//! Hand-made hostile frames cover what mutation is unlikely to reach:
//! record batches claiming 2^31 records, decompression bombs in every codec,
//! a Metadata response claiming 2^31-1 topics and a long array of nearly
//! empty structs. `fuzz_regressions` replays what `fuzz/` found.
//!
//! Runs in a few seconds in a debug build; KWIRE_FRAMES_DIR points it at
//! another directory of `.frames` files.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use bytes::Bytes;
use kwire::codec::{message_from_json, DecodeError, DecodeErrorKind, DecodeOptions};
use kwire::frame::{self, DecodedFrame, Direction};
use kwire::frames_file;
use kwire::json::JsonWriter;
use kwire::records::{BatchSpec, Compression, Limits, RecordSet, RecordSpec};
use kwire::schema;
use kwire::value::{parse_hex, Struct, Value};
use kwire::wire::WireErrorKind;
use serde_json::json;

mod common;

// ---- counting allocator ------------------------------------------------------

/// Counts the bytes live on the heap and their peak. A reallocation counts
/// its new block before releasing the old one, as both may exist at once.
struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grow(bytes: usize) {
    let now = CURRENT.fetch_add(bytes, Ordering::Relaxed) + bytes;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

fn shrink(bytes: usize) {
    CURRENT.fetch_sub(bytes, Ordering::Relaxed);
}

// SAFETY: every call is passed on to `System` unchanged; only counters are
// updated around it.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let block = System.alloc(layout);
        if !block.is_null() {
            grow(layout.size());
        }
        block
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let block = System.alloc_zeroed(layout);
        if !block.is_null() {
            grow(layout.size());
        }
        block
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        System.dealloc(block, layout);
        shrink(layout.size());
    }

    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        grow(new_size);
        let moved = System.realloc(block, layout, new_size);
        if moved.is_null() {
            shrink(new_size);
        } else {
            shrink(layout.size());
        }
        moved
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Tests in this binary take turns, so that one test's allocations never
/// count in another's peak.
fn serial() -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::new(());
    TURN.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Runs `work` and returns its result with the peak number of bytes it had
/// on the heap at once, its result included.
fn peak_of<T>(work: impl FnOnce() -> T) -> (T, usize) {
    let base = CURRENT.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let out = work();
    let peak = PEAK.load(Ordering::Relaxed).saturating_sub(base);
    (out, peak)
}

// ---- the bound ----------------------------------------------------------------

/// The decompression limit used here: low, so that bombs are cheap to test.
const MAX_DECOMPRESSED: usize = 1 << 20;

/// Bytes a decoded tree may take per byte of frame. A field is a 64-byte
/// cell (its name and a 48-byte `Value`) and takes at least one byte on the
/// wire; an array element adds a `Value`. The worst element Kafka's schemas
/// allow, a DescribeConfigs v4 response config (9 bytes, 8 fields), costs
/// 62 bytes per byte (see `long_arrays_of_nearly_empty_structs_stay_linear`).
const PER_FRAME_BYTE: usize = 64;

/// The most one decode of `size` bytes may have on the heap at once. A
/// streaming decompressor fills a growing buffer, whose old and new blocks
/// coexist while it grows, so the limit may be held up to twice.
fn memory_bound(size: usize) -> usize {
    64 * 1024 + PER_FRAME_BYTE * size + 2 * MAX_DECOMPRESSED
}

fn options() -> DecodeOptions {
    DecodeOptions {
        records: kwire::codec::RecordsMode::Full,
        limits: Limits {
            max_decompressed: MAX_DECOMPRESSED,
        },
        skim: false,
        json: false,
        header_only: false,
    }
}

// ---- a small deterministic PRNG -----------------------------------------------

/// SplitMix64 (Steele, Lea and Flood 2014): tiny, fast, and good enough to
/// pick positions and bytes. Fixed seeds keep every run identical.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..bound` (`bound` > 0).
    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }

    fn byte(&mut self) -> u8 {
        self.next().to_le_bytes()[0]
    }
}

// ---- corpus -------------------------------------------------------------------

struct CorpusFrame {
    at: String,
    direction: Direction,
    api_key: i16,
    api_version: i16,
    bytes: Vec<u8>,
}

/// Every request and response line of every `.frames` file.
fn corpus() -> Vec<CorpusFrame> {
    let mut frames = Vec::new();
    for path in common::corpus_frame_files() {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).expect("frames file");
        let lines = frames_file::parse(&text).unwrap_or_else(|error| panic!("{name}: {error}"));
        for line in lines {
            let Some(direction) = line.direction() else {
                continue;
            };
            frames.push(CorpusFrame {
                at: format!("{name}:{}", line.line),
                direction,
                api_key: line.api_key,
                api_version: line.api_version,
                bytes: line.bytes.to_vec(),
            });
        }
    }
    assert!(frames.len() >= 100, "only {} corpus frames", frames.len());
    frames
}

// ---- decoding a mutant ----------------------------------------------------------

/// What a mutant is, for the checks that depend on it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    /// Shorter than the length prefix says: must fail.
    Truncated,
    Other,
}

/// Decodes `bytes` as a request and as a response to `original`'s API and
/// version, checking the memory bound and the error's shape; skimmed too,
/// which must stay as bounded and report the same error.
fn decode_both(original: &CorpusFrame, what: &str, bytes: &[u8], kind: Kind) -> usize {
    let bound = memory_bound(bytes.len());
    let mut worst = 0;
    for direction in [Direction::Request, Direction::Response] {
        let decode = |options: &DecodeOptions| {
            let shared = Bytes::copy_from_slice(bytes);
            peak_of(|| match direction {
                Direction::Request => frame::decode_request(shared, options),
                Direction::Response => {
                    frame::decode_response(shared, original.api_key, original.api_version, options)
                }
            })
        };
        let (decoded, peak) = decode(&options());
        let at = || {
            format!(
                "{} ({:?} {}) {what} as a {direction:?}",
                original.at, original.direction, original.api_key
            )
        };
        for json in [false, true] {
            let (skimmed, skim_peak) = decode(&DecodeOptions {
                skim: true,
                json,
                ..options()
            });
            assert!(
                peak.max(skim_peak) <= bound,
                "{}: decoding {} bytes took {peak} bytes of heap, skimming {skim_peak} \
                 (json {json}, bound {bound})",
                at(),
                bytes.len()
            );
            assert_eq!(
                skimmed.error.as_ref().map(ToString::to_string),
                decoded.error.as_ref().map(ToString::to_string),
                "{}: skimmed (json {json}) and decoded differ",
                at()
            );
            if let (Some(text), Some(body)) = (&skimmed.body_json, &decoded.body) {
                let mut whole = JsonWriter::in_memory();
                body.write_json(&mut whole);
                assert!(
                    *text == whole.into_bytes(),
                    "{}: skimmed JSON differs from the tree's",
                    at()
                );
            }
        }
        worst = worst.max(peak);
        match &decoded.error {
            Some(error) => check_error_shape(&decoded, error, bytes.len(), &at()),
            None => {
                assert!(kind != Kind::Truncated, "{}: truncated frame decoded", at());
                frame::reencode(&decoded).unwrap_or_else(|error| {
                    panic!("{}: decoded but cannot re-encode: {error}", at())
                });
            }
        }
    }
    worst
}

/// An error names the message (`Produce v9 request`, or `ApiKey(999) v3
/// request` for an unknown key) and a byte offset inside the frame.
fn check_error_shape(decoded: &DecodedFrame, error: &DecodeError, size: usize, at: &str) {
    let side = match decoded.direction {
        Direction::Request => "request",
        Direction::Response => "response",
    };
    assert!(
        error.context.starts_with(&decoded.api_name())
            && error
                .context
                .contains(&format!(" v{} ", decoded.api_version))
            && error.context.contains(side),
        "{at}: error context {:?} does not name the message",
        error.context
    );
    assert!(
        error.offset <= size,
        "{at}: error offset {} is past the {size}-byte frame: {error}",
        error.offset
    );
    // Only errors about the frame as a whole (its length prefix, API or
    // version) have no field path.
    let whole_frame = size < 4
        || matches!(
            error.kind,
            DecodeErrorKind::LengthMismatch { .. }
                | DecodeErrorKind::UnknownApiKey(_)
                | DecodeErrorKind::UnknownVersion { .. }
        );
    assert!(
        whole_frame || !error.path.is_empty(),
        "{at}: error has no field path: {error}"
    );
    // Display must not panic and must carry the offset.
    let text = error.to_string();
    assert!(
        text.contains(&format!("at byte {}", error.offset)),
        "{at}: {text}"
    );
}

// ---- mutations ------------------------------------------------------------------

/// Writes the frame's real size into its length prefix.
fn fix_prefix(bytes: &mut [u8]) {
    if bytes.len() >= 4 {
        let size = (bytes.len() - 4) as u32;
        bytes[..4].copy_from_slice(&size.to_be_bytes());
    }
}

/// Positions whose int32 or int16 reads as a plausible length or count (no
/// more than the bytes after it): where a hostile peer would lie.
fn length_like_positions(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut found = Vec::new();
    for at in 4..bytes.len() {
        let rest = bytes.len() - at;
        if let Some(word) = bytes.get(at..at + 4) {
            let value = i32::from_be_bytes([word[0], word[1], word[2], word[3]]);
            if value >= 0 && (value as usize) < rest {
                found.push((at, 4));
            }
        }
        if let Some(half) = bytes.get(at..at + 2) {
            let value = i16::from_be_bytes([half[0], half[1]]);
            if value >= 0 && (value as usize) < rest {
                found.push((at, 2));
            }
        }
    }
    found
}

/// Huge claims: int32 2^31-1, -1 and -2; int16 32767, -1 and -2; and an
/// unsigned varint of 0xffffffff in place of a one-byte compact length.
const HUGE_I32: [u32; 4] = [0x7fff_ffff, 0xffff_ffff, 0xffff_fffe, 0x8000_0000];
const HUGE_I16: [u16; 3] = [0x7fff, 0xffff, 0xfffe];
const HUGE_VARINT: [u8; 5] = [0xff, 0xff, 0xff, 0xff, 0x0f];

fn mutate_corpus_frame(frame: &CorpusFrame, rng: &mut SplitMix, full_truncation: bool) -> usize {
    let original = &frame.bytes;
    let len = original.len();
    let mut worst = decode_both(frame, "unchanged", original, Kind::Other);

    // Single-byte changes anywhere, the length prefix included.
    for _ in 0..16 {
        let mut bytes = original.clone();
        let at = rng.below(len);
        bytes[at] ^= rng.byte() | 1;
        worst = worst.max(decode_both(
            frame,
            &format!("byte {at} changed"),
            &bytes,
            Kind::Other,
        ));
    }
    // Runs of random bytes, with the prefix kept right.
    for _ in 0..4 {
        let mut bytes = original.clone();
        let at = 4 + rng.below(len.saturating_sub(4).max(1));
        let run = 1 + rng.below(16);
        for byte in bytes.iter_mut().skip(at).take(run) {
            *byte = rng.byte();
        }
        worst = worst.max(decode_both(
            frame,
            &format!("{run} bytes at {at} overwritten"),
            &bytes,
            Kind::Other,
        ));
    }
    // Truncation: never a successful decode.
    let cuts: Vec<usize> = if full_truncation {
        (0..len).collect()
    } else {
        (0..4).map(|_| rng.below(len)).collect()
    };
    for cut in cuts {
        let bytes = &original[..cut];
        worst = worst.max(decode_both(
            frame,
            &format!("cut at {cut}"),
            bytes,
            Kind::Truncated,
        ));
    }
    // Huge lengths and counts where lengths and counts are.
    let positions = length_like_positions(original);
    for _ in 0..6 {
        let Some(&(at, width)) = positions.get(rng.below(positions.len().max(1))) else {
            break;
        };
        if width == 4 {
            for huge in HUGE_I32 {
                let mut bytes = original.clone();
                bytes[at..at + 4].copy_from_slice(&huge.to_be_bytes());
                worst = worst.max(decode_both(
                    frame,
                    &format!("int32 {huge:#x} at {at}"),
                    &bytes,
                    Kind::Other,
                ));
            }
        } else {
            for huge in HUGE_I16 {
                let mut bytes = original.clone();
                bytes[at..at + 2].copy_from_slice(&huge.to_be_bytes());
                worst = worst.max(decode_both(
                    frame,
                    &format!("int16 {huge:#x} at {at}"),
                    &bytes,
                    Kind::Other,
                ));
            }
        }
    }
    // A varint in place of any byte (compact lengths are mostly one byte).
    for _ in 0..3 {
        let at = 4 + rng.below(len.saturating_sub(4).max(1));
        if at >= len {
            break;
        }
        let mut bytes = original[..at].to_vec();
        bytes.extend_from_slice(&HUGE_VARINT);
        bytes.extend_from_slice(&original[at + 1..]);
        fix_prefix(&mut bytes);
        worst = worst.max(decode_both(
            frame,
            &format!("varint 0xffffffff at {at}"),
            &bytes,
            Kind::Other,
        ));
    }
    // Garbage appended, with and without the prefix updated.
    for fix in [false, true] {
        let mut bytes = original.clone();
        let extra = 1 + rng.below(64);
        bytes.extend((0..extra).map(|_| rng.byte()));
        if fix {
            fix_prefix(&mut bytes);
        }
        worst = worst.max(decode_both(
            frame,
            &format!("{extra} bytes appended"),
            &bytes,
            Kind::Other,
        ));
    }
    worst
}

#[test]
fn mutated_corpus_frames_never_panic_and_stay_bounded() {
    let _turn = serial();
    let frames = corpus();
    let mut rng = SplitMix(0x6b77_6972_6500_0001);
    // Every length for the largest frame of a few shapes: a record-carrying
    // request and response, a large non-flexible and a flexible frame.
    let mut full: Vec<usize> = Vec::new();
    for pick in [
        |f: &CorpusFrame| f.api_key == 0 && f.direction == Direction::Request,
        |f: &CorpusFrame| f.api_key == 1 && f.direction == Direction::Response,
        |f: &CorpusFrame| f.api_key == 3 && f.direction == Direction::Response,
        |f: &CorpusFrame| f.api_key == 18 && f.api_version >= 3,
    ] {
        let largest = (0..frames.len())
            .filter(|&index| pick(&frames[index]))
            .max_by_key(|&index| frames[index].bytes.len());
        full.extend(largest);
    }
    let mut worst = (0, 0);
    for (index, frame) in frames.iter().enumerate() {
        let peak = mutate_corpus_frame(frame, &mut rng, full.contains(&index));
        worst = worst.max((peak, frame.bytes.len()));
    }
    println!(
        "{} frames mutated ({} truncated at every length); largest peak {} bytes, for a {}-byte frame",
        frames.len(),
        full.len(),
        worst.0,
        worst.1
    );
}

// ---- hand-made hostile frames ---------------------------------------------------

fn header(correlation_id: i32) -> Struct {
    let mut header = Struct::default();
    header.push("correlation_id", Value::Int(i64::from(correlation_id)));
    header.push("client_id", Value::String("kwire-hostile".into()));
    header
}

/// A Produce v9 request carrying one record set per entry of `record_sets`,
/// each in its own partition of topic `t`.
fn produce_v9(record_sets: &[Vec<u8>]) -> Vec<u8> {
    let partitions: Vec<_> = record_sets
        .iter()
        .enumerate()
        .map(|(index, raw)| json!({"index": index, "records": kwire::value::hex(raw)}))
        .collect();
    let body = json!({
        "transactional_id": null,
        "acks": -1,
        "timeout_ms": 30000,
        "topic_data": [{"name": "t", "partition_data": partitions}],
    });
    let api = schema::api(schema::PRODUCE_KEY).expect("Produce");
    let body = message_from_json(api.request, 9, &body).expect("Produce v9 from JSON");
    frame::encode_request(schema::PRODUCE_KEY, 9, &header(7), &body).expect("encode Produce")
}

fn batch(spec: BatchSpec) -> Vec<u8> {
    let mut out = Vec::new();
    spec.encode_into(&mut out).expect("encode batch");
    out
}

fn record(key: &[u8], value: Vec<u8>) -> RecordSpec {
    RecordSpec {
        key: Some(Bytes::copy_from_slice(key)),
        value: Some(Bytes::from(value)),
        headers: vec![(Bytes::from_static(b"h"), Some(Bytes::from_static(b"v")))],
        ..RecordSpec::default()
    }
}

/// Every record set of a decoded Produce request, in partition order.
fn record_sets(decoded: &DecodedFrame) -> Vec<&RecordSet> {
    let mut sets = Vec::new();
    let body = decoded.body.as_ref().expect("body");
    for topic in body
        .get("topic_data")
        .map(Value::as_array)
        .unwrap_or_default()
    {
        let partitions = topic.as_struct().and_then(|t| t.get("partition_data"));
        for partition in partitions.map(Value::as_array).unwrap_or_default() {
            if let Some(Value::Records(set)) = partition.as_struct().and_then(|p| p.get("records"))
            {
                sets.push(&**set);
            }
        }
    }
    sets
}

fn decode_bounded(bytes: &[u8], what: &str) -> DecodedFrame {
    let options = options();
    let (decoded, peak) =
        peak_of(|| frame::decode_request(Bytes::copy_from_slice(bytes), &options));
    let bound = memory_bound(bytes.len());
    assert!(
        peak <= bound,
        "{what}: decoding {} bytes took {peak} bytes of heap (bound {bound})",
        bytes.len()
    );
    decoded
}

#[test]
fn batch_claiming_two_to_the_31_records_is_an_error_not_an_allocation() {
    let _turn = serial();
    for claimed in [i32::MAX, i32::MIN, -2] {
        let raw = batch(BatchSpec {
            record_count: Some(claimed),
            records: vec![record(b"k", b"v".to_vec())],
            ..BatchSpec::default()
        });
        let bytes = produce_v9(&[raw]);
        let decoded = decode_bounded(&bytes, &format!("records count {claimed}"));
        assert!(decoded.error.is_none(), "{:?}", decoded.error);
        let sets = record_sets(&decoded);
        let problems: Vec<&str> = sets[0].problems().collect();
        assert!(
            problems.iter().any(|p| p.contains("records count")),
            "records count {claimed}: {problems:?}"
        );
        assert!(sets[0].record_count() <= 1);
    }
}

#[test]
fn decompression_bombs_stop_at_the_limit() {
    let _turn = serial();
    // 8 MiB of zeros in one record value: a few KiB compressed.
    for codec in [
        Compression::Gzip,
        Compression::Zstd,
        Compression::Lz4,
        Compression::Snappy,
    ] {
        let raw = batch(BatchSpec {
            compression: codec,
            records: vec![record(b"bomb", vec![0; 8 << 20])],
            ..BatchSpec::default()
        });
        assert!(raw.len() < 512 * 1024, "{codec}: {} bytes", raw.len());
        let bytes = produce_v9(&[raw]);
        let decoded = decode_bounded(&bytes, &format!("{codec} bomb"));
        assert!(decoded.error.is_none(), "{codec}: {:?}", decoded.error);
        let sets = record_sets(&decoded);
        let problems: Vec<&str> = sets[0].problems().collect();
        assert!(
            problems
                .iter()
                .any(|p| p.contains("limit") && p.contains(&MAX_DECOMPRESSED.to_string())),
            "{codec}: {problems:?}"
        );
        assert_eq!(sets[0].record_count(), 0, "{codec}");
    }
}

/// The decompression limit must hold for the whole frame: a frame may carry
/// many record sets (one per partition), each just under the limit.
#[test]
fn many_record_sets_each_under_the_limit_stay_bounded() {
    let _turn = serial();
    let one = batch(BatchSpec {
        compression: Compression::Zstd,
        records: vec![record(b"k", vec![0; MAX_DECOMPRESSED - 4096])],
        ..BatchSpec::default()
    });
    let sets = vec![one; 64];
    let bytes = produce_v9(&sets);
    let decoded = decode_bounded(&bytes, "64 record sets of 1 MiB each");
    assert!(decoded.error.is_none(), "{:?}", decoded.error);
    let sets = record_sets(&decoded);
    assert_eq!(sets.len(), 64);
    assert_eq!(sets[0].record_count(), 1, "the first set fits the limit");
    for (index, set) in sets.iter().enumerate().skip(1) {
        assert!(
            set.problems().any(|p| p.contains("limit")),
            "record set {index} decompressed past the frame's limit"
        );
    }
}

#[test]
fn metadata_response_claiming_2_pow_31_topics_is_refused_before_allocating() {
    let _turn = serial();
    let options = options();
    // v1: correlation id, brokers [] , controller_id, topics count.
    let mut v1 = Vec::new();
    v1.extend_from_slice(&0i32.to_be_bytes());
    v1.extend_from_slice(&9i32.to_be_bytes());
    v1.extend_from_slice(&0i32.to_be_bytes());
    v1.extend_from_slice(&1i32.to_be_bytes());
    v1.extend_from_slice(&i32::MAX.to_be_bytes());
    v1.extend_from_slice(&[0; 16]);
    // v12: correlation id, header tags, throttle, brokers [], cluster_id
    // null, controller_id, then a compact topics count of 0xffffffff.
    let mut v12 = Vec::new();
    v12.extend_from_slice(&0i32.to_be_bytes());
    v12.extend_from_slice(&9i32.to_be_bytes());
    v12.push(0);
    v12.extend_from_slice(&0i32.to_be_bytes());
    v12.push(1);
    v12.push(0);
    v12.extend_from_slice(&1i32.to_be_bytes());
    v12.extend_from_slice(&HUGE_VARINT);
    v12.extend_from_slice(&[0; 16]);
    for (version, mut bytes) in [(1, v1), (12, v12)] {
        fix_prefix(&mut bytes);
        let (decoded, peak) =
            peak_of(|| frame::decode_response(Bytes::from(bytes.clone()), 3, version, &options));
        assert!(
            peak <= memory_bound(bytes.len()),
            "v{version}: {peak} bytes"
        );
        let error = decoded.error.expect("error");
        assert_eq!(error.path.to_string(), "topics", "v{version}: {error}");
        assert!(
            matches!(
                error.kind,
                DecodeErrorKind::Wire(WireErrorKind::CountExceeds { .. })
            ),
            "v{version}: {error}"
        );
        assert_eq!(error.context, format!("Metadata v{version} response"));
    }
}

/// Kafka's schemas bound nesting, so a hostile frame can only make the
/// tree wide: many elements of the cheapest arrays. A Metadata v9 request
/// topic is two bytes (an empty compact name, no tags) and becomes a struct;
/// a DescribeConfigs v4 response config is nine bytes and becomes eight
/// fields, the most tree per byte any schema allows.
#[test]
fn long_arrays_of_nearly_empty_structs_stay_linear() {
    let _turn = serial();
    let count = 100_000u32;
    let mut compact_count = Vec::new();
    kwire::wire::put_unsigned_varint(&mut compact_count, count + 1);

    let mut metadata = vec![0; 4];
    metadata.extend_from_slice(&3i16.to_be_bytes());
    metadata.extend_from_slice(&9i16.to_be_bytes());
    metadata.extend_from_slice(&1i32.to_be_bytes());
    metadata.extend_from_slice(&[0xff, 0xff, 0]); // null client id, no header tags
    metadata.extend_from_slice(&compact_count);
    for _ in 0..count {
        metadata.extend_from_slice(&[1, 0]);
    }
    metadata.extend_from_slice(&[1, 0, 0, 0]); // three bools, no tags
    fix_prefix(&mut metadata);
    let decoded = decode_bounded(&metadata, "Metadata v9 request, 100000 empty topics");
    assert!(decoded.error.is_none(), "{:?}", decoded.error);
    let topics = decoded.body.as_ref().and_then(|body| body.get("topics"));
    assert_eq!(topics.map(|t| t.as_array().len()), Some(count as usize));

    let mut configs = vec![0; 4];
    configs.extend_from_slice(&1i32.to_be_bytes());
    configs.push(0); // no header tags
    configs.extend_from_slice(&0i32.to_be_bytes()); // throttle_time_ms
    configs.push(2); // one result
    configs.extend_from_slice(&[0, 0, 0, 2, 1]); // error, null message, type, ""
    configs.extend_from_slice(&compact_count);
    for _ in 0..count {
        // "", null, false, source 0, false, no synonyms, type 0, null, no tags
        configs.extend_from_slice(&[1, 0, 0, 0, 0, 1, 0, 0, 0]);
    }
    configs.extend_from_slice(&[0, 0]); // result tags, message tags
    fix_prefix(&mut configs);
    let options = options();
    let (decoded, peak) =
        peak_of(|| frame::decode_response(Bytes::from(configs.clone()), 32, 4, &options));
    assert!(decoded.error.is_none(), "{:?}", decoded.error);
    let bound = memory_bound(configs.len());
    assert!(
        peak <= bound,
        "DescribeConfigs v4 response of {count} configs: {} bytes took {peak} (bound {bound})",
        configs.len()
    );
    let configs = decoded
        .body
        .as_ref()
        .and_then(|body| body.lookup("results.0.configs"));
    assert_eq!(configs.map(|c| c.as_array().len()), Some(count as usize));
}

/// Cutting a Produce request inside its first partition must say so: the
/// path starts at `topic_data[0].partition_data[0]`, the offset is inside
/// the frame, and the message is named.
#[test]
fn truncated_produce_names_the_partition_it_stopped_in() {
    let _turn = serial();
    let raw = batch(BatchSpec {
        records: vec![record(b"k", b"value".to_vec())],
        ..BatchSpec::default()
    });
    let bytes = produce_v9(std::slice::from_ref(&raw));
    // The records sit at the end, followed by the partition's and the
    // topic's tag sections and the message's.
    let records_end = bytes.len() - 3;
    let options = options();
    for cut in [
        records_end - raw.len() - 3,
        records_end - raw.len() + 10,
        records_end - 1,
    ] {
        let mut short = bytes[..cut].to_vec();
        fix_prefix(&mut short);
        let decoded = frame::decode_request(Bytes::from(short), &options);
        let error = decoded.error.expect("truncated frame must fail");
        assert!(
            error
                .path
                .to_string()
                .starts_with("topic_data[0].partition_data[0]"),
            "cut at {cut}: {error}"
        );
        assert_eq!(error.context, "Produce v9 request");
        assert!(error.offset <= cut, "cut at {cut}: {error}");
        // Without the prefix fixed, the mismatch is reported first.
        let decoded = frame::decode_request(Bytes::copy_from_slice(&bytes[..cut]), &options);
        assert!(matches!(
            decoded.error.map(|error| error.kind),
            Some(DecodeErrorKind::LengthMismatch { .. })
        ));
    }
}

// ---- fuzzer findings --------------------------------------------------------------

/// Inputs `cargo fuzz run decode` found, as the fuzz target reads them: the
/// response's API key and version (int16 each), then the frame. Each must
/// decode both ways without panicking, within the bound, and a frame that
/// decodes must re-encode to its own bytes.
const FUZZ_REGRESSIONS: &[(&str, &str)] = &[(
    // A Fetch v16 request whose top-level tag section holds cluster_id (tag
    // 0) twice: the second value was kept as a second `cluster_id` field and
    // lost on re-encoding. Now the repeat is a violation, kept raw.
    "fetch-v16-request-repeated-tag",
    concat!(
            "007cc000000001000001001000fe002000011d0000010000000000000001000202020202020202020202020202020202",
            "02020202326e616d65000008020202020202020202023402020202020202020202020202020202020202020202020202",
            "020202020202020202020202020202020202020202020202020202020202000202000001000202020202020202020202",
            "0202020202020202020202030202ff030202020202020202020202020202020202020202020202020202020202020202",
            "020202020202020202020202020202020202020202020000000000000000000000000000000000000000000000000000",
            "00000000000000000000000000000064656d0000fd000303",
        ),
)];

#[test]
fn fuzz_regressions() {
    let _turn = serial();
    let options = options();
    for (name, hex) in FUZZ_REGRESSIONS {
        let input = parse_hex(hex).expect("hex");
        let (selector, bytes) = input.split_at(4);
        let api_key = i16::from_be_bytes([selector[0], selector[1]]);
        let api_version = i16::from_be_bytes([selector[2], selector[3]]);
        let frame = CorpusFrame {
            at: (*name).to_owned(),
            direction: Direction::Response,
            api_key,
            api_version,
            bytes: bytes.to_vec(),
        };
        decode_both(&frame, "as found", bytes, Kind::Other);
        let shared = Bytes::copy_from_slice(bytes);
        for decoded in [
            frame::decode_request(shared.clone(), &options),
            frame::decode_response(shared, api_key, api_version, &options),
        ] {
            if decoded.error.is_none() {
                let encoded = frame::reencode(&decoded).expect("re-encode");
                assert!(
                    encoded == bytes,
                    "{name}: {} does not round-trip",
                    decoded.context()
                );
            }
        }
    }
}

/// KIP-482 allows a tag once per section. A repeat is a violation that
/// does not stop decoding, and the frame still re-encodes byte for byte.
#[test]
fn repeated_known_tag_is_a_violation_and_round_trips() {
    let _turn = serial();
    let api = schema::api(schema::FETCH_KEY).expect("Fetch");
    let body = json!({"replica_id": -1, "max_wait_ms": 500, "min_bytes": 1,
        "max_bytes": 1024, "isolation_level": 0, "session_id": 0, "session_epoch": -1,
        "topics": [], "forgotten_topics_data": [], "rack_id": "", "cluster_id": "a"});
    let body = message_from_json(api.request, 12, &body).expect("Fetch v12 from JSON");
    let mut bytes =
        frame::encode_request(schema::FETCH_KEY, 12, &header(3), &body).expect("encode");
    // The message's tag section ends the frame: count 1, tag 0, size 2,
    // compact string "a". Send cluster_id "b" a second time.
    let tags = bytes.len() - 5;
    assert_eq!(&bytes[tags..], &[1, 0, 2, 2, b'a']);
    bytes[tags] = 2;
    bytes.extend_from_slice(&[0, 2, 2, b'b']);
    fix_prefix(&mut bytes);
    let decoded = frame::decode_request(Bytes::from(bytes.clone()), &options());
    assert!(decoded.error.is_none(), "{:?}", decoded.error);
    let body = decoded.body.as_ref().expect("body");
    assert_eq!(body.str("cluster_id"), Some("a"));
    assert_eq!(
        body.fields
            .iter()
            .filter(|f| f.name == "cluster_id")
            .count(),
        1
    );
    let repeats: Vec<&DecodeError> = decoded
        .violations
        .iter()
        .filter(|v| v.kind == DecodeErrorKind::RepeatedTag(0))
        .collect();
    assert_eq!(repeats.len(), 1, "{:?}", decoded.violations);
    assert_eq!(repeats[0].path.to_string(), "cluster_id");
    assert_eq!(repeats[0].context, "Fetch v12 request");
    assert_eq!(frame::reencode(&decoded).expect("re-encode"), bytes);
}
