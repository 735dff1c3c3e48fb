//! Kafka frames: a 4-byte big-endian size, a request or response header, and
//! a message body (protocol guide, "Requests and Responses"). This module
//! cuts frames out of a byte stream and decodes or encodes them whole,
//! choosing the header version each API version uses.

use bytes::Bytes;
use compact_str::CompactString;

use crate::codec::{
    decode_header, decode_message, decode_message_after, encode_message, DecodeError,
    DecodeErrorKind, DecodeOptions, DecodedMessage, EncodeError,
};
use crate::schema::{self, ApiSpec, MessageSpec};
use crate::summary::Summary;
use crate::value::Struct;
use crate::wire::{read_i16, Reader};

/// The size of the length prefix that starts every frame.
pub const LENGTH_PREFIX: usize = 4;

/// The default largest frame kwire accepts: Kafka's own default
/// `socket.request.max.bytes` is 100 MiB.
pub const DEFAULT_MAX_FRAME: usize = 100 * 1024 * 1024;

/// What the next bytes of a stream hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Deframe {
    /// A frame is not complete yet: at least this many more bytes are needed.
    NeedMore(usize),
    /// A complete frame of this many bytes, length prefix included.
    Frame(usize),
    /// The length prefix cannot start a frame (negative, or over the limit).
    Malformed(i32),
}

/// Looks at the start of `buffer` for a complete frame.
pub fn next_frame(buffer: &[u8], max_frame: usize) -> Deframe {
    let Some(prefix) = buffer.get(..LENGTH_PREFIX) else {
        return Deframe::NeedMore(LENGTH_PREFIX - buffer.len());
    };
    let claimed = i32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
    let Ok(size) = usize::try_from(claimed) else {
        return Deframe::Malformed(claimed);
    };
    if size > max_frame {
        return Deframe::Malformed(claimed);
    }
    let total = size + LENGTH_PREFIX;
    if buffer.len() < total {
        Deframe::NeedMore(total - buffer.len())
    } else {
        Deframe::Frame(total)
    }
}

/// Which side of an exchange a frame is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Direction {
    #[default]
    Request,
    Response,
}

/// A decoded frame: header and body trees, complete or partial. (The
/// default, an empty request, is only a place to decode into.)
#[derive(Clone, Debug, Default)]
pub struct DecodedFrame {
    pub direction: Direction,
    pub api_key: i16,
    pub api_version: i16,
    pub correlation_id: Option<i32>,
    pub header_version: i16,
    /// The version the body was decoded at: `api_version`, except for an
    /// ApiVersions response that fell back to v0 (see `decode_response`).
    pub body_version: i16,
    /// The header's tree: empty when it was skimmed (`DecodeOptions::skim`)
    /// and well formed.
    pub header: Struct,
    /// The header's client id, for request headers that have one.
    pub client_id: Option<CompactString>,
    /// None when the body could not be started (unknown API or version).
    pub body: Option<Struct>,
    /// Where the body starts in `raw`, after the length prefix and the
    /// header: [`DecodedFrame::body_bytes`] are the rest of `raw`.
    pub body_start: usize,
    /// The frame as it was decoded, length prefix included: a view of the
    /// buffer it was cut from, so it costs no copy. It holds the body bytes,
    /// kept whole for hex views and for bodies not decoded. The TUI keeps it
    /// instead of the trees and decodes again on demand. Where secrets are
    /// hidden, only the header's bytes remain.
    pub raw: Bytes,
    /// Bytes after a complete body (a violation), kept for re-encoding.
    pub trailing: Bytes,
    pub size: usize,
    pub error: Option<Box<DecodeError>>,
    /// Protocol violations that did not stop decoding (see
    /// `codec::DecodedMessage::violations`).
    pub violations: Vec<DecodeError>,
    /// What the body is about, when it was skimmed (`DecodeOptions::skim`):
    /// `body` then holds only the top-level numbers in `codec::SKIM_KEEPS`
    /// (or, where the skim gave up, the whole tree).
    pub summary: Option<Summary>,
    /// The body's JSON text, when it was skimmed with
    /// `DecodeOptions::json`: what `body.write_json` would have written,
    /// had the tree been built.
    pub body_json: Option<Vec<u8>>,
    /// The session decoded this frame for lines only, its body perhaps not
    /// at all (`AnalyzerOptions::json_later`): `session::decode_for_json`
    /// decodes it again, into JSON.
    pub json_later: bool,
}

