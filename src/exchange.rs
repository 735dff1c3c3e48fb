//! An exchange is what kwire shows as one unit: a request and its response,
//! paired by correlation id on one connection, with times, addresses, sizes
//! and a one-line summary (topics and partitions, records, error names).
//! The capture engine builds exchanges; `read`, the TUI and filters use them.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::SocketAddr;

use crate::frame::DecodedFrame;
use crate::schema;
use crate::value::{Struct, Value};

/// One side of an exchange as it was on the wire.
#[derive(Clone, Debug)]
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
    pub request: Option<Message>,
    pub response: Option<Message>,
    pub state: ExchangeState,
    /// The response's API and version were inferred, not read from its
    /// request (which is not in the capture).
    pub inferred: bool,
    /// Packet numbers (from 0) that carried this exchange's bytes.
    pub packets: Vec<u64>,
    /// Bytes of this exchange were lost to a capture gap: a message is
    /// partial (see `Message::missing_bytes`) or was not seen at all.
    pub lost: bool,
    /// Decoded SASL tokens: for SaslAuthenticate, and for the raw tokens
    /// that follow a SaslHandshake v0 (see `session`).
    pub sasl: Option<crate::sasl::SaslExchange>,
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
        self.request.as_ref().map(Message::wire_size)
    }

    /// The response frame's size on the wire, bytes lost included.
    pub fn response_size(&self) -> Option<usize> {
        self.response.as_ref().map(Message::wire_size)
    }

    /// The first decode error of either side.
    pub fn decode_error(&self) -> Option<String> {
        [&self.request, &self.response]
            .into_iter()
            .flatten()
            .find_map(|message| message.frame.error.as_ref().map(ToString::to_string))
    }

    pub fn summary(&self) -> Summary {
        let mut summary = Summary::default();
        for message in [&self.request, &self.response].into_iter().flatten() {
            if let Some(body) = &message.frame.body {
                summary.add_tree(body);
            }
        }
        summary
    }
}

/// What an exchange is about, gathered from both of its trees.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Summary {
    /// Topic name (or topic id) to the partitions named under it.
    pub topics: BTreeMap<String, Vec<i32>>,
    /// Per topic-partition: records and their bytes (keys plus values).
    pub records: BTreeMap<(String, i32), RecordTally>,
    /// Non-zero error codes, each once, in order of appearance.
    pub errors: Vec<i16>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecordTally {
    pub batches: u64,
    pub records: u64,
    /// Bytes of the record sets on the wire.
    pub bytes: u64,
}

/// Field names that hold a topic's name or id in the message definitions.
const TOPIC_FIELDS: &[&str] = &["name", "topic", "topic_name", "topic_id"];
/// Field names that hold a partition index.
const PARTITION_FIELDS: &[&str] = &["partition_index", "index", "partition", "partition_id"];

impl Summary {
    pub fn record_count(&self) -> u64 {
        self.records.values().map(|tally| tally.records).sum()
    }

    pub fn record_bytes(&self) -> u64 {
        self.records.values().map(|tally| tally.bytes).sum()
    }

    /// Error names, `NONE` left out: `UNKNOWN_TOPIC_OR_PARTITION`.
    pub fn error_names(&self) -> Vec<String> {
        self.errors.iter().map(|code| error_name(*code)).collect()
    }

    fn add_tree(&mut self, tree: &Struct) {
        self.walk(tree, None);
    }

    /// Walks a tree, remembering the nearest enclosing topic so that
    /// partitions and record sets below it are counted against it.
    fn walk(&mut self, tree: &Struct, topic: Option<&str>) {
        let own_topic = topic_of(tree);
        let topic = own_topic.as_deref().or(topic);
        let partition = topic.and_then(|_| partition_of(tree));
        if let (Some(topic), Some(partition)) = (topic, partition) {
            self.note_topic(topic, Some(partition));
        } else if let Some(topic) = own_topic.as_deref() {
            self.note_topic(topic, None);
        }
        for field in &tree.fields {
            match &field.value {
                Value::Int(code) => {
                    if *code != 0 && is_error_field(field.name) {
                        if let Ok(code) = i16::try_from(*code) {
                            if !self.errors.contains(&code) {
                                self.errors.push(code);
                            }
                        }
                    }
                }
                value if holds_summary(value) => self.walk_value(value, topic, partition),
                _ => {}
            }
        }
    }

    /// Lists `topic`, and `partition` under it, each once; the name is
    /// copied only when it is new.
    fn note_topic(&mut self, topic: &str, partition: Option<i32>) {
        match self.topics.get_mut(topic) {
            Some(partitions) => {
                if let Some(partition) = partition {
                    if !partitions.contains(&partition) {
                        partitions.push(partition);
                    }
                }
            }
            None => {
                self.topics
                    .insert(topic.to_owned(), partition.into_iter().collect());
            }
        }
    }

