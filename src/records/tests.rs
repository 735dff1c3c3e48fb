//! Record-set tests across modules: round trips for every magic and codec,
//! damaged input of every kind, the JSON form, and interoperability with an
//! independent implementation (the kafka-protocol crate).

use bytes::Bytes;
use serde_json::{json, Value};

use super::*;

fn build(v: Value) -> RecordSet {
    match RecordSet::from_json(&v) {
        Ok(set) => set,
        Err(e) => panic!("from_json failed: {e}\n{v:#}"),
    }
}

fn decode(raw: &[u8]) -> RecordSet {
    RecordSet::decode(Bytes::copy_from_slice(raw), &Limits::default())
}

fn no_problems(set: &RecordSet) {
    let problems: Vec<&str> = set.problems().collect();
    assert!(problems.is_empty(), "unexpected problems: {problems:#?}");
    assert_eq!(set.partial_tail, None);
}

fn sample_records() -> Value {
    json!([
        {"key": "k0", "value": "v0", "headers": [{"key": "h", "value": "x"}, {"key": "n", "value": null}]},
        {"key": null, "value": {"hex": "00ff80"}},
        {"key": {"hex": "c3"}, "value": null},
        {"key": "", "value": "a longer value that repeats, a longer value that repeats, a longer value"},
    ])
}

/// Everything about each record, with its bytes, for comparing sets.
type FlatRecord = (
    i64,
    i64,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    Vec<(Vec<u8>, Option<Vec<u8>>)>,
    Option<ControlRecord>,
    Option<LegacyMessage>,
);

fn flat_batch(b: &Batch) -> Vec<FlatRecord> {
    b.iter()
        .map(|r| {
            let headers = r
                .headers()
                .map(|(k, v)| (k.to_vec(), v.map(<[u8]>::to_vec)))
                .collect();
            (
                r.offset(),
                r.timestamp(),
                r.key().map(<[u8]>::to_vec),
                r.value().map(<[u8]>::to_vec),
                headers,
                r.control(),
                r.legacy(),
            )
        })
        .collect()
}

fn flat(set: &RecordSet) -> Vec<FlatRecord> {
    set.batches.iter().flat_map(flat_batch).collect()
}

const CODECS: [&str; 5] = ["none", "gzip", "snappy", "lz4", "zstd"];

fn key_strings(set: &RecordSet) -> Vec<Option<Vec<u8>>> {
    set.batches
        .iter()
        .flat_map(|b| b.iter())
        .map(|r| r.key().map(<[u8]>::to_vec))
        .collect()
}

#[test]
fn every_magic_and_codec_round_trips() {
    for magic in [0, 1, 2] {
        for codec in CODECS {
            let label = format!("magic {magic} {codec}");
            let mut records = sample_records();
            if magic < 2 {
                for r in records.as_array_mut().unwrap() {
                    r.as_object_mut().unwrap().remove("headers");
                }
            }
            let set = build(
                json!({"batches": [{"magic": magic, "compression": codec, "records": records}]}),
            );
            no_problems(&set);
            assert_eq!(set.record_count(), 4, "{label}");
            assert_eq!(
                key_strings(&set),
                vec![Some(b"k0".to_vec()), None, Some(vec![0xc3]), Some(vec![])],
                "{label}"
            );
            let offsets: Vec<i64> = set
                .batches
                .iter()
                .flat_map(|b| b.iter())
                .map(|r| r.offset())
                .collect();
            assert_eq!(offsets, vec![0, 1, 2, 3], "{label}");
            let first = &set.batches[0];
            assert_eq!(first.magic, magic, "{label}");
            assert_eq!(first.compression().name(), Some(codec), "{label}");
            if magic == 2 {
                let r0 = first.record(0).unwrap();
                assert_eq!(r0.headers().count(), 2);
                assert_eq!(r0.headers().nth(1), Some((&b"n"[..], None)));
                assert_eq!(first.last_offset_delta, 3);
            }

            // Decoding `raw` again gives the same view.
            let again = decode(&set.raw);
            assert_eq!(again.batches, set.batches, "{label}");

            // The JSON form rebuilds the same records; uncompressed, the
            // same bytes.
            let as_json = serde_json::to_value(&set).unwrap();
            let rebuilt = build(as_json.clone());
            no_problems(&rebuilt);
            if codec == "none" {
                assert_eq!(rebuilt.raw, set.raw, "{label}");
            }
            assert_eq!(flat(&rebuilt), flat(&set), "{label}");
            assert_eq!(
                serde_json::to_value(&rebuilt).unwrap()["batches"][0]["records"],
                as_json["batches"][0]["records"]
            );
        }
    }
}

#[test]
fn v2_header_fields_are_filled_like_the_java_producer() {
    let set = build(json!({"batches": [{
        "base_offset": 100,
        "records": [{"timestamp": 1000, "value": "a"}, {"timestamp": 900, "value": "b"}, {"timestamp": 1500, "value": "c"}]
    }]}));
    no_problems(&set);
    let b = &set.batches[0];
    assert_eq!(b.base_offset, 100);
    assert_eq!(b.last_offset_delta, 2);
    assert_eq!(b.base_timestamp, 1000);
    assert_eq!(b.max_timestamp, 1500);
    assert_eq!(
        (b.producer_id, b.producer_epoch, b.base_sequence),
        (-1, -1, -1)
    );
    assert_eq!(b.partition_leader_epoch, -1);
    assert_eq!(b.record_count, 3);
    assert_eq!(
        usize::try_from(b.batch_length).unwrap() + LOG_OVERHEAD,
        set.raw.len()
    );
    let ts: Vec<i64> = b.records.iter().map(|r| r.timestamp).collect();
    assert_eq!(ts, vec![1000, 900, 1500]);
    assert!(b.crc_ok);
}