impl DecodedFrame {
    pub fn api(&self) -> Option<&'static ApiSpec> {
        schema::api(self.api_key)
    }

    /// What the frame is about, taken out: the summary gathered while its
    /// body was skimmed, or else its tree's; `None` without a body.
    pub fn take_summary(&mut self) -> Option<Summary> {
        match (self.summary.take(), &self.body) {
            (Some(skimmed), _) => Some(skimmed),
            (None, Some(body)) => Some(Summary::of_tree(body)),
            (None, None) => None,
        }
    }

    /// `Produce`, `ApiKey(123)` for a key not in the tables, or `unknown API`
    /// (key -1) when it could not be told.
    pub fn api_name(&self) -> String {
        api_name(self.api_key)
    }

    pub fn client_id(&self) -> Option<&str> {
        self.client_id.as_deref()
    }

    /// The body's bytes as kept in `raw` (none where secrets are hidden).
    pub fn body_bytes(&self) -> &[u8] {
        self.raw.get(self.body_start..).unwrap_or_default()
    }

    /// `Produce v9 request`.
    pub fn context(&self) -> String {
        let side = match self.direction {
            Direction::Request => "request",
            Direction::Response => "response",
        };
        if self.body_version != self.api_version {
            return format!(
                "{} v{} {side} (v{} body)",
                self.api_name(),
                self.api_version,
                self.body_version
            );
        }
        format!("{} v{} {side}", self.api_name(), self.api_version)
    }
}

pub fn api_name(api_key: i16) -> String {
    ApiName(api_key).to_string()
}

/// Displays as `Produce`, or `ApiKey(123)` for an unknown key: for writers
/// that should not allocate a `String` per frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ApiName(pub i16);

impl std::fmt::Display for ApiName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match schema::api(self.0) {
            Some(api) => f.pad(api.name),
            // A response whose request is missing and whose API could not
            // be inferred.
            None if self.0 < 0 => f.pad("unknown API"),
            None => f.pad(&format!("ApiKey({})", self.0)),
        }
    }
}

/// Decodes a request frame (length prefix included). Decoding goes as far as
/// it can; the first problem is in `error`.
pub fn decode_request(frame: Bytes, options: &DecodeOptions) -> DecodedFrame {
    let mut decoded = DecodedFrame::default();
    decode_request_into(&mut decoded, frame, options);
    decoded
}

/// [`decode_request`] into `out`, which it replaces: for a frame decoded
/// straight into the place that keeps it.
pub fn decode_request_into(out: &mut DecodedFrame, frame: Bytes, options: &DecodeOptions) {
    let api_key = read_i16(&frame, LENGTH_PREFIX).unwrap_or(-1);
    let api_version = read_i16(&frame, LENGTH_PREFIX + 2).unwrap_or(-1);
    let api = schema::api(api_key);
    // An unknown API's header version is a guess: v1 is what every API used
    // before flexible versions.
    let header_version = api.map_or(1, |api| schema::request_header_version(api, api_version));
    decode_frame(
        out,
        frame,
        Direction::Request,
        api_key,
        api_version,
        header_version,
        schema::REQUEST_HEADER,
        api.map(|api| api.request),
        options,
        None,
    )
}