    fn walk_value(&mut self, value: &Value, topic: Option<&str>, partition: Option<i32>) {
        match value {
            Value::Struct(inner) => self.walk(inner, topic),
            Value::Array(items) => items
                .iter()
                .filter(|item| holds_summary(item))
                .for_each(|item| self.walk_value(item, topic, partition)),
            Value::Records(records) => {
                let key = (topic.unwrap_or("?").to_owned(), partition.unwrap_or(-1));
                let tally = self.records.entry(key).or_default();
                tally.batches += records.batches.len() as u64;
                tally.records += records.record_count() as u64;
                tally.bytes += records.raw.len() as u64;
            }
            _ => {}
        }
    }

    /// `orders[0,1] payments[3]`, then records and errors.
    pub fn line(&self) -> String {
        let mut out = String::new();
        self.write_line(&mut out);
        out
    }

    /// Appends [`Summary::line`] to `out`, without allocating on the way.
    pub fn write_line(&self, out: &mut String) {
        let start = out.len();
        for (topic, partitions) in &self.topics {
            if out.len() > start {
                out.push(' ');
            }
            out.push_str(topic);
            if !partitions.is_empty() {
                out.push('[');
                for (index, partition) in partitions.iter().enumerate() {
                    if index > 0 {
                        out.push(',');
                    }
                    push_int(out, i64::from(*partition));
                }
                out.push(']');
            }
        }
        let records = self.record_count();
        if records > 0 || !self.records.is_empty() {
            out.push(' ');
            push_uint(out, records);
            out.push_str(" records ");
            push_uint(out, self.record_bytes());
            out.push_str(" B");
        }
        for (index, code) in self.errors.iter().enumerate() {
            out.push(if index == 0 { ' ' } else { ',' });
            match schema::error(*code) {
                Some(error) => out.push_str(error.name),
                None => {
                    out.push_str("ERROR(");
                    push_int(out, i64::from(*code));
                    out.push(')');
                }
            }
        }
        // Nothing before the records or errors leaves a leading space.
        let lead = out[start..].len() - out[start..].trim_start().len();
        out.drain(start..start + lead);
    }
}

/// Whether a value may hold topics, partitions or records: the others need
/// no walk.
#[inline]
fn holds_summary(value: &Value) -> bool {
    matches!(
        value,
        Value::Struct(_) | Value::Array(_) | Value::Records(_)
    )
}

fn topic_of(tree: &Struct) -> Option<Cow<'_, str>> {
    // A topic struct holds its name (or id) next to an array of partitions;
    // requiring the array keeps other `name` fields (groups, configs) out.
    // (The cheap test first: this runs for every struct of every tree.)
    let has_partitions = tree
        .fields
        .iter()
        .any(|field| matches!(field.value, Value::Array(_)) && names_partitions(field.name));
    if !has_partitions {
        return None;
    }
    TOPIC_FIELDS.iter().find_map(|name| match tree.get(name)? {
        Value::String(text) => Some(Cow::Borrowed(text.as_str())),
        Value::Uuid(uuid) => Some(Cow::Owned(crate::value::uuid_to_base64(uuid))),
        _ => None,
    })
}

fn partition_of(tree: &Struct) -> Option<i32> {
    PARTITION_FIELDS
        .iter()
        .find_map(|name| tree.int(name))
        .and_then(|index| i32::try_from(index).ok())
}

/// Whether a field name contains `partition`: a byte scan that runs for
/// every array of every tree, cheaper than a general substring search.
fn names_partitions(name: &str) -> bool {
    const WORD: &[u8; 9] = b"partition";
    let bytes = name.as_bytes();
    (0..bytes.len()).any(|at| {
        bytes.get(at) == Some(&b'p')
            && bytes
                .get(at..at + WORD.len())
                .is_some_and(|candidate| candidate == WORD)
    })
}

/// `error_code` or a name ending in `_error_code`.
fn is_error_field(name: &str) -> bool {
    const SUFFIX: &[u8; 10] = b"error_code";
    let bytes = name.as_bytes();
    let Some(head) = bytes.len().checked_sub(SUFFIX.len()) else {
        return false;
    };
    bytes.get(head..) == Some(SUFFIX.as_slice())
        && (head == 0 || bytes.get(head - 1) == Some(&b'_'))
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
pub fn push_uint(out: &mut String, mut n: u64) {
    if n < 10 {
        // The commonest case: one digit (the cast keeps it whole).
        out.push(char::from(b'0' + n as u8));
        return;
    }
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    for slot in digits.iter_mut().rev() {
        // A remainder by 10 is below 10: the cast keeps it whole.
        *slot = b'0' + (n % 10) as u8;
        at -= 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let digits = digits.get(at..).unwrap_or_default();
    out.reserve(digits.len());
    for digit in digits {
        out.push(char::from(*digit));
    }
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