#[test]
fn known_v2_batch_bytes_decode() {
    // One record, key null, value "hi", built by hand from the protocol
    // guide's layout.
    let record: &[u8] = &[
        0x10, // length 8 (zigzag)
        0x00, // attributes
        0x00, // timestamp delta 0
        0x00, // offset delta 0
        0x01, // key length -1
        0x04, b'h', b'i', // value length 2
        0x00, // no headers
    ];
    let mut tail = Vec::new();
    tail.extend_from_slice(&0i16.to_be_bytes()); // attributes
    tail.extend_from_slice(&0i32.to_be_bytes()); // last offset delta
    tail.extend_from_slice(&5i64.to_be_bytes()); // base timestamp
    tail.extend_from_slice(&5i64.to_be_bytes()); // max timestamp
    tail.extend_from_slice(&7i64.to_be_bytes()); // producer id
    tail.extend_from_slice(&1i16.to_be_bytes()); // producer epoch
    tail.extend_from_slice(&0i32.to_be_bytes()); // base sequence
    tail.extend_from_slice(&1i32.to_be_bytes()); // records count
    tail.extend_from_slice(record);
    let mut raw = Vec::new();
    raw.extend_from_slice(&42i64.to_be_bytes());
    raw.extend_from_slice(&i32::try_from(4 + 1 + 4 + tail.len()).unwrap().to_be_bytes());
    raw.extend_from_slice(&3i32.to_be_bytes()); // leader epoch
    raw.push(2);
    raw.extend_from_slice(&crc32c::crc32c(&tail).to_be_bytes());
    raw.extend_from_slice(&tail);

    let set = decode(&raw);
    no_problems(&set);
    let b = &set.batches[0];
    assert_eq!(
        (b.base_offset, b.partition_leader_epoch, b.producer_id),
        (42, 3, 7)
    );
    assert_eq!(b.records[0].offset, 42);
    assert_eq!(b.records[0].timestamp, 5);
    assert_eq!(b.record(0).unwrap().value(), Some(&b"hi"[..]));

    // Our encoder writes the same bytes from the decoded JSON.
    let rebuilt = build(serde_json::to_value(&set).unwrap());
    assert_eq!(&rebuilt.raw[..], &raw[..]);
}

#[test]
fn crc_mismatch_is_reported_and_next_batch_still_decodes() {
    let set = build(json!([
        {"crc": 12345, "records": [{"value": "bad"}]},
        {"base_offset": 1, "records": [{"value": "good"}]},
    ]));
    assert_eq!(set.batches.len(), 2);
    assert!(!set.batches[0].crc_ok);
    assert_eq!(set.batches[0].crc, 12345);
    assert!(set.batches[1].crc_ok);
    assert_eq!(
        set.record_count(),
        2,
        "records of a bad-CRC batch are still shown"
    );
    let problems: Vec<&str> = set.problems().collect();
    assert_eq!(problems.len(), 1);
    assert!(
        problems[0].starts_with("batch 0 at byte 0: crc 0x00003039"),
        "{}",
        problems[0]
    );
    let v = serde_json::to_value(&set).unwrap();
    assert_eq!(v["batches"][0]["crc_ok"], json!(false));
    assert!(v["batches"][0]["error"]
        .as_str()
        .unwrap()
        .contains("CRC-32C"));
    assert!(v["batches"][1].get("error").is_none());

    // Feeding the decoded form back keeps the deliberately bad CRC.
    let again = build(v);
    assert_eq!(again.raw, set.raw);
}

#[test]
fn legacy_crc_mismatch_is_reported_per_message() {
    let set = build(
        json!({"batches": [{"magic": 1, "records": [{"value": "a", "crc": 7}, {"value": "b"}]}]}),
    );
    assert_eq!(
        set.batches.len(),
        2,
        "uncompressed legacy messages are separate entries"
    );
    assert!(!set.batches[0].crc_ok);
    assert_eq!(set.batches[0].legacy[0].crc, 7);
    assert!(set.batches[1].crc_ok);
    assert_eq!(set.problems().count(), 1);
}

#[test]
fn bad_compressed_payload_is_reported_and_next_batch_still_decodes() {
    let good = build(
        json!([{"compression": "gzip", "records": [{"value": "x"}]}, {"records": [{"value": "y"}]}]),
    );
    let mut raw = good.raw.to_vec();
    // Corrupt the gzip payload (after the 61-byte header and gzip's own
    // 10-byte header), then fix the CRC so only the payload is wrong.
    let first_len = LOG_OVERHEAD + usize::try_from(good.batches[0].batch_length).unwrap();
    for b in &mut raw[61 + 10..first_len - 8] {
        *b = 0xff;
    }
    let crc = crc32c::crc32c(&raw[21..first_len]);
    raw[17..21].copy_from_slice(&crc.to_be_bytes());
    let set = decode(&raw);
    assert_eq!(set.batches.len(), 2);
    assert!(set.batches[0].crc_ok);
    assert!(set.batches[0].records.is_empty());
    let problem = set.batches[0].errors.join("; ");
    assert!(
        problem.contains("batch 0 at byte 0: records at byte 61: gzip"),
        "{problem}"
    );
    assert_eq!(set.batches[1].record(0).unwrap().value(), Some(&b"y"[..]));
}

