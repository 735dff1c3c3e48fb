//! An exchange is what kwire shows as one unit: a request and its response,
//! paired by correlation id on one connection, with times, addresses, sizes
//! and a one-line summary (topics and partitions, records, error names).
//! The capture engine builds exchanges; `read`, the TUI and filters use them.

use std::borrow::Cow;
use std::net::SocketAddr;

use crate::frame::DecodedFrame;
pub use crate::summary::{RecordTally, Summary};
use crate::{json, schema};

/// One side of an exchange as it was on the wire.
#[derive(Clone, Debug, Default)]
pub struct Message {
    /// Capture time of the packet that carried the frame's first byte, in
    /// nanoseconds since the Unix epoch.
    pub ts_ns: i64,
    /// The frame, decoded (completely or partially: see `frame.error`).
    pub frame: DecodedFrame,
    /// Bytes of the frame that were not decoded: lost in a capture gap (or
    /// cut by the capture's end), or skipped because the frame was larger
    /// than kwire may buffer. 0 for a whole frame; when not 0, `frame` is
    /// decoded from the bytes kwire kept, its header at least.
    pub missing_bytes: u64,
}

impl Message {
    /// The frame's size on the wire: the bytes kept and those missing.
    pub fn wire_size(&self) -> usize {
        let missing = usize::try_from(self.missing_bytes).unwrap_or(usize::MAX);
        self.frame.size.saturating_add(missing)
    }
}

/// Packet numbers of an exchange: most take two to four packets, held
/// inline.
pub type PacketList = smallvec::SmallVec<[u64; 4]>;

/// How complete an exchange is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExchangeState {
    /// Request and response both seen.
    Complete,
    /// A Produce with acks=0: no response is expected.
    NoResponseExpected,
    /// The capture ended (or the connection closed) before the response.
    ResponseMissing,
    /// The response's request is not in the capture.
    RequestMissing,
}

#[derive(Clone, Debug)]
pub struct Exchange {
    /// Position of the exchange in the capture, from 0.
    pub id: u64,
    /// The connection's index in the capture, from 0.
    pub connection: u32,
    pub client: SocketAddr,
    pub broker: SocketAddr,
    pub api_key: i16,
    pub api_version: i16,
    pub correlation_id: i32,
    pub request: Option<Box<Message>>,
    pub response: Option<Box<Message>>,
    pub state: ExchangeState,
    /// The response's API and version were inferred, not read from its
    /// request (which is not in the capture).
    pub inferred: bool,
    /// Packet numbers (from 0) that carried this exchange's bytes.
    pub packets: PacketList,
    /// Bytes of this exchange were lost to a capture gap: a message is
    /// partial (see `Message::missing_bytes`) or was not seen at all.
    pub lost: bool,
    /// Decoded SASL tokens: for SaslAuthenticate, and for the raw tokens
    /// that follow a SaslHandshake v0 (see `session`).
    pub sasl: Option<Box<crate::sasl::SaslExchange>>,
    /// What the exchange is about, when its messages were skimmed
    /// (`DecodeOptions::skim`) rather than decoded into trees; see
    /// [`Exchange::summary`].
    pub summary: Option<Summary>,
}

impl Exchange {
    pub fn api_name(&self) -> String {
        crate::frame::api_name(self.api_key)
    }

    /// Time of the request, or of the response when the request is missing.
    pub fn ts_ns(&self) -> i64 {
        self.request
            .as_ref()
            .or(self.response.as_ref())
            .map_or(0, |message| message.ts_ns)
    }

    pub fn latency_ns(&self) -> Option<i64> {
        match (&self.request, &self.response) {
            (Some(request), Some(response)) => Some(response.ts_ns - request.ts_ns),
            _ => None,
        }
    }

    pub fn client_id(&self) -> Option<&str> {
        self.request
            .as_ref()
            .and_then(|message| message.frame.client_id())
    }

    /// The request frame's size on the wire, bytes lost included.
    pub fn request_size(&self) -> Option<usize> {
        self.request.as_ref().map(|message| message.wire_size())
    }

    /// The response frame's size on the wire, bytes lost included.
    pub fn response_size(&self) -> Option<usize> {
        self.response.as_ref().map(|message| message.wire_size())
    }

    /// The first decode error of either side.
    pub fn decode_error(&self) -> Option<String> {
        [&self.request, &self.response]
            .into_iter()
            .flatten()
            .find_map(|message| message.frame.error.as_ref().map(ToString::to_string))
    }

    /// What the exchange is about, request first: gathered while its
    /// messages were skimmed, or else from their decoded trees.
    pub fn summary(&self) -> Cow<'_, Summary> {
        if let Some(summary) = &self.summary {
            return Cow::Borrowed(summary);
        }
        let mut summary = Summary::default();
        for message in [&self.request, &self.response].into_iter().flatten() {
            match (&message.frame.summary, &message.frame.body) {
                (Some(skimmed), _) => summary.merge(skimmed),
                (None, Some(body)) => summary.add_tree(body),
                (None, None) => {}
            }
        }
        Cow::Owned(summary)
    }

    /// Moves the summaries of skimmed messages into the exchange's own,
    /// request first, so that [`Exchange::summary`] needs no copy.
    pub fn settle_summary(&mut self) {
        let messages = [&mut self.request, &mut self.response];
        if !messages
            .iter()
            .any(|message| message.as_ref().is_some_and(|m| m.frame.summary.is_some()))
        {
            return;
        }
        let mut settled: Option<Summary> = None;
        for message in messages.into_iter().flatten() {
            let Some(part) = message.frame.take_summary() else {
                continue;
            };
            settled = Some(match settled {
                Some(first) => first.then(part),
                None => part,
            });
        }
        self.summary = settled;
    }
}

/// Appends `n` in decimal, as `{n}` would, without the formatting
/// machinery (which costs more than the digits on a hot line).
pub fn push_int(out: &mut String, n: i64) {
    if n < 0 {
        out.push('-');
    }
    push_uint(out, n.unsigned_abs());
}

/// Appends `n` in decimal, as `{n}` would.
#[inline]
pub fn push_uint(out: &mut String, n: u64) {
    // SAFETY: the writer appends ASCII digits only.
    json::write_uint(unsafe { out.as_mut_vec() }, n);
}

/// Appends `n` in decimal with leading zeros up to `width` digits, as
/// `{n:0width$}` would.
#[inline]
pub fn push_uint_zero_padded(out: &mut String, n: u64, width: usize) {
    // SAFETY: the writer appends ASCII digits only.
    json::write_uint_zero_padded(unsafe { out.as_mut_vec() }, n, width);
}

pub fn error_name(code: i16) -> String {
    ErrorName(code).to_string()
}

/// Displays as `UNKNOWN_TOPIC_OR_PARTITION`, or `ERROR(123)` for an unknown
/// code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ErrorName(pub i16);

impl std::fmt::Display for ErrorName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match schema::error(self.0) {
            Some(error) => f.write_str(error.name),
            None => write!(f, "ERROR({})", self.0),
        }
    }
}