/// Decodes a response frame (length prefix included) to a request of
/// `api_key` at `api_version`.
///
/// A broker that does not support the requested ApiVersions version answers
/// UNSUPPORTED_VERSION in the v0 body layout, so that any client can read it
/// (KIP-511); such a response is decoded at v0 when it does not fit the
/// requested version, and `body_version` says so.
pub fn decode_response(
    frame: Bytes,
    api_key: i16,
    api_version: i16,
    options: &DecodeOptions,
) -> DecodedFrame {
    let mut decoded = DecodedFrame::default();
    decode_response_into(&mut decoded, frame, api_key, api_version, options);
    decoded
}

/// [`decode_response`] into `out`, which it replaces.
pub fn decode_response_into(
    out: &mut DecodedFrame,
    frame: Bytes,
    api_key: i16,
    api_version: i16,
    options: &DecodeOptions,
) {
    decode_response_after(out, frame, api_key, api_version, options, None);
}

/// [`decode_response_into`], the summary gathered after `earlier`, its
/// request's ([`crate::codec::decode_message_after`]): `out.summary` is then
/// what `Summary::then` would make of the two.
pub fn decode_response_after(
    out: &mut DecodedFrame,
    frame: Bytes,
    api_key: i16,
    api_version: i16,
    options: &DecodeOptions,
    earlier: Option<Summary>,
) {
    let api = schema::api(api_key);
    let header_version = api.map_or(0, |api| schema::response_header_version(api, api_version));
    let decode_at = |out: &mut DecodedFrame, frame: Bytes, version: i16, earlier| {
        decode_frame(
            out,
            frame,
            Direction::Response,
            api_key,
            version,
            header_version,
            schema::RESPONSE_HEADER,
            api.map(|api| api.response),
            options,
            earlier,
        )
    };
    // An ApiVersions response may be decoded twice (below): the earlier
    // summary joins the decode that stands.
    let may_fall_back = api_key == schema::API_VERSIONS_KEY && api_version > 0;
    let (now, at_the_end) = if may_fall_back {
        (None, earlier)
    } else {
        (earlier, None)
    };
    decode_at(out, frame, api_version, now);
    let unsupported = out.body.as_ref().and_then(|body| body.int("error_code"))
        == Some(i64::from(UNSUPPORTED_VERSION));
    if may_fall_back && out.error.is_some() && unsupported {
        // `raw` is the whole frame, as secrets are hidden later.
        let mut fallback = DecodedFrame::default();
        decode_at(&mut fallback, out.raw.clone(), 0, None);
        if fallback.error.is_none() {
            *out = DecodedFrame {
                api_version,
                body_version: 0,
                ..fallback
            };
        }
    }
    if let Some(earlier) = at_the_end {
        put_after(earlier, out);
    }
}

/// Makes `decoded`'s summary `earlier`'s followed by its own (from its
/// tree where it was not skimmed), as `Exchange::settle_summary` combines
/// a request's and a response's.
fn put_after(earlier: Summary, decoded: &mut DecodedFrame) {
    let own = decoded.take_summary().unwrap_or_default();
    decoded.summary = Some(earlier.then(own));
}

/// Kafka's UNSUPPORTED_VERSION error code.
const UNSUPPORTED_VERSION: i16 = 35;