#[test]
fn truncated_tail_is_a_partial_batch_not_an_error() {
    let full = build(json!([{"records": [{"value": "one"}]}, {"records": [{"value": "two"}]}]));
    let first = full.batches[0].size;
    for cut in [
        first + 1,
        first + 11,
        first + 12,
        first + 17,
        full.raw.len() - 1,
    ] {
        let set = decode(&full.raw[..cut]);
        assert_eq!(set.batches.len(), 1, "cut at {cut}");
        assert_eq!(set.problems().count(), 0, "cut at {cut}");
        let tail = set.partial_tail.expect("partial tail");
        assert_eq!(tail.position, first);
        assert_eq!(tail.bytes, cut - first);
        assert_eq!(set.partial_tail_bytes(), cut - first);
        if cut - first >= 12 {
            assert_eq!(tail.claimed, Some((full.raw.len() - first) as u64));
        }
        let v = serde_json::to_value(&set).unwrap();
        assert_eq!(v["partial_tail_bytes"], json!(cut - first));
        // The JSON form carries the cut-off bytes, so it rebuilds them.
        assert_eq!(build(v).raw, set.raw, "cut at {cut}");
    }
    let v = serde_json::to_value(&full).unwrap();
    assert!(v.get("partial_tail_bytes").is_none());
}

/// A gzip stream of `members` concatenated members, each 1 MiB of zeros:
/// about 1 KiB apiece, so a few hundred KiB claim hundreds of MiB.
fn gzip_bomb(members: usize) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(&vec![0u8; 1 << 20]).unwrap();
    let one = enc.finish().unwrap();
    one.repeat(members)
}

/// Wraps an already compressed payload in a v2 batch header.
fn v2_with_payload(codec: Compression, count: i32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&0i64.to_be_bytes());
    out.extend_from_slice(&i32::try_from(49 + payload.len()).unwrap().to_be_bytes());
    out.extend_from_slice(&(-1i32).to_be_bytes());
    out.push(2);
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&i16::from(codec.code()).to_be_bytes());
    out.extend_from_slice(&0i32.to_be_bytes());
    out.extend_from_slice(&[0; 16]);
    out.extend_from_slice(&(-1i64).to_be_bytes());
    out.extend_from_slice(&(-1i16).to_be_bytes());
    out.extend_from_slice(&(-1i32).to_be_bytes());
    out.extend_from_slice(&count.to_be_bytes());
    out.extend_from_slice(payload);
    let crc = crc32c::crc32c(&out[21..]);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    out
}

#[test]
fn decompression_bomb_is_capped_per_record_set() {
    let bomb = gzip_bomb(100); // 100 MiB of zeros
    assert!(bomb.len() < 200 * 1024, "bomb is {} bytes", bomb.len());
    let mut raw = v2_with_payload(Compression::Gzip, 1, &bomb);
    raw.extend_from_slice(&build(json!([{"records": [{"value": "after"}]}])).raw);
    let set = decode(&raw);
    assert_eq!(set.batches.len(), 2);
    let problem = set.batches[0].errors.join("; ");
    assert!(
        problem.contains("exceeds the limit of 67108864 bytes"),
        "{problem}"
    );
    assert!(set.batches[0].records.is_empty());
    assert_eq!(
        set.batches[1].records.len(),
        1,
        "the next batch still decodes"
    );

    // The cap is shared by all batches of a record set.
    let half = gzip_bomb(40); // 40 MiB each: the second pushes past 64
    let mut raw = v2_with_payload(Compression::Gzip, 0, &half);
    raw.extend_from_slice(&v2_with_payload(Compression::Gzip, 0, &half));
    let set = decode(&raw);
    assert!(set.batches[0].errors.iter().all(|e| !e.contains("limit")));
    assert!(
        set.batches[1].errors.iter().any(|e| e.contains("limit")),
        "{:?}",
        set.batches[1].errors
    );
}

#[test]
fn legacy_wrapper_bomb_is_capped() {
    let limits = Limits {
        max_decompressed: 1 << 20,
    };
    let set = build(
        json!({"batches": [{"magic": 1, "compression": "lz4", "records": [
            {"value": "x".repeat(600_000)}, {"value": "y".repeat(600_000)}
        ]}]}),
    );
    no_problems(&set);
    let capped = RecordSet::decode(set.raw.clone(), &limits);
    let problem = capped.batches[0].errors.join("; ");
    assert!(
        problem.contains("exceeds the limit of 1048576"),
        "{problem}"
    );
}

