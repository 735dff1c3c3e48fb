//! The detail of one exchange, decoded when it is selected: its request and
//! response as a foldable tree of lines, each line knowing the bytes of the
//! frame it came from, for the hex pane.
//!
//! The exchange is decoded again from the raw bytes the index kept
//! ([`Store::exchange`]). Byte ranges come from a second, span-recording
//! decode of the same bytes ([`codec::decode_message_spans`]), so they are
//! exactly what the decoder read. Records get their batch's range, and for
//! uncompressed batches their key's and value's own ranges (the decoded
//! key is then a view into the frame, and its position in it is the range).
//!
//! Record keys and values are shown as JSON (pretty-printed) when they are
//! JSON, as text when they are UTF-8, and as hex otherwise. Secrets stay
//! redacted: the index never kept their bytes.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;

use crate::codec::{self, DecodeOptions, PathSegment, RecordsMode};
use crate::exchange::{Exchange, Message};
use crate::frame::{DecodedFrame, Direction, LENGTH_PREFIX};
use crate::records::RecordSet;
use crate::schema;
use crate::value::{uuid_to_base64, Struct, Value};
use crate::wire::Reader;

use super::index::Store;

/// Which frame of the exchange a line's bytes are in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    Request,
    Response,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tone {
    Plain,
    Heading,
    /// A non-zero error code, a decode error, a violation.
    Error,
    /// Not decoded, redacted, or otherwise not shown.
    Muted,
}

/// One line of the tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    pub depth: u16,
    pub text: String,
    pub tone: Tone,
    /// The frame and the byte range (absolute, in that frame) of the line.
    pub bytes: Option<(Side, usize, usize)>,
    /// Index just past this node's subtree: children are `index+1..end`.
    pub end: usize,
    /// Folded when first shown (record batches of big record sets).
    pub folded: bool,
}

impl Node {
    pub fn has_children(&self, index: usize) -> bool {
        self.end > index + 1
    }
}

/// A decoded exchange ready to show.
#[derive(Debug)]
pub struct Detail {
    pub row: usize,
    pub exchange: Option<Exchange>,
    pub nodes: Vec<Node>,
    pub request: Option<Bytes>,
    pub response: Option<Bytes>,
}

impl Detail {
    pub fn frame(&self, side: Side) -> Option<&Bytes> {
        match side {
            Side::Request => self.request.as_ref(),
            Side::Response => self.response.as_ref(),
        }
    }
}

/// Recently decoded details, most recent first.
#[derive(Debug)]
pub struct Cache {
    entries: Vec<Arc<Detail>>,
    capacity: usize,
}

impl Cache {
    pub fn new(capacity: usize) -> Cache {
        Cache {
            entries: Vec::new(),
            capacity: capacity.max(1),
        }
    }