#[allow(clippy::too_many_arguments)]
fn decode_frame(
    out: &mut DecodedFrame,
    frame: Bytes,
    direction: Direction,
    api_key: i16,
    api_version: i16,
    header_version: i16,
    header_spec: &MessageSpec,
    body_spec: Option<&MessageSpec>,
    options: &DecodeOptions,
    mut earlier: Option<Summary>,
) {
    let size = frame.len();
    *out = DecodedFrame {
        direction,
        api_key,
        api_version,
        correlation_id: None,
        header_version,
        body_version: api_version,
        header: Struct::default(),
        client_id: None,
        body: None,
        body_start: usize::MAX,
        trailing: Bytes::new(),
        // The reader's bytes, given back when it is done.
        raw: Bytes::new(),
        size,
        error: None,
        violations: Vec::new(),
        summary: None,
        body_json: None,
        json_later: false,
    };
    let decoded = out;
    let mut errors: Vec<DecodeError> = Vec::new();
    let mut reader = Reader::new(frame);
    match reader.i32() {
        Ok(claimed) if i64::from(claimed) != (size - LENGTH_PREFIX) as i64 => {
            errors.push(DecodeError::new(
                0,
                DecodeErrorKind::LengthMismatch {
                    claimed: i64::from(claimed),
                    actual: size - LENGTH_PREFIX,
                },
            ));
        }
        Ok(_) => {}
        Err(error) => errors.push(error.into()),
    }
    // Headers are small: whole trees, or when skimmed just the two fields
    // the Kafka layer reads.
    let header = decode_header(&mut reader, header_spec, header_version, options);
    decoded.correlation_id = header.correlation_id;
    decoded.client_id = header.client_id;
    // Field by field: the header's message is not moved whole first.
    decoded.header = header.message.body;
    decoded.violations = header.message.violations;
    let header_ok = header.message.error.is_none();
    errors.extend(header.message.error);
    decoded.body_start = reader.offset();
    if header_ok && !options.header_only {
        let start = reader.offset();
        match body_spec {
            None => errors.push(DecodeError::new(
                start,
                DecodeErrorKind::UnknownApiKey(api_key),
            )),
            Some(spec) if !spec.valid.contains(api_version) => {
                let unknown = DecodeError::new(
                    start,
                    DecodeErrorKind::UnknownVersion {
                        version: api_version,
                        min: spec.valid.min,
                        max: spec.valid.max,
                    },
                );
                match decode_newer_body(&reader, spec, api_version, options) {
                    Some((body, trailing)) => {
                        decoded.body_version = spec.valid.max;
                        decoded.body = Some(body.body);
                        decoded.summary = body.summary;
                        decoded.body_json = body.json;
                        decoded.trailing = trailing;
                    }
                    None => errors.push(unknown),
                }
            }
            Some(spec) => {
                let body =
                    decode_message_after(&mut reader, spec, api_version, options, earlier.take());
                decoded.body = Some(body.body);
                decoded.summary = body.summary;
                decoded.body_json = body.json;
                decoded.violations.extend(body.violations);
                let body_failed = body.error.is_some();
                errors.extend(body.error);
                // Bytes after a complete body are a violation, not an error:
                // Kafka's own parser ignores them. They are kept so that the
                // frame re-encodes as it was.
                if !body_failed && !reader.is_empty() {
                    let kind = DecodeErrorKind::TrailingBytes(reader.remaining());
                    decoded
                        .violations
                        .push(DecodeError::new(reader.offset(), kind));
                    decoded.trailing = reader.take_rest();
                }
            }
        }
    }
    decoded.raw = reader.into_bytes();
    // A body that `decode_message_after` did not gather onto the earlier
    // summary (an unknown API, a newer version, a header that failed)
    // takes it here.
    if let Some(earlier) = earlier {
        put_after(earlier, decoded);
    }
    // The context is only written where a problem needs it: most frames
    // have none, and formatting it for each would cost more than decoding
    // a small frame.
    if let Some(error) = errors.into_iter().next() {
        decoded.error = Some(Box::new(error.in_context(decoded.context())));
    }
    if !decoded.violations.is_empty() {
        let context = decoded.context();
        for violation in &mut decoded.violations {
            violation.context = context.clone();
        }
    }
}

/// How many versions past the newest in kwire's definitions a body is still
/// read with the newest layout.
pub const NEWER_VERSION_SLACK: i16 = 3;

/// The body of a version a little newer than kwire's definitions (Metadata
/// v13 from a newer client, say), read with the newest known layout: Kafka
/// adds fields to a new version as tagged fields or at the end, so the
/// known fields usually come first and in order. Only a read without any
/// error or violation counts; the bytes left after it (fields kwire does
/// not know) are kept, so the frame still re-encodes as it was. `None` when
/// the layout does not fit: the body then stays raw.
fn decode_newer_body(
    reader: &Reader,
    spec: &MessageSpec,
    version: i16,
    options: &DecodeOptions,
) -> Option<(DecodedMessage, Bytes)> {
    let newest = spec.valid.max;
    if version <= newest || version > newest.saturating_add(NEWER_VERSION_SLACK) {
        return None;
    }
    let mut reader = reader.clone();
    let body = decode_message(&mut reader, spec, newest, options);
    if body.error.is_some() || !body.violations.is_empty() {
        return None;
    }
    Some((body, reader.take_rest()))
}