#[test]
fn huge_claimed_record_count_does_not_reserve_for_it() {
    let mut raw = build(json!([{"records": [{"value": "only one"}]}]))
        .raw
        .to_vec();
    raw[57..61].copy_from_slice(&2_000_000_000i32.to_be_bytes());
    let crc = crc32c::crc32c(&raw[21..]);
    raw[17..21].copy_from_slice(&crc.to_be_bytes());
    let set = decode(&raw);
    let b = &set.batches[0];
    assert_eq!(b.record_count, 2_000_000_000);
    assert_eq!(b.records.len(), 1);
    assert!(
        b.records.capacity() < 100,
        "reserved {}",
        b.records.capacity()
    );
    let problem = b.errors.join("; ");
    assert!(
        problem.contains("records count is 2000000000 but the payload holds only 1"),
        "{problem}"
    );
    // Shown in JSON, and honoured on the way back.
    let v = serde_json::to_value(&set).unwrap();
    assert_eq!(v["batches"][0]["record_count"], json!(2_000_000_000));
    assert_eq!(build(v).raw, set.raw);

    // Same inside a compressed payload, and for a huge header count.
    let mut record = vec![0x0e, 0, 0, 0, 1, 1];
    record.extend_from_slice(&[0xfe, 0xff, 0xff, 0xff, 0x0f]); // headers count i32::MAX
    let payload =
        compression::compress(Compression::Zstd, &record, CompressOptions::default()).unwrap();
    let set = decode(&v2_with_payload(Compression::Zstd, i32::MAX, &payload));
    assert!(set.problems().count() >= 1);
}

#[test]
fn negative_and_oversized_lengths_are_errors_with_positions() {
    // Record whose key claims 100 bytes when 2 remain.
    let mut raw = build(json!([{"records": [{"key": "ab", "value": null}]}]))
        .raw
        .to_vec();
    assert_eq!(raw[61 + 4], 0x04); // key length 2
    raw[61 + 4] = 0x48; // zigzag 36: key length 36
    let crc = crc32c::crc32c(&raw[21..]);
    raw[17..21].copy_from_slice(&crc.to_be_bytes());
    let set = decode(&raw);
    let problem = set.batches[0].errors.join("; ");
    assert!(
        problem
            .starts_with("batch 0 at byte 0: record 0 at byte 61: key at byte 65: needs 36 bytes"),
        "{problem}"
    );

    // A negative batch length cannot be framed; decoding stops there.
    let mut raw = build(json!([{"records": [{"value": "x"}]}, {"records": [{"value": "y"}]}]))
        .raw
        .to_vec();
    let second = raw.len() / 2;
    raw[second + 8..second + 12].copy_from_slice(&(-5i32).to_be_bytes());
    let set = decode(&raw);
    assert_eq!(set.batches.len(), 2);
    let problem = set.batches[1].errors.join("; ");
    assert!(
        problem.contains(&format!("batch 1 at byte {second}: negative length -5")),
        "{problem}"
    );
}

#[test]
fn unknown_magic_is_skipped_by_length() {
    let mut raw = build(json!([{"records": [{"value": "x"}]}])).raw.to_vec();
    raw[16] = 7;
    raw.extend_from_slice(&build(json!([{"records": [{"value": "y"}]}])).raw);
    let set = decode(&raw);
    assert_eq!(set.batches.len(), 2);
    assert!(set.batches[0].errors[0].contains("unsupported magic 7"));
    assert_eq!(set.batches[1].records.len(), 1);
}

#[test]
fn control_records_decode_into_readable_form() {
    let set = build(json!({"batches": [{
        "producer_id": 9, "producer_epoch": 2,
        "records": [{"control": {"type": "commit", "coordinator_epoch": 3}}]
    }]}));
    no_problems(&set);
    let b = &set.batches[0];
    assert!(b.is_control() && b.is_transactional());
    let c = b.controls[0].unwrap();
    assert_eq!(c.kind, ControlType::Commit);
    assert_eq!(c.coordinator_epoch, Some(3));
    assert_eq!(b.record(0).unwrap().key(), Some(&[0u8, 0, 0, 1][..]));
    assert_eq!(
        b.record(0).unwrap().value(),
        Some(&[0u8, 0, 0, 0, 0, 3][..])
    );
    let v = serde_json::to_value(&set).unwrap();
    let r = &v["batches"][0]["records"][0];
    assert_eq!(
        r["control"],
        json!({"type": "commit", "version": 0, "coordinator_epoch": 3})
    );
    assert!(
        r.get("key").is_none(),
        "canonical control key is shown parsed only: {r}"
    );
    assert_eq!(build(v).raw, set.raw);

    // Abort, an unknown type, and a key too short to parse.
    let set = build(json!([{"control": true, "records": [
        {"control": {"type": "abort", "coordinator_epoch": 1}},
        {"control": {"type": 77}},
        {"key": {"hex": "00"}, "value": null},
    ]}]));
    let b = &set.batches[0];
    assert_eq!(b.controls[0].unwrap().kind, ControlType::Abort);
    assert_eq!(b.controls[1].unwrap().kind, ControlType::Unknown(77));
    assert_eq!(b.controls[2], None);
    assert_eq!(set.problems().count(), 1);
    assert!(
        b.errors[0].contains("record 2") && b.errors[0].contains("control key version"),
        "{}",
        b.errors[0]
    );
}

#[test]
fn compact_form_builds_full_batches() {
    let set = build(json!({"batches": [{"compression": "zstd", "records": [
        {"key": "k", "value": "v", "headers": [{"key": "trace", "value": {"hex": "0102"}}]},
        {"key": "k2", "value": "v2"},
    ]}]}));
    no_problems(&set);
    let b = &set.batches[0];
    assert_eq!(b.compression(), Compression::Zstd);
    assert_eq!(b.record(1).unwrap().value(), Some(&b"v2"[..]));
    let header = b.record(0).unwrap().headers().next().unwrap();
    assert_eq!(header.0, b"trace");
    assert_eq!(header.1, Some(&[1u8, 2][..]));
    let v = serde_json::to_value(&set).unwrap();
    assert_eq!(v["batches"][0]["compression"], json!("zstd"));
    assert_eq!(
        v["batches"][0]["records"][0]["headers"],
        json!([{"key": "trace", "value": {"hex": "0102"}}])
    );
}