    /// The detail of `row`, decoded now unless it is cached.
    pub fn get(&mut self, store: &Store, row: usize, options: &DecodeOptions) -> Arc<Detail> {
        if let Some(at) = self.entries.iter().position(|d| d.row == row) {
            let detail = self.entries.remove(at);
            self.entries.insert(0, Arc::clone(&detail));
            return detail;
        }
        let detail = Arc::new(build(store, row, options));
        self.entries.insert(0, Arc::clone(&detail));
        self.entries.truncate(self.capacity);
        detail
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Decodes row `row` and lays its tree out.
pub fn build(store: &Store, row: usize, options: &DecodeOptions) -> Detail {
    let Some(exchange) = store.exchange(row, options) else {
        return Detail {
            row,
            exchange: None,
            nodes: vec![Node {
                depth: 0,
                text: "the bytes of this exchange were not kept (memory limit)".to_owned(),
                tone: Tone::Muted,
                bytes: None,
                end: 1,
                folded: false,
            }],
            request: None,
            response: None,
        };
    };
    let mut tree = Tree::default();
    if let Some(sasl) = &exchange.sasl {
        let at = tree.open(0, format!("SASL: {}", sasl.line()), Tone::Heading, None);
        if let Ok(json) = serde_json::to_value(sasl) {
            tree.json(1, &json, None);
        }
        tree.close(at);
    }
    for (side, message) in [
        (Side::Request, &exchange.request),
        (Side::Response, &exchange.response),
    ] {
        match message {
            Some(message) => side_tree(&mut tree, side, message),
            None => {
                let what = match side {
                    Side::Request => "request: not in the capture",
                    Side::Response => "response: not in the capture",
                };
                tree.leaf(0, what.to_owned(), Tone::Muted, None);
            }
        }
    }
    let frame = |m: &Option<Box<Message>>| m.as_ref().map(|m| m.frame.raw.clone());
    Detail {
        row,
        request: frame(&exchange.request),
        response: frame(&exchange.response),
        nodes: tree.nodes,
        exchange: Some(exchange),
    }
}

#[derive(Default)]
struct Tree {
    nodes: Vec<Node>,
}

impl Tree {
    fn open(
        &mut self,
        depth: u16,
        text: String,
        tone: Tone,
        bytes: Option<(Side, usize, usize)>,
    ) -> usize {
        self.nodes.push(Node {
            depth,
            text,
            tone,
            bytes,
            end: 0,
            folded: false,
        });
        self.nodes.len() - 1
    }

    fn close(&mut self, at: usize) {
        let end = self.nodes.len();
        if let Some(node) = self.nodes.get_mut(at) {
            node.end = end;
        }
    }

    fn leaf(&mut self, depth: u16, text: String, tone: Tone, bytes: Option<(Side, usize, usize)>) {
        let at = self.open(depth, text, tone, bytes);
        self.close(at);
    }

    /// A JSON value as lines (for SASL steps and JSON record values).
    fn json(&mut self, depth: u16, json: &serde_json::Value, bytes: Option<(Side, usize, usize)>) {
        let pretty = serde_json::to_string_pretty(json).unwrap_or_default();
        for line in pretty.lines() {
            let indent = line.len() - line.trim_start().len();
            self.leaf(
                depth + (indent / 2) as u16,
                line.trim_start().to_owned(),
                Tone::Plain,
                bytes,
            );
        }
    }
}

/// Spans of one frame: header and body fields by path, and the ranges of
/// the header and the body.
#[derive(Default)]
struct FrameSpans {
    header: HashMap<Vec<PathSegment>, (usize, usize)>,
    body: HashMap<Vec<PathSegment>, (usize, usize)>,
    header_range: Option<(usize, usize)>,
    body_range: Option<(usize, usize)>,
}

fn frame_spans(frame: &DecodedFrame) -> FrameSpans {
    let mut spans = FrameSpans::default();
    if frame.header_version < 0 || frame.raw.len() < LENGTH_PREFIX {
        return spans;
    }
    let options = DecodeOptions {
        records: RecordsMode::Raw,
        ..DecodeOptions::default()
    };
    let (header_spec, body_spec) = match frame.direction {
        Direction::Request => (schema::REQUEST_HEADER, frame.api().map(|a| a.request)),
        Direction::Response => (schema::RESPONSE_HEADER, frame.api().map(|a| a.response)),
    };
    let mut reader = Reader::new(frame.raw.clone());
    if reader.skip(LENGTH_PREFIX).is_err() {
        return spans;
    }
    let (header, list) =
        codec::decode_message_spans(&mut reader, header_spec, frame.header_version, &options);
    spans.header_range = Some((LENGTH_PREFIX, reader.offset()));
    spans.header = list
        .into_iter()
        .map(|s| (s.path, (s.start, s.end)))
        .collect();
    if header.error.is_some() {
        return spans;
    }
    let start = reader.offset();
    spans.body_range = Some((start, frame.raw.len()));
    if let Some(spec) = body_spec.filter(|spec| spec.valid.contains(frame.body_version)) {
        let (_, list) =
            codec::decode_message_spans(&mut reader, spec, frame.body_version, &options);
        spans.body = list
            .into_iter()
            .map(|s| (s.path, (s.start, s.end)))
            .collect();
    }
    spans
}

fn side_tree(tree: &mut Tree, side: Side, message: &Message) {
    let frame = &message.frame;
    let spans = frame_spans(frame);
    let bytes = |range: Option<(usize, usize)>| range.map(|(a, b)| (side, a, b));
    let name = match side {
        Side::Request => "request",
        Side::Response => "response",
    };
    let mut heading = format!("{name}: {} ({} bytes", frame.context(), message.wire_size());
    if frame.header_version >= 0 {
        heading.push_str(&format!(", header v{})", frame.header_version));
    } else {
        heading.push_str(", raw SASL token)");
    }
    if message.missing_bytes > 0 {
        heading.push_str(&format!(" [{} bytes lost]", message.missing_bytes));
    }
    let top = tree.open(0, heading, Tone::Heading, Some((side, 0, frame.raw.len())));
    if frame.header_version >= 0 {
        let at = tree.open(
            1,
            "header".to_owned(),
            Tone::Heading,
            bytes(spans.header_range),
        );
        let mut path = Vec::new();
        struct_tree(
            tree,
            2,
            &frame.header,
            &spans.header,
            &mut path,
            side,
            &frame.raw,
        );
        tree.close(at);
    }
    match &frame.body {
        Some(body) => {
            let at = tree.open(1, "body".to_owned(), Tone::Heading, bytes(spans.body_range));
            let mut path = Vec::new();
            struct_tree(tree, 2, body, &spans.body, &mut path, side, &frame.raw);
            tree.close(at);
        }
        None if frame.body_bytes().is_empty()
            && frame.header_version >= 0
            && frame.raw.len() <= frame.size =>
        {
            tree.leaf(
                1,
                "body: redacted (secrets are not kept)".to_owned(),
                Tone::Muted,
                None,
            );
        }
        None => {
            tree.leaf(
                1,
                format!("body: not decoded ({} bytes)", frame.body_bytes().len()),
                Tone::Muted,
                bytes(spans.body_range),
            );
        }
    }
    for violation in &frame.violations {
        tree.leaf(
            1,
            format!("violation: {violation}"),
            Tone::Error,
            bytes(Some((violation.offset, violation.offset + 1))),
        );
    }
    if let Some(error) = &frame.error {
        let at = error.offset.min(frame.raw.len().saturating_sub(1));
        tree.leaf(
            1,
            format!("error: {error}"),
            Tone::Error,
            bytes(Some((at, at + 1))),
        );
    }
    tree.close(top);
}

fn struct_tree(
    tree: &mut Tree,
    depth: u16,
    value: &Struct,
    spans: &HashMap<Vec<PathSegment>, (usize, usize)>,
    path: &mut Vec<PathSegment>,
    side: Side,
    frame: &Bytes,
) {
    for field in &value.fields {
        path.push(PathSegment::Field(field.name));
        value_tree(
            tree,
            depth,
            field.name,
            &field.value,
            spans,
            path,
            side,
            frame,
        );
        path.pop();
    }
    for tag in &value.unknown_tags {
        path.push(PathSegment::Tag(tag.tag));
        let bytes = spans.get(path.as_slice()).map(|(a, b)| (side, *a, *b));
        tree.leaf(
            depth,
            format!("tag {}: {}", tag.tag, hex_preview(&tag.data)),
            Tone::Muted,
            bytes,
        );
        path.pop();
    }
}

#[allow(clippy::too_many_arguments)]
fn value_tree(
    tree: &mut Tree,
    depth: u16,
    name: &str,
    value: &Value,
    spans: &HashMap<Vec<PathSegment>, (usize, usize)>,
    path: &mut Vec<PathSegment>,
    side: Side,
    frame: &Bytes,
) {
    let range = spans.get(path.as_slice()).copied();
    let bytes = range.map(|(a, b)| (side, a, b));
    match value {
        Value::Struct(inner) => {
            let at = tree.open(depth, name.to_owned(), Tone::Plain, bytes);
            struct_tree(tree, depth + 1, inner, spans, path, side, frame);
            tree.close(at);
        }
        Value::Array(items) => {
            let noun = if items.len() == 1 { "item" } else { "items" };
            let at = tree.open(
                depth,
                format!("{name} ({} {noun})", items.len()),
                Tone::Plain,
                bytes,
            );
            for (index, item) in items.iter().enumerate() {
                path.push(PathSegment::Index(index));
                value_tree(
                    tree,
                    depth + 1,
                    &format!("[{index}]"),
                    item,
                    spans,
                    path,
                    side,
                    frame,
                );
                path.pop();
            }
            tree.close(at);
        }
        Value::Records(records) => records_tree(tree, depth, name, records, range, side, frame),
        scalar => {
            let text = scalar_text(scalar);
            let (note, tone) = annotation(name, scalar);
            tree.leaf(depth, format!("{name}: {text}{note}"), tone, bytes);
        }
    }
}

fn scalar_text(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => f.to_string(),
        Value::String(s) if s.starts_with("<redacted") => s.clone(),
        Value::String(s) => serde_json::to_string(s).unwrap_or_default(),
        Value::Bytes(b) => hex_preview(b),
        Value::Uuid(u) => uuid_to_base64(u),
        _ => String::new(),
    }
}

/// Names error codes and API keys next to their numbers.
fn annotation(name: &str, value: &Value) -> (String, Tone) {
    let Some(code) = value.as_int().and_then(|c| i16::try_from(c).ok()) else {
        let tone = match value {
            Value::String(s) if s.starts_with("<redacted") => Tone::Muted,
            _ => Tone::Plain,
        };
        return (String::new(), tone);
    };
    if name == "error_code" || name.ends_with("_error_code") {
        let tone = if code == 0 { Tone::Plain } else { Tone::Error };
        return match schema::error(code) {
            Some(error) => (format!(" ({})", error.name), tone),
            None => (" (unknown error code)".to_owned(), Tone::Error),
        };
    }
    if name == "request_api_key" || name == "api_key" {
        if let Some(api) = schema::api(code) {
            return (format!(" ({})", api.name), Tone::Plain);
        }
    }
    (String::new(), Tone::Plain)
}

const HEX_PREVIEW: usize = 48;

fn hex_preview(bytes: &[u8]) -> String {
    let shown: String = bytes
        .iter()
        .take(HEX_PREVIEW)
        .map(|b| format!("{b:02x}"))
        .collect();
    if bytes.len() > HEX_PREVIEW {
        format!("0x{shown}… ({} bytes)", bytes.len())
    } else if bytes.is_empty() {
        "0x (0 bytes)".to_owned()
    } else {
        format!("0x{shown}")
    }
}

/// Where `part` lies in `frame`, when it is a view into it.
fn offset_in(frame: &Bytes, part: &[u8]) -> Option<(usize, usize)> {
    let base = frame.as_ptr() as usize;
    let start = (part.as_ptr() as usize).checked_sub(base)?;
    let end = start.checked_add(part.len())?;
    (end <= frame.len()).then_some((start, end))
}

/// Batches folded when first shown, past this many records in the set.
const FOLD_RECORDS: usize = 20;

fn records_tree(
    tree: &mut Tree,
    depth: u16,
    name: &str,
    records: &RecordSet,
    range: Option<(usize, usize)>,
    side: Side,
    frame: &Bytes,
) {
    let bytes = range.map(|(a, b)| (side, a, b));
    let count = records.record_count();
    let at = tree.open(
        depth,
        format!(
            "{name}: {} batches, {count} records, {} bytes",
            records.batches.len(),
            records.raw.len()
        ),
        Tone::Plain,
        bytes,
    );
    // The record set's bytes end where the field does.
    let set_start = range.map(|(_, end)| end.saturating_sub(records.raw.len()));
    if !records.decoded {
        tree.leaf(
            depth + 1,
            "not decoded (--no-records)".to_owned(),
            Tone::Muted,
            None,
        );
    }
    for (index, batch) in records.batches.iter().enumerate() {
        let batch_bytes =
            set_start.map(|s| (side, s + batch.position, s + batch.position + batch.size));
        let mut text = format!(
            "batch {index}: magic {} offset {} {} crc {}, {} records",
            batch.magic,
            batch.base_offset,
            batch.compression(),
            if batch.crc_ok { "ok" } else { "BAD" },
            batch.records.len()
        );
        if batch.is_transactional() {
            text.push_str(", transactional");
        }
        if batch.is_control() {
            text.push_str(", control");
        }
        let tone = if batch.crc_ok && batch.errors.is_empty() {
            Tone::Plain
        } else {
            Tone::Error
        };
        let b = tree.open(depth + 1, text, tone, batch_bytes);
        if count > FOLD_RECORDS {
            if let Some(node) = tree.nodes.get_mut(b) {
                node.folded = true;
            }
        }
        for error in &batch.errors {
            tree.leaf(depth + 2, error.clone(), Tone::Error, batch_bytes);
        }
        for record in batch.iter() {
            let r = tree.open(
                depth + 2,
                format!(
                    "record offset {} ts {}",
                    record.offset(),
                    record.timestamp()
                ),
                Tone::Plain,
                batch_bytes,
            );
            let locate = |part: Option<&[u8]>| {
                part.and_then(|p| offset_in(frame, p))
                    .map(|(a, b)| (side, a, b))
                    .or(batch_bytes)
            };
            payload_tree(tree, depth + 3, "key", record.key(), locate(record.key()));
            payload_tree(
                tree,
                depth + 3,
                "value",
                record.value(),
                locate(record.value()),
            );
            let headers: Vec<_> = record.headers().collect();
            if !headers.is_empty() {
                let h = tree.open(
                    depth + 3,
                    format!("headers ({})", headers.len()),
                    Tone::Plain,
                    batch_bytes,
                );
                for (key, value) in headers {
                    tree.leaf(
                        depth + 4,
                        format!("{} = {}", payload_inline(Some(key)), payload_inline(value)),
                        Tone::Plain,
                        locate(Some(key)),
                    );
                }
                tree.close(h);
            }
            if let Some(control) = record.control() {
                tree.leaf(
                    depth + 3,
                    format!("control: {control:?}"),
                    Tone::Muted,
                    batch_bytes,
                );
            }
            tree.close(r);
        }
        tree.close(b);
    }
    if let Some(tail) = &records.partial_tail {
        tree.leaf(
            depth + 1,
            format!(
                "partial batch at byte {}: {} bytes present",
                tail.position, tail.bytes
            ),
            Tone::Muted,
            None,
        );
    }
    tree.close(at);
}

/// A key or value on one line: JSON compact, text quoted, or hex.
fn payload_inline(bytes: Option<&[u8]>) -> String {
    match bytes {
        None => "null".to_owned(),
        Some(bytes) => match std::str::from_utf8(bytes) {
            Ok(text) => serde_json::to_string(text).unwrap_or_default(),
            Err(_) => hex_preview(bytes),
        },
    }
}

/// A key or value: JSON objects and arrays pretty-printed under it, other
/// UTF-8 as a string, anything else as hex.
fn payload_tree(
    tree: &mut Tree,
    depth: u16,
    name: &str,
    bytes: Option<&[u8]>,
    at: Option<(Side, usize, usize)>,
) {
    let Some(data) = bytes else {
        tree.leaf(depth, format!("{name}: null"), Tone::Plain, at);
        return;
    };
    let Ok(text) = std::str::from_utf8(data) else {
        tree.leaf(
            depth,
            format!("{name} (hex): {}", hex_preview(data)),
            Tone::Plain,
            at,
        );
        return;
    };
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        if let Ok(json) = serde_json::from_str::<serde_json::Value>(text) {
            let node = tree.open(
                depth,
                format!("{name} (JSON, {} bytes)", data.len()),
                Tone::Plain,
                at,
            );
            tree.json(depth + 1, &json, at);
            tree.close(node);
            return;
        }
    }
    tree.leaf(
        depth,
        format!(
            "{name}: {}",
            serde_json::to_string(text).unwrap_or_default()
        ),
        Tone::Plain,
        at,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::index::{IndexLimits, Ingest};

    fn store(name: &str) -> Store {
        let path = format!("{}/corpus/captures/{name}", env!("CARGO_MANIFEST_DIR"));
        let mut ingest = Ingest::new(IndexLimits::default(), false);
        crate::session::read_capture(
            std::path::Path::new(&path),
            crate::session::AnalyzerOptions::default(),
            |e| ingest.add(&e, &e.summary()),
        )
        .expect("capture");
        let mut store = Store::new();
        store.append(ingest.take());
        store
    }

    #[test]
    fn field_ranges_hold_the_field_bytes() {
        let store = store("kcat-mock.pcap");
        let options = DecodeOptions::default();
        let mut checked = 0;
        for row in 0..store.len() {
            let detail = build(&store, row, &options);
            for node in &detail.nodes {
                let Some((side, start, end)) = node.bytes else {
                    continue;
                };
                let frame = detail.frame(side).expect("frame");
                assert!(start <= end && end <= frame.len(), "{node:?}");
                // A correlation id's four bytes hold its value.
                if let Some(value) = node.text.strip_prefix("correlation_id: ") {
                    let raw = frame.get(start..end).expect("range");
                    let id = i32::from_be_bytes(raw.try_into().expect("4 bytes"));
                    assert_eq!(id.to_string(), value);
                    checked += 1;
                }
                // A record key's range holds the key.
                if let Some(key) = node.text.strip_prefix("key: \"") {
                    let raw = frame.get(start..end).expect("range");
                    if raw.len() + 1 == key.len() {
                        assert_eq!(raw, &key.as_bytes()[..raw.len()]);
                    }
                }
            }
            for (index, node) in detail.nodes.iter().enumerate() {
                assert!(
                    node.end > index && node.end <= detail.nodes.len(),
                    "{node:?}"
                );
            }
        }
        assert!(checked > 0);
    }

    #[test]
    fn the_cache_keeps_the_most_recent() {
        let store = store("kcat-mock.pcap");
        let mut cache = Cache::new(2);
        let options = DecodeOptions::default();
        let first = cache.get(&store, 0, &options);
        cache.get(&store, 1, &options);
        let again = cache.get(&store, 0, &options);
        assert!(Arc::ptr_eq(&first, &again));
        cache.get(&store, 2, &options);
        assert_eq!(cache.len(), 2);
    }
}