/// Encodes a request frame, length prefix included. `header` supplies
/// the correlation id, client id and any header tags.
pub fn encode_request(
    api_key: i16,
    api_version: i16,
    header: &Struct,
    body: &Struct,
) -> Result<Vec<u8>, EncodeError> {
    let api = known_api(api_key)?;
    let mut header = header.clone();
    set_int(&mut header, "request_api_key", api_key);
    set_int(&mut header, "request_api_version", api_version);
    let header_version = schema::request_header_version(api, api_version);
    encode_frame(
        schema::REQUEST_HEADER,
        header_version,
        &header,
        api.request,
        api_version,
        body,
    )
}

/// Encodes a response frame, length prefix included.
pub fn encode_response(
    api_key: i16,
    api_version: i16,
    header: &Struct,
    body: &Struct,
) -> Result<Vec<u8>, EncodeError> {
    let api = known_api(api_key)?;
    let header_version = schema::response_header_version(api, api_version);
    encode_frame(
        schema::RESPONSE_HEADER,
        header_version,
        header,
        api.response,
        api_version,
        body,
    )
}

/// Encodes a decoded frame back to bytes: the round trip of the corpus
/// tests. A body that was not decoded (unknown API or version) is written
/// back from its raw bytes, so every frame whose header decoded round-trips.
pub fn reencode(frame: &DecodedFrame) -> Result<Vec<u8>, EncodeError> {
    let header_spec = match frame.direction {
        Direction::Request => schema::REQUEST_HEADER,
        Direction::Response => schema::RESPONSE_HEADER,
    };
    let mut out = vec![0; LENGTH_PREFIX];
    encode_message(&mut out, header_spec, frame.header_version, &frame.header)?;
    match &frame.body {
        Some(body) => {
            let api = known_api(frame.api_key)?;
            let body_spec = match frame.direction {
                Direction::Request => api.request,
                Direction::Response => api.response,
            };
            encode_message(&mut out, body_spec, frame.body_version, body)?;
            out.extend_from_slice(&frame.trailing);
        }
        None => out.extend_from_slice(frame.body_bytes()),
    }
    set_length_prefix(out)
}

fn known_api(api_key: i16) -> Result<&'static ApiSpec, EncodeError> {
    schema::api(api_key)
        .ok_or_else(|| EncodeError::from_message(format!("unknown API key {api_key}")))
}

fn set_int(header: &mut Struct, name: &'static str, value: i16) {
    match header.get_mut(name) {
        Some(slot) => *slot = crate::value::Value::Int(i64::from(value)),
        None => header.push(name, crate::value::Value::Int(i64::from(value))),
    }
}

fn encode_frame(
    header_spec: &MessageSpec,
    header_version: i16,
    header: &Struct,
    body_spec: &MessageSpec,
    version: i16,
    body: &Struct,
) -> Result<Vec<u8>, EncodeError> {
    let mut out = vec![0; LENGTH_PREFIX];
    encode_message(&mut out, header_spec, header_version, header)?;
    encode_message(&mut out, body_spec, version, body)?;
    set_length_prefix(out)
}