#[test]
fn overrides_are_honoured() {
    let set = build(json!([{
        "base_offset": 10, "last_offset_delta": 99, "max_timestamp": 5, "producer_id": 4,
        "producer_epoch": 3, "base_sequence": 8, "partition_leader_epoch": 2,
        "timestamp_type": "log_append_time", "attributes": 0x0108,
        "records": [{"offset": 12, "timestamp": -3, "attributes": 1, "value": "v"}]
    }]));
    let b = &set.batches[0];
    assert_eq!(b.last_offset_delta, 99);
    assert_eq!(b.max_timestamp, 5);
    assert_eq!(
        (b.producer_id, b.producer_epoch, b.base_sequence),
        (4, 3, 8)
    );
    assert_eq!(b.attributes, 0x0108);
    assert_eq!(b.timestamp_type(), TimestampType::LogAppendTime);
    assert_eq!(b.records[0].offset, 12);
    assert_eq!(b.records[0].timestamp, -3);
    assert_eq!(b.records[0].attributes, 1);
    let v = serde_json::to_value(&set).unwrap();
    assert_eq!(
        v["batches"][0]["attributes"],
        json!(0x0108),
        "unnamed attribute bits are shown"
    );
    assert_eq!(build(v).raw, set.raw);

    // A wrong batch_length is sent as given (and then cannot be framed).
    let set = build(json!([{"batch_length": 20, "records": [{"value": "v"}]}]));
    assert!(set
        .problems()
        .next()
        .unwrap()
        .contains("below the 49 bytes"));
}

#[test]
fn from_json_errors_name_the_path() {
    let cases = [
        (
            json!({"batches": [{"records": [{"key": 5}]}]}),
            "batches[0].records[0].key: expected a string",
        ),
        (
            json!({"batches": [{}, {"compression": "brotli"}]}),
            "batches[1].compression: unknown compression \"brotli\"",
        ),
        (
            json!({"batches": [{"producer_epoch": 70000}]}),
            "batches[0].producer_epoch: 70000 is out of range",
        ),
        (
            json!({"batches": [{"records": [{"vaule": "x"}]}]}),
            "batches[0].records[0]: unknown field \"vaule\"",
        ),
        (
            json!({"batches": [{"records": [{"headers": [{"key": null}]}]}]}),
            "batches[0].records[0].headers[0].key: header keys cannot be null",
        ),
        (
            json!({"batches": [{"records": [{"value": {"hex": "abc"}}]}]}),
            "batches[0].records[0].value.hex: odd number",
        ),
        (
            json!({"batches": [{"magic": 1, "producer_id": 3}]}),
            "batches[0].producer_id: not a field of a magic 1 entry",
        ),
        (
            json!({"batches": [{"magic": 5}]}),
            "batches[0].magic: magic 5 cannot be encoded",
        ),
        (
            json!({"batches": [{"records": [{"offset": 0}, {"offset": 5_000_000_000i64}]}]}),
            "batches[0]: records[1]: offset 5000000000 is too far",
        ),
        (json!("x"), ": expected an object"),
    ];
    for (v, want) in cases {
        let err = RecordSet::from_json(&v).unwrap_err();
        assert!(err.contains(want), "got {err:?}, want {want:?}");
    }
}

#[test]
fn raw_hex_is_taken_verbatim() {
    let built = build(json!([{"records": [{"value": "v"}]}]));
    let set = build(json!({"raw_hex": json::hex(&built.raw)}));
    assert_eq!(set.raw, built.raw);
    assert_eq!(set.record_count(), 1);
}

#[test]
fn legacy_inner_offsets_resolve_as_kafka_does() {
    // Magic 1: relative inner offsets; wrapper at 10 holding 3 messages
    // resolves to 8, 9, 10.
    let set = build(
        json!({"batches": [{"magic": 1, "compression": "gzip", "offset": 10, "records": [
            {"value": "a", "timestamp": 5}, {"value": "b", "timestamp": 7}, {"value": "c", "timestamp": 6}
        ]}]}),
    );
    no_problems(&set);
    let b = &set.batches[0];
    assert_eq!(b.base_offset, 10);
    let offsets: Vec<i64> = b.records.iter().map(|r| r.offset).collect();
    assert_eq!(offsets, vec![8, 9, 10]);
    assert_eq!(
        b.max_timestamp, 7,
        "wrapper timestamp is the largest inner one"
    );

    // Magic 0: absolute inner offsets.
    let set = build(
        json!({"batches": [{"magic": 0, "compression": "snappy", "records": [
            {"offset": 3, "value": "a"}, {"offset": 4, "value": "b"}
        ]}]}),
    );
    no_problems(&set);
    let offsets: Vec<i64> = set.batches[0].records.iter().map(|r| r.offset).collect();
    assert_eq!(offsets, vec![3, 4]);
    assert_eq!(set.batches[0].base_offset, 4);
    assert_eq!(set.batches[0].timestamp_type(), TimestampType::CreateTime);
}

