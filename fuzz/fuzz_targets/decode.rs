//! Fuzz target over kwire's frame decoder: a thin wrapper around
//! `frame::decode_request` and `frame::decode_response`.
//!
//! Input layout: bytes 0..2 are the response's API key and bytes 2..4 its
//! version (big-endian i16, as `fuzz/seed.sh` writes them); the rest is the
//! frame, length prefix included. A key or version kwire does not know is
//! folded onto a known one, so mutations of the selector stay useful.
//!
//! Oracles: no panic, bounded memory (libFuzzer's -rss_limit_mb and
//! -malloc_limit_mb), and a round trip: a frame that decodes without error
//! must re-encode to its own bytes, or, when it used an encoding Kafka reads
//! but never writes, to canonical bytes of the same message (`round_trip`).
//!
//! Running it (cargo-fuzz needs nightly features; a stable toolchain lends
//! them with RUSTC_BOOTSTRAP=1):
//!
//! ```text
//! cargo install cargo-fuzz
//! fuzz/seed.sh                      # corpus/frames -> fuzz/corpus/decode
//! cd fuzz && cargo +nightly fuzz run decode -- -max_total_time=3600 \
//!     -rss_limit_mb=2048 -max_len=65536
//! ```
//!
//! A finding goes into tests/hostile_input.rs (`FUZZ_REGRESSIONS`) as hex.
#![no_main]

use bytes::Bytes;
use kwire::codec::DecodeOptions;
use kwire::frame::{self, DecodedFrame, Direction};
use kwire::records::Limits;
use kwire::schema;
use kwire::value::{Struct, Value};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((selector, frame_bytes)) = data.split_first_chunk::<4>() else {
        return;
    };
    let (api_key, api_version) = select(*selector);
    let options = DecodeOptions {
        records: kwire::codec::RecordsMode::Full,
        limits: Limits {
            max_decompressed: 1 << 20,
        },
    };
    let frame_bytes = Bytes::copy_from_slice(frame_bytes);
    let request = frame::decode_request(frame_bytes.clone(), &options);
    round_trip(&request, &frame_bytes, &options);
    let response = frame::decode_response(frame_bytes.clone(), api_key, api_version, &options);
    round_trip(&response, &frame_bytes, &options);
    // The fast path must agree with the full decode on the message tree.
    let shallow = DecodeOptions {
        records: kwire::codec::RecordsMode::Raw,
        ..options
    };
    let undecoded = frame::decode_response(frame_bytes.clone(), api_key, api_version, &shallow);
    assert_eq!(response.error, undecoded.error);
    round_trip(&undecoded, &frame_bytes, &shallow);
});

/// The API key and version for the response decode: taken as they are when
/// kwire knows them, else folded onto the known range.
fn select(selector: [u8; 4]) -> (i16, i16) {
    let raw_key = i16::from_be_bytes([selector[0], selector[1]]);
    let raw_version = i16::from_be_bytes([selector[2], selector[3]]);
    let api = schema::api(raw_key).unwrap_or_else(|| {
        let index = usize::from(raw_key.unsigned_abs()) % schema::APIS.len();
        &schema::APIS[index]
    });
    let valid = api.response.valid;
    let version = if valid.contains(raw_version) {
        raw_version
    } else {
        let span = i32::from(valid.max) - i32::from(valid.min) + 1;
        let offset = i32::from(raw_version).rem_euclid(span.max(1));
        i16::try_from(i32::from(valid.min) + offset).unwrap_or(valid.min)
    };
    (api.key, version)
}

/// The round-trip oracle. Kafka's readers accept some encodings its
/// writers never produce (a bool byte other than 0 and 1, a present-marker
/// of a nullable struct other than 1, an overlong varint, tagged fields out
/// of tag order), and kwire decodes them as Kafka does, so a frame that uses
/// one re-encodes to different, canonical bytes. Such a frame must still
/// re-encode to a frame that decodes to the same message, and canonical
/// bytes must round-trip exactly.
fn round_trip(decoded: &DecodedFrame, original: &[u8], options: &DecodeOptions) {
    if decoded.error.is_some() {
        return;
    }
    let encoded = reencode(decoded);
    if encoded == original {
        return;
    }
    let again = redecode(decoded, &encoded, options);
    if let Some(error) = &again.error {
        panic!(
            "{} re-encodes to {} bytes that do not decode: {error}",
            decoded.context(),
            encoded.len()
        );
    }
    assert_eq!(
        canonical(decoded),
        canonical(&again),
        "{} re-encodes to {} bytes instead of {} (first difference at byte {}) \
         and the message changed",
        decoded.context(),
        encoded.len(),
        original.len(),
        first_difference(&encoded, original)
    );
    let fixed = reencode(&again);
    assert!(
        fixed == encoded,
        "{}: canonical bytes do not round-trip, first difference at byte {}",
        decoded.context(),
        first_difference(&fixed, &encoded)
    );
}

fn reencode(decoded: &DecodedFrame) -> Vec<u8> {
    frame::reencode(decoded).unwrap_or_else(|error| {
        panic!(
            "{} decoded but does not re-encode: {error}",
            decoded.context()
        )
    })
}

fn redecode(decoded: &DecodedFrame, bytes: &[u8], options: &DecodeOptions) -> DecodedFrame {
    let bytes = Bytes::copy_from_slice(bytes);
    match decoded.direction {
        Direction::Request => frame::decode_request(bytes, options),
        Direction::Response => {
            frame::decode_response(bytes, decoded.api_key, decoded.api_version, options)
        }
    }
}

/// The message as text with every struct's fields and unknown tags in a
/// fixed order, so that tag order on the wire does not count. Debug text
/// compares NaN floats by their spelling and record sets by their bytes.
fn canonical(decoded: &DecodedFrame) -> String {
    let mut header = decoded.header.clone();
    let mut body = decoded.body.clone();
    sort_struct(&mut header);
    if let Some(body) = body.as_mut() {
        sort_struct(body);
    }
    format!("{header:?} {body:?}")
}

fn sort_struct(value: &mut Struct) {
    value.fields.sort_by_key(|field| field.name);
    value.unknown_tags.sort_by_key(|tag| tag.tag);
    for field in &mut value.fields {
        sort_value(&mut field.value);
    }
}

fn sort_value(value: &mut Value) {
    match value {
        Value::Struct(inner) => sort_struct(inner),
        Value::Array(items) => items.iter_mut().for_each(sort_value),
        _ => {}
    }
}

fn first_difference(left: &[u8], right: &[u8]) -> usize {
    left.iter()
        .zip(right)
        .position(|(a, b)| a != b)
        .unwrap_or(left.len().min(right.len()))
}