/// Fills in the 4-byte size of a frame built behind a placeholder.
fn set_length_prefix(mut out: Vec<u8>) -> Result<Vec<u8>, EncodeError> {
    let size = i32::try_from(out.len() - LENGTH_PREFIX).map_err(|_| {
        EncodeError::from_message(format!("a frame of {} bytes is too large", out.len()))
    })?;
    out[..LENGTH_PREFIX].copy_from_slice(&size.to_be_bytes());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deframer_tells_need_more_from_malformed() {
        assert_eq!(next_frame(&[0, 0], 100), Deframe::NeedMore(2));
        assert_eq!(next_frame(&[0, 0, 0, 3, 1], 100), Deframe::NeedMore(2));
        assert_eq!(next_frame(&[0, 0, 0, 1, 9, 9], 100), Deframe::Frame(5));
        assert_eq!(
            next_frame(&[0xff, 0xff, 0xff, 0xff], 100),
            Deframe::Malformed(-1)
        );
        assert_eq!(next_frame(&[0, 0, 1, 0], 100), Deframe::Malformed(256));
    }

    const METADATA: i16 = 3;

    /// A Metadata request at the newest known version, its header saying
    /// `version`, with `extra` bytes after the body.
    fn metadata_request_as(version: i16, extra: &[u8]) -> Bytes {
        let api = schema::api(METADATA).expect("Metadata");
        let newest = api.request.valid.max;
        let json = serde_json::json!({"topics": [{"name": "orders"}]});
        let body = crate::codec::message_from_json(api.request, newest, &json).expect("body");
        let mut header = Struct::default();
        header.push("correlation_id", crate::value::Value::Int(7));
        header.push("client_id", crate::value::Value::String("t".into()));
        let mut bytes = encode_request(METADATA, newest, &header, &body).expect("frame");
        bytes[6..8].copy_from_slice(&version.to_be_bytes());
        bytes.extend_from_slice(extra);
        let size = i32::try_from(bytes.len() - LENGTH_PREFIX).expect("small");
        bytes[..LENGTH_PREFIX].copy_from_slice(&size.to_be_bytes());
        Bytes::from(bytes)
    }

    #[test]
    fn a_slightly_newer_version_is_read_with_the_newest_layout_and_round_trips() {
        let newest = schema::api(METADATA).expect("Metadata").request.valid.max;
        let frame = metadata_request_as(newest + 1, &[0, 3]);
        let decoded = decode_request(frame.clone(), &DecodeOptions::default());
        assert!(decoded.error.is_none(), "{:?}", decoded.error);
        assert!(decoded.violations.is_empty());
        assert_eq!(
            (decoded.api_version, decoded.body_version),
            (newest + 1, newest)
        );
        let body = decoded.body.as_ref().expect("a body");
        assert_eq!(
            body.get("topics")
                .map(|topics| format!("{topics:?}").contains("orders")),
            Some(true)
        );
        assert_eq!(&decoded.trailing[..], &[0, 3], "the unknown rest is kept");
        assert_eq!(reencode(&decoded).expect("re-encodes"), frame.to_vec());
        assert!(decoded.context().contains(&format!("(v{newest} body)")));
    }

    #[test]
    fn a_much_newer_version_or_a_misfit_body_stays_raw() {
        let newest = schema::api(METADATA).expect("Metadata").request.valid.max;
        let far = metadata_request_as(newest + 1 + NEWER_VERSION_SLACK, &[]);
        // Within the slack, but the body does not fit the newest layout: a
        // topics count claiming more entries than there are bytes.
        let mut misfit = metadata_request_as(newest + 1, &[]).to_vec();
        // The body: the topics count (1 byte), one topic (id 16, name 7,
        // tags 1), two booleans and the tags byte.
        let body_at = misfit.len() - (1 + 16 + 7 + 1 + 2 + 1);
        misfit[body_at] = 0x7f;
        for frame in [far, Bytes::from(misfit)] {
            let decoded = decode_request(frame.clone(), &DecodeOptions::default());
            assert!(
                matches!(
                    decoded.error.as_ref().map(|error| &error.kind),
                    Some(DecodeErrorKind::UnknownVersion { .. })
                ),
                "{:?}",
                decoded.error
            );
            assert!(decoded.body.is_none());
            assert_eq!(reencode(&decoded).expect("re-encodes"), frame.to_vec());
        }
    }
}