#[test]
fn legacy_relative_offsets_on_the_wire() {
    let set = build(
        json!({"batches": [{"magic": 1, "compression": "none", "records": [{"value": "a"}]}]}),
    );
    // Uncompressed magic 1: offset 0, size, crc, magic 1, attributes 0, ts 0.
    assert_eq!(&set.raw[16..18], &[1, 0]);
    let wrapped = build(
        json!({"batches": [{"magic": 1, "compression": "gzip", "offset": 10, "records": [
            {"value": "a"}, {"value": "b"}, {"value": "c"}
        ]}]}),
    );
    let b = &wrapped.batches[0];
    // offset 8, size 4, crc 4, magic 1, attributes 1, timestamp 8, key -1
    assert_eq!(&wrapped.raw[26..30], &(-1i32).to_be_bytes());
    let value_len = u32::from_be_bytes(wrapped.raw[30..34].try_into().unwrap());
    let payload = &wrapped.raw[34..34 + value_len as usize];
    let plain = compression::decompress(
        Compression::Gzip,
        payload,
        &mut compression::Budget::new(1 << 20),
    )
    .unwrap();
    let inner_offsets: Vec<i64> = [0usize, 1, 2]
        .iter()
        .scan(0usize, |pos, _| {
            let off = i64::from_be_bytes(plain[*pos..*pos + 8].try_into().unwrap());
            let size = u32::from_be_bytes(plain[*pos + 8..*pos + 12].try_into().unwrap());
            *pos += 12 + size as usize;
            Some(off)
        })
        .collect();
    assert_eq!(inner_offsets, vec![0, 1, 2]);
    assert_eq!(b.records.len(), 3);
}

#[test]
fn lz4_broken_checksum_is_accepted() {
    // Magic 0 writes the KAFKA-3160 checksum by default; both decode.
    for magic in [0, 1] {
        let set = build(
            json!({"batches": [{"magic": magic, "compression": "lz4", "records": [{"value": "z"}]}]}),
        );
        no_problems(&set);
    }
    let broken = compression::compress(
        Compression::Lz4,
        b"payload",
        CompressOptions {
            lz4_broken_checksum: true,
            ..Default::default()
        },
    )
    .unwrap();
    let correct =
        compression::compress(Compression::Lz4, b"payload", CompressOptions::default()).unwrap();
    assert_ne!(broken[6], correct[6]);
    // A magic 2 batch carrying a broken-checksum frame still decodes.
    let set = build(
        json!([{"compression": "lz4", "lz4_broken_checksum": true, "records": [{"value": "z"}]}]),
    );
    no_problems(&set);
}

#[test]
fn xerial_and_raw_snappy_batches_both_decode() {
    for framing in ["xerial", "raw"] {
        let set = build(
            json!([{"compression": "snappy", "snappy_framing": framing, "records": sample_records()}]),
        );
        no_problems(&set);
        assert_eq!(set.record_count(), 4);
        let xerial = set.raw[61..].starts_with(&[0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0]);
        assert_eq!(xerial, framing == "xerial");
    }
}

#[test]
fn undecoded_keeps_raw_only() {
    let built = build(json!([{"records": [{"value": "v"}]}]));
    let set = RecordSet::undecoded(built.raw.clone());
    assert!(!set.decoded);
    assert_eq!(set.record_count(), 0);
    assert_eq!(
        serde_json::to_value(&set).unwrap(),
        json!({"undecoded_bytes": built.raw.len()})
    );
}

#[test]
fn keys_and_values_are_zero_copy_slices_of_raw() {
    let set = build(json!([{"records": [{"key": "key", "value": "value"}]}]));
    let raw = set.raw.as_ptr_range();
    let value = set.batches[0].record(0).unwrap().value().unwrap();
    assert!(raw.contains(&value.as_ptr()));
}

/// A record set with one entry of every kind, for the damage tests.
fn mixed_set() -> Bytes {
    build(json!([
        {"records": sample_records()},
        {"compression": "gzip", "records": sample_records()},
        {"compression": "lz4", "records": [{"value": "l"}]},
        {"compression": "snappy", "records": [{"value": "s"}]},
        {"compression": "zstd", "records": [{"value": "z"}]},
        {"control": true, "records": [{"control": {"type": "abort"}}]},
        {"magic": 1, "compression": "gzip", "records": [{"key": "a", "value": "b"}, {"value": "c"}]},
        {"magic": 0, "records": [{"key": "a", "value": "b"}]},
    ]))
    .raw
}

#[test]
fn every_byte_mutated_or_truncated_never_panics() {
    let raw = mixed_set();
    let limits = Limits {
        max_decompressed: 1 << 20,
    };
    let check = |bytes: Vec<u8>| {
        let set = RecordSet::decode(Bytes::from(bytes), &limits);
        let _ = serde_json::to_string(&set).unwrap();
        let _ = set.problems().count() + set.record_count();
    };
    each_damaged(&raw, check);
}

/// Hands `check` every copy of `raw` with one byte flipped (three ways)
/// and every prefix and suffix of it.
fn each_damaged(raw: &[u8], mut check: impl FnMut(Vec<u8>)) {
    for i in 0..raw.len() {
        for x in [0x01u8, 0x80, 0xff] {
            let mut m = raw.to_vec();
            m[i] ^= x;
            check(m);
        }
        check(raw[..i].to_vec());
        check(raw[i..].to_vec());
    }
}

#[test]
fn random_multi_byte_damage_never_panics() {
    // xorshift: deterministic, no dependency.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let raw = mixed_set();
    let limits = Limits {
        max_decompressed: 1 << 20,
    };
    for _ in 0..3000 {
        let mut m = raw.to_vec();
        for _ in 0..1 + next() % 8 {
            let i = usize::try_from(next() % m.len() as u64).unwrap();
            m[i] = next().to_le_bytes()[0];
        }
        let set = RecordSet::decode(Bytes::from(m), &limits);
        let _ = serde_json::to_string(&set).unwrap();
    }
}

#[test]
fn record_with_unread_bytes_is_an_error_and_the_next_record_still_decodes() {
    let mut raw = build(json!([{"records": [{"value": "ab"}, {"value": "cd"}]}]))
        .raw
        .to_vec();
    // First record: length 8 (0x10), ..., value length 2 (0x04) "ab", 0
    // headers. Shrink the value to 1 byte: one byte is left unread.
    assert_eq!(&raw[61..70], &[0x10, 0, 0, 0, 1, 0x04, b'a', b'b', 0]);
    raw[66] = 0x02;
    raw[68] = 0;
    let crc = crc32c::crc32c(&raw[21..]);
    raw[17..21].copy_from_slice(&crc.to_be_bytes());
    let set = decode(&raw);
    let b = &set.batches[0];
    assert_eq!(b.errors.len(), 1, "{:?}", b.errors);
    assert!(
        b.errors[0].contains("record 0 at byte 61: record at byte 69: 1 unread bytes at the end"),
        "{}",
        b.errors[0]
    );
    assert_eq!(b.iter().len(), 1);
    assert_eq!(b.record(0).unwrap().value(), Some(&b"cd"[..]));
}

#[test]
fn negative_record_count_is_an_error() {
    let set = build(json!([{"record_count": -1, "records": [{"value": "x"}]}]));
    let problems: Vec<&str> = set.problems().collect();
    assert!(
        problems
            .iter()
            .any(|p| p.contains("records count -1 is negative")),
        "{problems:?}"
    );
    assert!(
        problems.iter().any(|p| p.contains("follow the 0 records")),
        "{problems:?}"
    );
}

#[test]
fn legacy_truncated_tail_and_nested_compression() {
    let full = build(json!([{"magic": 0, "records": [{"value": "a"}, {"value": "b"}]}]));
    let set = decode(&full.raw[..full.raw.len() - 3]);
    assert_eq!(set.batches.len(), 1);
    assert_eq!(set.problems().count(), 0);
    assert_eq!(set.partial_tail_bytes(), full.batches[1].size - 3);

    // An inner message claiming compression is reported, not recursed into.
    let set = build(
        json!([{"magic": 1, "compression": "gzip", "records": [{"value": "a", "attributes": 1}]}]),
    );
    let problem = set.problems().next().unwrap();
    assert!(problem.contains("inner message 0 at byte 0 of the decompressed message set: is itself compressed (gzip)"), "{problem}");
    assert_eq!(set.record_count(), 1);
}

#[test]
fn decoded_json_of_a_mixed_set_rebuilds_the_same_records() {
    let set = decode(&mixed_set());
    no_problems(&set);
    let rebuilt = build(serde_json::to_value(&set).unwrap());
    no_problems(&rebuilt);
    assert_eq!(rebuilt.batches.len(), set.batches.len());
    for (a, b) in rebuilt.batches.iter().zip(&set.batches) {
        assert_eq!(flat_batch(a), flat_batch(b));
        if a.compression() == Compression::None {
            assert_eq!(a.crc, b.crc);
        }
    }
}

// ---- interoperability with the kafka-protocol crate --------------------------

fn kp_records() -> Vec<kafka_protocol::records::Record> {
    use kafka_protocol::protocol::StrBytes;
    use kafka_protocol::records::{Record as KpRecord, TimestampType as KpTs};
    (0..50)
        .map(|i| {
            let mut headers = kafka_protocol::indexmap::IndexMap::new();
            headers.insert(
                StrBytes::from_static_str("h"),
                Some(Bytes::from(format!("hv{i}"))),
            );
            KpRecord {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id: 77,
                producer_epoch: 1,
                timestamp_type: KpTs::Creation,
                offset: 1000 + i,
                sequence: 5 + i32::try_from(i).unwrap(),
                timestamp: 1_700_000_000_000 + i,
                key: if i % 3 == 0 {
                    None
                } else {
                    Some(Bytes::from(format!("key-{i}")))
                },
                value: Some(Bytes::from(format!("value {i} ").repeat(20))),
                headers,
            }
        })
        .collect()
}

const KP_CODECS: [(kafka_protocol::records::Compression, Compression); 5] = [
    (
        kafka_protocol::records::Compression::None,
        Compression::None,
    ),
    (
        kafka_protocol::records::Compression::Gzip,
        Compression::Gzip,
    ),
    (
        kafka_protocol::records::Compression::Snappy,
        Compression::Snappy,
    ),
    (kafka_protocol::records::Compression::Lz4, Compression::Lz4),
    (
        kafka_protocol::records::Compression::Zstd,
        Compression::Zstd,
    ),
];

#[test]
fn batches_from_kafka_protocol_crate_decode() {
    use kafka_protocol::records::{RecordBatchEncoder, RecordEncodeOptions};
    let records = kp_records();
    for (kp, ours) in KP_CODECS {
        let mut buf = bytes::BytesMut::new();
        let opts = RecordEncodeOptions {
            version: 2,
            compression: kp,
        };
        RecordBatchEncoder::encode(&mut buf, &records, &opts).unwrap();
        let set = decode(&buf);
        no_problems(&set);
        let b = &set.batches[0];
        assert_eq!(b.compression(), ours);
        assert_eq!(
            (b.producer_id, b.producer_epoch, b.base_sequence),
            (77, 1, 5)
        );
        assert_eq!(b.records.len(), records.len(), "{ours}");
        for (r, want) in b.iter().zip(&records) {
            assert_eq!(r.offset(), want.offset);
            assert_eq!(r.timestamp(), want.timestamp);
            assert_eq!(r.key_bytes(), want.key);
            assert_eq!(r.value_bytes(), want.value);
            assert_eq!(r.headers().next().unwrap().1, want.headers[0].as_deref());
        }
        // The uncompressed encoding is byte-identical to ours.
        if ours == Compression::None {
            let rebuilt = build(serde_json::to_value(&set).unwrap());
            assert_eq!(rebuilt.raw, set.raw);
        }
    }
}

#[test]
fn our_batches_decode_in_kafka_protocol_crate() {
    use kafka_protocol::records::RecordBatchDecoder;
    for (_, ours) in KP_CODECS {
        let set = build(
            json!([{"compression": ours.name().unwrap(), "base_offset": 5, "records": sample_records()}]),
        );
        let mut buf = set.raw.clone();
        let decoded = RecordBatchDecoder::decode(&mut buf).unwrap();
        assert_eq!(decoded.records.len(), 4, "{ours}");
        assert_eq!(decoded.records[3].offset, 8);
        assert_eq!(
            decoded.records[1].value.as_deref(),
            Some(&[0u8, 0xff, 0x80][..])
        );
    }
}

/// Decode throughput on uncompressed batches of a few shapes. Run with
/// `cargo test --release --lib records::tests::throughput -- --ignored --nocapture`.
#[test]
#[ignore]
fn throughput() {
    type Shape = (&'static str, fn(usize) -> Value);
    let shapes: [Shape; 3] = [
        (
            "~140-byte records",
            |i| json!({"key": format!("key-{i}"), "value": "x".repeat(100 + i % 50)}),
        ),
        (
            "~150-byte records, 1 header",
            |i| json!({"key": format!("key-{i}"), "value": "x".repeat(100 + i % 50), "headers": [{"key": "trace", "value": "abc"}]}),
        ),
        (
            "~30-byte records",
            |i| json!({"key": format!("k{i}"), "value": "x".repeat(10 + i % 10)}),
        ),
    ];
    println!(
        "Record is {} bytes, HeaderSpan {}",
        std::mem::size_of::<Record>(),
        std::mem::size_of::<HeaderSpan>()
    );
    for (name, make) in shapes {
        let records: Vec<Value> = (0..1000).map(make).collect();
        let batch = build(json!([{"records": records}])).raw;
        let raw = Bytes::from(batch.repeat(100));
        let limits = Limits::default();
        let rounds = 20;
        let (mut decode_secs, mut drop_secs) = (0.0, 0.0);
        for _ in 0..rounds {
            let start = std::time::Instant::now();
            let set = std::hint::black_box(RecordSet::decode(raw.clone(), &limits));
            decode_secs += start.elapsed().as_secs_f64();
            assert_eq!(set.record_count(), 100_000);
            let start = std::time::Instant::now();
            drop(set);
            drop_secs += start.elapsed().as_secs_f64();
        }
        let mb = (raw.len() * rounds) as f64 / 1e6;
        println!(
            "{name}: decode {:.0} MB/s, decode+drop {:.0} MB/s",
            mb / decode_secs,
            mb / (decode_secs + drop_secs)
        );
    }
}

#[test]
fn tallies_from_headers_are_what_decoding_the_headers_counts() {
    let raw = build(json!([
        {"records": sample_records()},
        {"compression": "gzip", "records": sample_records()},
        {"crc": 12345, "records": [{"value": "bad"}]},
        {"compression": "zstd", "records": [{"value": "z"}]},
    ]))
    .raw;
    let counted = |bytes: &[u8]| {
        let set = RecordSet::decode_headers_within(
            Bytes::copy_from_slice(bytes),
            &mut Budget::new(1 << 20),
        );
        crate::summary::RecordTally::of(&set)
    };
    let whole = RecordSet::tally_headers(&raw).expect("magic 2 batches are tallied");
    assert_eq!(whole, counted(&raw));
    assert_eq!((whole.batches, whole.bad_crc), (4, 1));
    // Damage of every kind: whenever the headers are tallied, the counts
    // are the decoded ones; a set that cannot be tallied is decoded.
    let mut tallied = 0;
    each_damaged(&raw, |bytes| {
        if let Some(tally) = RecordSet::tally_headers(&bytes) {
            assert_eq!(tally, counted(&bytes), "{bytes:02x?}");
            tallied += 1;
        }
    });
    assert!(tallied > 3 * raw.len(), "only {tallied} tallied");
    // Legacy entries state no count of their messages: decoded instead.
    assert_eq!(RecordSet::tally_headers(&mixed_set()), None);
}
