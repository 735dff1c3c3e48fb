//! The schema-driven codec: walks a message's `StructSpec` over bytes to build
//! a `Value` tree, over a tree to write bytes, and over JSON to build a tree.
//! It knows flexible versions (compact lengths and tagged-field sections,
//! KIP-482), nullable fields and per-version field presence; it knows nothing
//! of frames or headers, which live in `frame`.
//!
//! A decode error keeps everything decoded before it: the partial tree goes
//! back up with the error, and each level adds its field name or index to the
//! error's path, so the error names the exact field and byte offset.
//!
//! A message can also be skimmed (`DecodeOptions::skim`) for what a summary
//! needs: topics, partitions, record sets and error codes go to a
//! [`Gatherer`], the header keeps only its correlation and client ids, and
//! the body only the top-level numbers the Kafka layer reads
//! ([`SKIM_KEEPS`]), with nothing else built (the private `skim` module). A message the skim
//! does not cover (anything that is an error or a violation) is decoded
//! whole, and its summary is read from the tree.

use std::cell::{Cell, RefCell};
use std::fmt;

use bytes::Bytes;
use compact_str::CompactString;
use serde_json::Value as Json;

use crate::json::{Discard, JsonWriter};
use crate::records::{Budget, Limits, RecordSet};
use crate::schema::{DefaultValue, FieldSpec, FieldType, MessageSpec, StructSpec};
use crate::summary::{Gatherer, Summary};
use crate::value::{parse_hex, parse_uuid, Field, RawTag, Struct, Value, UNKNOWN_TAGS_KEY};
use crate::wire::{self, Reader, WireError, WireErrorKind};

mod skim;

/// How much to decode.
#[derive(Clone, Copy, Debug)]
pub struct DecodeOptions {
    /// How far record batches are decoded.
    pub records: RecordsMode,
    pub limits: Limits,
    /// Skim instead of building the tree: the body keeps only the
    /// top-level numbers named in [`SKIM_KEEPS`] and the message's summary
    /// is gathered on the way (`DecodedMessage::summary`).
    pub skim: bool,
    /// With `skim`: also write the body's JSON form while skimming
    /// (`DecodedMessage::json`), the text `Struct::write_json` would give
    /// the whole tree, so that showing it builds no tree.
    pub json: bool,
    /// Decode the header only and leave the body, undecoded, in
    /// `DecodedFrame::body_bytes`, for a later decode elsewhere (see
    /// `session::decode_for_json`).
    pub header_only: bool,
}

/// The top-level numbers a skimmed body keeps: those the Kafka layer
/// reads from bodies it skims (whether a Produce expects an answer).
pub const SKIM_KEEPS: &[&str] = &["acks"];

impl Default for DecodeOptions {
    fn default() -> DecodeOptions {
        DecodeOptions {
            records: RecordsMode::Full,
            limits: Limits::default(),
            skim: false,
            json: false,
            header_only: false,
        }
    }
}

/// How far the `records` fields of Produce and Fetch are decoded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RecordsMode {
    /// Every record: offsets, timestamps, keys, values and headers,
    /// decompressing as needed.
    #[default]
    Full,
    /// Batch headers and CRCs only (`RecordSet::decode_headers_within`):
    /// record counts and bytes stay exact for summaries and statistics,
    /// without decompressing or walking the records.
    HeadersOnly,
    /// The raw bytes only (`RecordSet::undecoded`).
    Raw,
}

/// One step of a path into a message: a field, an array index or a tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PathSegment {
    Field(&'static str),
    Index(usize),
    Tag(u32),
}

/// A path from the message root to a field, for example
/// `topic_data[0].partition_data[1].records`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldPath {
    /// Innermost segment first: errors build their path while unwinding.
    reversed: Vec<PathSegment>,
}

impl FieldPath {
    fn within(&mut self, segment: PathSegment) {
        self.reversed.push(segment);
    }

    pub fn is_empty(&self) -> bool {
        self.reversed.is_empty()
    }

    pub fn segments(&self) -> impl Iterator<Item = &PathSegment> {
        self.reversed.iter().rev()
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.reversed.is_empty() {
            return f.write_str("(message)");
        }
        for (index, segment) in self.segments().enumerate() {
            match segment {
                PathSegment::Field(name) if index == 0 => write!(f, "{name}")?,
                PathSegment::Field(name) => write!(f, ".{name}")?,
                PathSegment::Index(item) => write!(f, "[{item}]")?,
                PathSegment::Tag(tag) => write!(f, "{{tag {tag}}}")?,
            }
        }
        Ok(())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeErrorKind {
    #[error("{0}")]
    Wire(WireErrorKind),
    #[error("null where the schema allows none in this version")]
    UnexpectedNull,
    #[error("{0} bytes left over inside the tagged field")]
    TaggedFieldTrailing(usize),
    #[error("tag {0} appears more than once; the repeat is kept as an unknown tag")]
    RepeatedTag(u32),
    #[error("{0} bytes left over after the message")]
    TrailingBytes(usize),
    #[error("unknown API key {0}")]
    UnknownApiKey(i16),
    #[error("version {version} is outside the known versions {min}-{max}")]
    UnknownVersion { version: i16, min: i16, max: i16 },
    #[error("frame length prefix says {claimed} bytes but {actual} follow")]
    LengthMismatch { claimed: i64, actual: usize },
}

/// Where and why decoding stopped: the message (`Produce v9 request`), the
/// field path, the absolute byte offset in the frame, and the cause.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError {
    pub context: String,
    pub path: FieldPath,
    pub offset: usize,
    pub kind: DecodeErrorKind,
}

impl DecodeError {
    pub fn new(offset: usize, kind: DecodeErrorKind) -> DecodeError {
        DecodeError {
            context: String::new(),
            path: FieldPath::default(),
            offset,
            kind,
        }
    }

    fn within(mut self, segment: PathSegment) -> DecodeError {
        self.path.within(segment);
        self
    }

    pub fn in_context(mut self, context: impl Into<String>) -> DecodeError {
        self.context = context.into();
        self
    }
}

impl From<WireError> for DecodeError {
    fn from(error: WireError) -> DecodeError {
        DecodeError::new(error.offset, DecodeErrorKind::Wire(error.kind))
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.context.is_empty() {
            write!(f, "{}: ", self.context)?;
        }
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        write!(f, "{} at byte {}", self.kind, self.offset)
    }
}

impl std::error::Error for DecodeError {}

/// A failed decode with the part of the value that did decode, if any.
struct Failure {
    partial: Option<Value>,
    error: DecodeError,
}

impl<E: Into<DecodeError>> From<E> for Box<Failure> {
    fn from(error: E) -> Box<Failure> {
        Box::new(Failure {
            partial: None,
            error: error.into(),
        })
    }
}

type Decoded = Result<Value, Box<Failure>>;

/// The version being walked, whether it is flexible, the options, and the
/// protocol violations found so far.
#[derive(Clone, Copy)]
struct Walk<'a> {
    version: i16,
    flexible: bool,
    options: &'a DecodeOptions,
    violations: &'a Violations,
    /// Decompressed bytes still allowed, shared by every record set in the
    /// message: a frame of many small bombs must not multiply the limit.
    budget: &'a RefCell<Budget>,
    /// Where each field's bytes lie, recorded only when asked for
    /// ([`decode_message_spans`]): the hex view of the TUI highlights them.
    spans: Option<&'a RefCell<SpanLog>>,
}

/// Protocol violations found so far. Every field asks how many there are
/// and scopes the new ones to its path, so the count is kept apart in a
/// `Cell`: the list is only touched when a violation actually happens.
#[derive(Default)]
struct Violations {
    count: Cell<usize>,
    list: RefCell<Vec<DecodeError>>,
}

impl Violations {
    fn into_list(self) -> Vec<DecodeError> {
        self.list.into_inner()
    }
}

/// Where one value's bytes lie in the frame: absolute offsets, its length
/// or count prefix included. `path` leads from the message root to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldSpan {
    pub path: Vec<PathSegment>,
    pub start: usize,
    pub end: usize,
}

/// The path being walked and the spans recorded so far.
#[derive(Default)]
struct SpanLog {
    stack: Vec<PathSegment>,
    spans: Vec<FieldSpan>,
}

impl Walk<'_> {
    #[inline]
    fn violation_count(&self) -> usize {
        self.violations.count.get()
    }

    /// Adds `segment` to the paths of the violations found since `since`:
    /// like errors, violations learn their path on the way back up.
    #[inline]
    fn scope_violations(&self, since: usize, segment: PathSegment) {
        if self.violations.count.get() == since {
            return;
        }
        let mut violations = self.violations.list.borrow_mut();
        for violation in violations.iter_mut().skip(since) {
            violation.path.within(segment);
        }
    }

    fn violate(&self, violation: DecodeError) {
        self.violations.list.borrow_mut().push(violation);
        self.violations.count.set(self.violations.count.get() + 1);
    }

    /// Starts recording a value at `segment` (when spans are recorded).
    #[inline(always)]
    fn enter(&self, segment: PathSegment) {
        if let Some(log) = self.spans {
            log.borrow_mut().stack.push(segment);
        }
    }

    /// Ends the value `enter` started: its bytes are `start..end`, also
    /// when it decoded only in part.
    #[inline(always)]
    fn leave(&self, start: usize, end: usize) {
        // Only the TUI's hex view records spans: the test stays inline at
        // every field, the recording does not.
        if let Some(log) = self.spans {
            record_span(log, start, end);
        }
    }

    /// Whether the field is written in its compact (flexible) form.
    #[inline]
    fn compact(&self, field: &FieldSpec) -> bool {
        field.is_compact(self.version, self.flexible)
    }

    /// Whether the field travels in the tagged section in this version.
    #[inline]
    fn is_tagged(&self, field: &FieldSpec) -> bool {
        self.flexible && field.tagged.contains(self.version)
    }

    fn has(&self, field: &FieldSpec) -> bool {
        field.versions.contains(self.version)
    }

    /// Whether the field travels in the struct's body (not its tags).
    #[inline]
    fn in_body(&self, field: &FieldSpec) -> bool {
        field.in_body(self.version, self.flexible)
    }

    /// The fewest bytes a value of this type can take on the wire.
    fn min_size(&self, ty: &FieldType, nullable: bool, compact: bool) -> usize {
        match ty {
            FieldType::String if compact => 1,
            FieldType::String => 2,
            FieldType::Bytes | FieldType::Records | FieldType::Array(_) if compact => 1,
            FieldType::Bytes | FieldType::Records | FieldType::Array(_) => 4,
            // A nullable struct may be only its int8 marker.
            FieldType::Struct(_) if nullable => 1,
            FieldType::Struct(spec) => {
                let tags = usize::from(self.flexible);
                spec.fields
                    .iter()
                    .filter(|field| self.in_body(field))
                    .map(|field| {
                        let nullable = field.nullable.contains(self.version);
                        self.min_size(&field.ty, nullable, self.compact(field))
                    })
                    .sum::<usize>()
                    + tags
            }
            // Numbers, booleans and UUIDs.
            fixed => fixed.fixed_size().unwrap_or(0),
        }
    }
}

/// Records the span of the value at the top of the path stack and leaves
/// it (see [`Walk::leave`]).
#[inline(never)]
fn record_span(log: &RefCell<SpanLog>, start: usize, end: usize) {
    let mut log = log.borrow_mut();
    let path = log.stack.clone();
    log.stack.pop();
    log.spans.push(FieldSpan {
        path,
        start,
        end: end.max(start),
    });
}

/// A decoded message body: the tree, complete or partial, the error that
/// stopped decoding, and protocol violations that did not stop it.
#[derive(Clone, Debug, Default)]
pub struct DecodedMessage {
    pub body: Struct,
    pub error: Option<DecodeError>,
    /// Things the peer must not send but that still decode unambiguously,
    /// such as a null where the schema does not allow one.
    pub violations: Vec<DecodeError>,
    /// What the message is about, when it was skimmed (`body` then holds
    /// at least the top-level numbers in [`SKIM_KEEPS`]).
    pub summary: Option<Summary>,
    /// The body's JSON text, when it was skimmed with `DecodeOptions::json`
    /// (`body` then holds only the numbers in [`SKIM_KEEPS`]).
    pub json: Option<Vec<u8>>,
}

/// What a walk accumulates while it runs: violations, the decompression
/// budget and, when asked for, field spans. Each entry point owns one.
struct WalkState {
    violations: Violations,
    budget: RefCell<Budget>,
    spans: Option<RefCell<SpanLog>>,
}

impl WalkState {
    fn new(options: &DecodeOptions, record_spans: bool) -> WalkState {
        WalkState {
            violations: Violations::default(),
            budget: RefCell::new(Budget::new(options.limits.max_decompressed)),
            spans: record_spans.then(|| RefCell::new(SpanLog::default())),
        }
    }

    fn walk<'a>(
        &'a self,
        spec: &MessageSpec,
        version: i16,
        options: &'a DecodeOptions,
    ) -> Walk<'a> {
        Walk {
            version,
            flexible: spec.flexible.contains(version),
            options,
            violations: &self.violations,
            budget: &self.budget,
            spans: self.spans.as_ref(),
        }
    }
}

/// Decodes a whole message body at `version`.
pub fn decode_message(
    reader: &mut Reader,
    spec: &MessageSpec,
    version: i16,
    options: &DecodeOptions,
) -> DecodedMessage {
    decode_message_after(reader, spec, version, options, None)
}

/// [`decode_message`] for a message that follows the one `earlier` sums
/// up (a response, after its request): the summary it gives is
/// `earlier.then(..)` of its own, gathered straight onto `earlier`.
pub fn decode_message_after(
    reader: &mut Reader,
    spec: &MessageSpec,
    version: i16,
    options: &DecodeOptions,
    mut earlier: Option<Summary>,
) -> DecodedMessage {
    if options.skim {
        match skim_message(reader, spec, version, options, earlier) {
            Ok(skimmed) => return skimmed,
            Err(given_back) => earlier = given_back,
        }
    }
    let mut decoded = decode_with(
        reader,
        spec,
        version,
        options,
        WalkState::new(options, false),
    )
    .0;
    if options.skim || earlier.is_some() {
        let mut summary = earlier.unwrap_or_default();
        summary.add_tree(&decoded.body);
        decoded.summary = Some(summary);
    }
    decoded
}

/// A decoded frame header: its tree, and the two fields the Kafka layer
/// reads from it.
#[derive(Clone, Debug)]
pub struct DecodedHeader {
    /// The tree; empty when the header was skimmed (`DecodeOptions::skim`)
    /// and well formed, since then only the fields below are wanted.
    pub message: DecodedMessage,
    pub correlation_id: Option<i32>,
    pub client_id: Option<CompactString>,
}

/// Decodes a frame header. Headers are small flat structs (numbers and a
/// client id) decoded for every frame: read here field by field when well
/// formed, else by the general walk, which gives the same tree and reports
/// what is wrong. When skimming, a well-formed header builds no tree.
pub fn decode_header(
    reader: &mut Reader,
    spec: &MessageSpec,
    version: i16,
    options: &DecodeOptions,
) -> DecodedHeader {
    if options.skim {
        let start = reader.mark();
        if let Some((correlation_id, client_id)) = skim_kafka_header(reader, spec, version) {
            return DecodedHeader {
                message: DecodedMessage::default(),
                correlation_id: Some(correlation_id),
                client_id,
            };
        }
        reader.rewind(start);
    }
    decode_header_by_spec(reader, spec, version, options)
}

/// The correlation id and client id of a well-formed request or response
/// header of a version Kafka defines (RequestHeader v0-v2, ResponseHeader
/// v0-v1: fixed-size fields at fixed places, a nullable client id from
/// request v1, an empty tag section in the flexible versions), read
/// without a walk over its spec: every frame has one. `None` for anything
/// else, which [`decode_header_by_spec`] reads and reports; the test
/// `known_headers_skim_as_their_spec_reads_them` holds the two to the same
/// answers.
fn skim_kafka_header(
    reader: &mut Reader,
    spec: &MessageSpec,
    version: i16,
) -> Option<(i32, Option<CompactString>)> {
    let request = std::ptr::eq(spec, crate::schema::REQUEST_HEADER);
    if !(request || std::ptr::eq(spec, crate::schema::RESPONSE_HEADER))
        || !spec.valid.contains(version)
    {
        return None;
    }
    if request {
        // The API key and version, which the frame layer has read.
        reader.skip(4).ok()?;
    }
    let correlation_id = reader.i32().ok()?;
    let client_id = if request && version >= 1 {
        match reader.i16().ok()? {
            -1 => None,
            len => {
                let len = usize::try_from(len).ok()?;
                Some(CompactString::from(reader.str(len).ok()?))
            }
        }
    } else {
        None
    };
    if spec.flexible.contains(version) && reader.unsigned_varint().ok()? != 0 {
        return None;
    }
    Some((correlation_id, client_id))
}

/// [`decode_header`] by a walk over the header's spec.
fn decode_header_by_spec(
    reader: &mut Reader,
    spec: &MessageSpec,
    version: i16,
    options: &DecodeOptions,
) -> DecodedHeader {
    let flexible = spec.flexible.contains(version);
    let start = reader.mark();
    let mut tree = (!options.skim).then(Struct::default);
    let (mut correlation_id, mut client_id) = (None, None);
    let flat = read_flat_fields(reader, spec.body, version, flexible, |name, value| {
        match (name, value) {
            ("correlation_id", Flat::Int(id)) => correlation_id = i32::try_from(id).ok(),
            ("client_id", Flat::Text(id)) => client_id = Some(CompactString::from(id)),
            _ => {}
        }
        if let Some(tree) = tree.as_mut() {
            let value = match value {
                Flat::Null => Value::Null,
                Flat::Int(n) => Value::Int(n),
                Flat::Text(text) => Value::String(text.to_owned()),
            };
            tree.push(name, value);
        }
    });
    if flat.is_some() {
        return DecodedHeader {
            message: DecodedMessage {
                body: tree.unwrap_or_default(),
                error: None,
                violations: Vec::new(),
                summary: None,
                json: None,
            },
            correlation_id,
            client_id,
        };
    }
    reader.rewind(start);
    let whole = DecodeOptions {
        skim: false,
        ..*options
    };
    let message = decode_message(reader, spec, version, &whole);
    DecodedHeader {
        correlation_id: message
            .body
            .int("correlation_id")
            .and_then(|id| i32::try_from(id).ok()),
        client_id: message.body.str("client_id").map(CompactString::from),
        message,
    }
}

/// A field of a flat struct, as read.
#[derive(Clone, Copy)]
enum Flat<'a> {
    Null,
    Int(i64),
    Text(&'a str),
}

/// Reads a struct of numbers and strings whose tagged-field section is
/// empty, handing each field to `each` in order; `None` for any other
/// layout, or for anything the general walk would report (a null where
/// none is allowed, a short read, bad UTF-8).
fn read_flat_fields(
    reader: &mut Reader,
    spec: &StructSpec,
    version: i16,
    flexible: bool,
    mut each: impl FnMut(&'static str, Flat<'_>),
) -> Option<()> {
    for field in spec
        .fields
        .iter()
        .filter(|field| field.in_body(version, flexible))
    {
        let value = match &field.ty {
            FieldType::String => {
                let compact = field.is_compact(version, flexible);
                let nullable = field.nullable.contains(version);
                skim::text(reader, compact, nullable)?.map_or(Flat::Null, Flat::Text)
            }
            ty => Flat::Int(read_int(reader, ty).ok()??),
        };
        each(field.name, value);
    }
    if flexible && reader.unsigned_varint().ok()? != 0 {
        return None;
    }
    Some(())
}

/// The most room made up front for a skimmed body's JSON.
const JSON_ROOM_MAX: usize = 4 << 20;

/// Skims a body by its plan ([`skim`]), its summary gathered after
/// `earlier` ([`decode_message_after`]). For a body no plan covers, the
/// error holds `earlier` to gather the decoded tree onto
/// ([`Gatherer::abandon`]), and `reader` is as it was.
fn skim_message(
    reader: &mut Reader,
    spec: &MessageSpec,
    version: i16,
    options: &DecodeOptions,
    earlier: Option<Summary>,
) -> Result<DecodedMessage, Option<Summary>> {
    let flexible = spec.flexible.contains(version);
    let Some(plan) = skim::plan(spec.body, version, flexible, options.json) else {
        return Err(earlier);
    };
    let start = reader.mark();
    let mut body = Struct::default();
    body.fields.reserve_exact(plan.kept);
    let had_earlier = earlier.is_some();
    let mut gather = earlier.map_or_else(Gatherer::start, Gatherer::start_after);
    gather.enter_struct();
    let budget = &mut Budget::new(options.limits.max_decompressed);
    let json = if options.json {
        // Keys and digits take room: JSON is up to four times the bytes it
        // describes (a Metadata response), and rarely needs more. A large
        // body's buffer grows as it is written instead.
        let room = (4 * reader.remaining() + 256).min(JSON_ROOM_MAX);
        let mut json = JsonWriter::in_memory_with_capacity(room);
        let mut skim = skim::Skim {
            gather: &mut gather,
            records: options.records,
            budget,
            json: &mut json,
        };
        skim.run(&plan, reader, Some(&mut body))
            .map(|()| Some(json.into_bytes()))
    } else {
        let mut skim = skim::Skim {
            gather: &mut gather,
            records: options.records,
            budget,
            json: &mut Discard,
        };
        skim.run(&plan, reader, Some(&mut body)).map(|()| None)
    };
    let Some(json) = json else {
        reader.rewind(start);
        let given_back = gather.abandon();
        return Err(had_earlier.then_some(given_back));
    };
    Ok(DecodedMessage {
        body,
        error: None,
        violations: Vec::new(),
        summary: Some(gather.finish()),
        json,
    })
}

/// [`decode_message`], also recording where every field, array item and
/// tagged field lies in the frame, in the order they end. It decodes the
/// same tree: only the bookkeeping differs, so the spans always agree with
/// the decoded values (a partial decode has spans up to where it stopped).
pub fn decode_message_spans(
    reader: &mut Reader,
    spec: &MessageSpec,
    version: i16,
    options: &DecodeOptions,
) -> (DecodedMessage, Vec<FieldSpan>) {
    decode_with(
        reader,
        spec,
        version,
        options,
        WalkState::new(options, true),
    )
}

/// Decodes a message body with `state`'s bookkeeping; the spans it kept,
/// if it kept any.
fn decode_with(
    reader: &mut Reader,
    spec: &MessageSpec,
    version: i16,
    options: &DecodeOptions,
    state: WalkState,
) -> (DecodedMessage, Vec<FieldSpan>) {
    let mut body = Struct::default();
    let error = read_struct(
        reader,
        spec.body,
        &state.walk(spec, version, options),
        &mut body,
    )
    .err();
    let decoded = DecodedMessage {
        body,
        error,
        violations: state.violations.into_list(),
        summary: None,
        json: None,
    };
    let spans = state
        .spans
        .map(|log| log.into_inner().spans)
        .unwrap_or_default();
    (decoded, spans)
}

fn read_struct(
    reader: &mut Reader,
    spec: &StructSpec,
    walk: &Walk,
    out: &mut Struct,
) -> Result<(), DecodeError> {
    // Exactly the fields this version has: a struct of one small field
    // would otherwise grow room for four, which for an array of such
    // structs makes the tree several times larger than it need be.
    let count = spec
        .fields
        .iter()
        .filter(|field| walk.in_body(field))
        .count();
    // (A fresh vector is allocated outright, cheaper than growing one.)
    if out.fields.capacity() == 0 {
        out.fields = Vec::with_capacity(count);
    } else {
        out.fields.reserve_exact(count);
    }
    for field in spec.fields {
        if !walk.in_body(field) {
            continue;
        }
        let nullable = field.nullable.contains(walk.version);
        let since = walk.violation_count();
        let start = reader.offset();
        walk.enter(PathSegment::Field(field.name));
        let read = read_value(reader, &field.ty, nullable, walk.compact(field), walk);
        walk.leave(start, reader.offset());
        walk.scope_violations(since, PathSegment::Field(field.name));
        match read {
            Ok(value) => out.push(field.name, value),
            Err(failure) => {
                out.fields.extend(failure.partial.map(|value| Field {
                    name: field.name,
                    value,
                }));
                return Err(failure.error.within(PathSegment::Field(field.name)));
            }
        }
    }
    if walk.flexible {
        // A failure in the section itself (its count, a tag or a size) has
        // no field to name; say it was the tagged fields.
        read_tagged_fields(reader, spec, walk, out).map_err(|error| {
            if error.path.is_empty() {
                error.within(PathSegment::Field(TAGGED_FIELDS))
            } else {
                error
            }
        })?;
    }
    Ok(())
}

/// The path segment for a struct's tagged-field section (KIP-482).
const TAGGED_FIELDS: &str = "_tagged_fields";

/// Reads a tagged-field section (KIP-482): a count, then tag, size and data
/// for each field. Known tags are decoded, unknown ones kept verbatim.
fn read_tagged_fields(
    reader: &mut Reader,
    spec: &StructSpec,
    walk: &Walk,
    out: &mut Struct,
) -> Result<(), DecodeError> {
    let count = reader.unsigned_varint()?;
    reader.check_count(u64::from(count))?;
    for _ in 0..count {
        let tag_start = reader.offset();
        let tag = reader.unsigned_varint()?;
        let size = reader.unsigned_varint()?;
        let len = reader.check_length(u64::from(size))?;
        let mut data = reader.sub_reader(len)?;
        let known = spec
            .fields
            .iter()
            .find(|field| field.tag == Some(tag) && walk.has(field) && walk.is_tagged(field));
        // A known tag sent twice is a violation (KIP-482: a tag appears at
        // most once); the repeat is kept raw, beside the first, so that the
        // tree has one field per name and the frame re-encodes as it was.
        let repeated = known.filter(|field| out.get(field.name).is_some());
        if let Some(field) = repeated {
            let violation = DecodeError::new(tag_start, DecodeErrorKind::RepeatedTag(tag));
            walk.violate(violation.within(PathSegment::Field(field.name)));
        }
        let Some(field) = known.filter(|_| repeated.is_none()) else {
            walk.enter(PathSegment::Tag(tag));
            walk.leave(tag_start, reader.offset());
            out.unknown_tags.push(RawTag {
                tag,
                data: data.take_rest(),
            });
            continue;
        };
        let nullable = field.nullable.contains(walk.version);
        let since = walk.violation_count();
        walk.enter(PathSegment::Field(field.name));
        let read = read_value(&mut data, &field.ty, nullable, true, walk);
        // The tag and size prefix belong to the field.
        walk.leave(tag_start, reader.offset());
        walk.scope_violations(since, PathSegment::Field(field.name));
        match read {
            Ok(value) => {
                out.push(field.name, value);
                if !data.is_empty() {
                    let kind = DecodeErrorKind::TaggedFieldTrailing(data.remaining());
                    return Err(DecodeError::new(data.offset(), kind)
                        .within(PathSegment::Field(field.name)));
                }
            }
            Err(failure) => {
                out.fields.extend(failure.partial.map(|value| Field {
                    name: field.name,
                    value,
                }));
                return Err(failure.error.within(PathSegment::Field(field.name)));
            }
        }
    }
    Ok(())
}

/// Reads a length or count that is compact (unsigned varint of N + 1, 0 for
/// null) in flexible versions and a signed int16/int32 (-1 for null) before.
#[inline]
fn read_length(reader: &mut Reader, compact: bool, wide: bool) -> Result<Option<u64>, WireError> {
    if compact {
        let raw = reader.unsigned_varint()?;
        return Ok(raw.checked_sub(1).map(u64::from));
    }
    let start = reader.offset();
    let raw = if wide {
        i64::from(reader.i32()?)
    } else {
        i64::from(reader.i16()?)
    };
    match raw {
        -1 => Ok(None),
        len if len < 0 => Err(WireError {
            offset: start,
            kind: WireErrorKind::InvalidLength(len),
        }),
        len => Ok(Some(len as u64)),
    }
}

/// A null length where the schema allows none is a violation, not an
/// error: the wire form is unambiguous, so decoding goes on and the null is
/// kept, which also lets the frame re-encode as it was.
fn null_value(nullable: bool, start: usize, walk: &Walk) -> Decoded {
    if !nullable {
        walk.violate(DecodeError::new(start, DecodeErrorKind::UnexpectedNull));
    }
    Ok(Value::Null)
}

/// Reads one value. Fixed-size values, most of a tree, are read inline in
/// the caller's loop; the others go through [`read_sized_value`].
#[inline(always)]
fn read_value(
    reader: &mut Reader,
    ty: &FieldType,
    nullable: bool,
    compact: bool,
    walk: &Walk,
) -> Decoded {
    match read_fixed(reader, ty)? {
        Some(value) => Ok(value),
        None => read_sized_value(reader, ty, nullable, compact, walk),
    }
}

/// Reads a value of a fixed-size type (numbers, booleans, UUIDs); `None`
/// for the other types, with nothing read.
#[inline(always)]
fn read_fixed(reader: &mut Reader, ty: &FieldType) -> Result<Option<Value>, WireError> {
    let value = match ty {
        FieldType::Bool => Value::Bool(reader.u8()? != 0),
        FieldType::Float64 => Value::Float(reader.f64()?),
        FieldType::Uuid => Value::Uuid(reader.uuid()?),
        _ => return Ok(read_int(reader, ty)?.map(Value::Int)),
    };
    Ok(Some(value))
}

/// Reads an integer field; `None` for a type that is not one. (Inlined:
/// the tree walk reads most of its numbers through here.)
#[inline(always)]
fn read_int(reader: &mut Reader, ty: &FieldType) -> Result<Option<i64>, WireError> {
    let int = match ty {
        FieldType::Int8 => i64::from(reader.i8()?),
        FieldType::Int16 => i64::from(reader.i16()?),
        FieldType::Uint16 => i64::from(reader.u16()?),
        FieldType::Int32 => i64::from(reader.i32()?),
        FieldType::Uint32 => i64::from(reader.u32()?),
        FieldType::Int64 => reader.i64()?,
        _ => return Ok(None),
    };
    Ok(Some(int))
}

/// Reads a value that has a length, a count or fields: strings, bytes,
/// record sets, structs and arrays.
#[inline(never)]
fn read_sized_value(
    reader: &mut Reader,
    ty: &FieldType,
    nullable: bool,
    compact: bool,
    walk: &Walk,
) -> Decoded {
    let start = reader.offset();
    let value = match ty {
        FieldType::Bool
        | FieldType::Int8
        | FieldType::Int16
        | FieldType::Uint16
        | FieldType::Int32
        | FieldType::Uint32
        | FieldType::Int64
        | FieldType::Float64
        | FieldType::Uuid => return read_value(reader, ty, nullable, compact, walk),
        FieldType::String => match read_length(reader, compact, false)? {
            None => return null_value(nullable, start, walk),
            Some(len) => {
                let len = reader.check_length(len)?;
                Value::String(reader.str(len)?.to_owned())
            }
        },
        FieldType::Bytes | FieldType::Records => match read_length(reader, compact, true)? {
            None => return null_value(nullable, start, walk),
            Some(len) => {
                let len = reader.check_length(len)?;
                let data = reader.take(len)?;
                if matches!(ty, FieldType::Records) {
                    Value::Records(Box::new(read_records(data, walk)))
                } else {
                    Value::Bytes(data)
                }
            }
        },
        FieldType::Struct(spec) => {
            // A nullable struct is preceded by an int8: -1 null, 1 present.
            if nullable && reader.i8()? < 0 {
                return Ok(Value::Null);
            }
            let mut inner = Struct::default();
            if let Err(error) = read_struct(reader, spec, walk, &mut inner) {
                return Err(Box::new(Failure {
                    partial: Some(Value::Struct(inner)),
                    error,
                }));
            }
            Value::Struct(inner)
        }
        FieldType::Array(element) => match read_length(reader, compact, true)? {
            None => return null_value(nullable, start, walk),
            Some(count) => {
                let count = reader.check_count(count)?;
                // Room for no more elements than the bytes left can hold,
                // so a count that lies costs nothing up front.
                // (A few elements cost little whatever the count says.)
                let room = if count <= SMALL_ARRAY {
                    count
                } else {
                    count.min(reader.remaining() / walk.min_size(element, false, compact).max(1))
                };
                let mut items = Vec::with_capacity(room);
                for index in 0..count {
                    let since = walk.violation_count();
                    let item_start = reader.offset();
                    walk.enter(PathSegment::Index(index));
                    let read = read_value(reader, element, false, compact, walk);
                    walk.leave(item_start, reader.offset());
                    walk.scope_violations(since, PathSegment::Index(index));
                    match read {
                        Ok(item) => items.push(item),
                        Err(mut failure) => {
                            items.extend(failure.partial.take());
                            failure.partial = Some(Value::Array(items));
                            failure.error = failure.error.within(PathSegment::Index(index));
                            return Err(failure);
                        }
                    }
                }
                Value::Array(items)
            }
        },
    };
    Ok(value)
}

/// Arrays of at most this many elements get room for all of them without
/// working out how many the bytes left could hold.
const SMALL_ARRAY: usize = 16;

fn read_records(data: Bytes, walk: &Walk) -> RecordSet {
    decode_records(data, walk.options.records, &mut walk.budget.borrow_mut())
}

/// Decodes a record set as far as `mode` says, within `budget`.
fn decode_records(data: Bytes, mode: RecordsMode, budget: &mut Budget) -> RecordSet {
    match mode {
        RecordsMode::Full => RecordSet::decode_within(data, budget),
        RecordsMode::HeadersOnly => RecordSet::decode_headers_within(data, budget),
        RecordsMode::Raw => RecordSet::undecoded(data),
    }
}

/// Why a tree could not be encoded, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodeError {
    pub path: FieldPath,
    pub message: String,
}

impl EncodeError {
    pub fn from_message(message: impl Into<String>) -> EncodeError {
        EncodeError::new(message)
    }

    fn new(message: impl Into<String>) -> EncodeError {
        EncodeError {
            path: FieldPath::default(),
            message: message.into(),
        }
    }

    fn within(mut self, segment: PathSegment) -> EncodeError {
        self.path.within(segment);
        self
    }
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for EncodeError {}

/// Encodes a message body at `version`. Fields missing from the tree take
/// their defaults; tagged fields missing from it are not written.
pub fn encode_message(
    out: &mut Vec<u8>,
    spec: &MessageSpec,
    version: i16,
    body: &Struct,
) -> Result<(), EncodeError> {
    let options = DecodeOptions::default();
    let state = WalkState::new(&options, false);
    let walk = state.walk(spec, version, &options);
    write_struct(out, spec.body, walk, body)
}

fn write_struct(
    out: &mut Vec<u8>,
    spec: &StructSpec,
    walk: Walk,
    value: &Struct,
) -> Result<(), EncodeError> {
    for field in spec.fields {
        if !walk.in_body(field) {
            continue;
        }
        let nullable = field.nullable.contains(walk.version);
        let written = match value.get(field.name) {
            Some(item) => write_value(out, &field.ty, nullable, walk.compact(field), walk, item),
            None => {
                let default = default_value(field, walk);
                write_value(
                    out,
                    &field.ty,
                    nullable,
                    walk.compact(field),
                    walk,
                    &default,
                )
            }
        };
        written.map_err(|error| error.within(PathSegment::Field(field.name)))?;
    }
    if walk.flexible {
        write_tagged_fields(out, spec, walk, value)?;
    }
    Ok(())
}

fn write_tagged_fields(
    out: &mut Vec<u8>,
    spec: &StructSpec,
    walk: Walk,
    value: &Struct,
) -> Result<(), EncodeError> {
    let mut tagged: Vec<(u32, Bytes)> = Vec::new();
    for field in spec.fields {
        let (Some(tag), Some(item)) = (field.tag, value.get(field.name)) else {
            continue;
        };
        if !walk.has(field) || !walk.is_tagged(field) {
            continue;
        }
        let mut data = Vec::new();
        let nullable = field.nullable.contains(walk.version);
        write_value(&mut data, &field.ty, nullable, true, walk, item)
            .map_err(|error| error.within(PathSegment::Field(field.name)))?;
        tagged.push((tag, Bytes::from(data)));
    }
    tagged.extend(
        value
            .unknown_tags
            .iter()
            .map(|raw| (raw.tag, raw.data.clone())),
    );
    // Tags go in ascending order (KIP-482).
    tagged.sort_by_key(|(tag, _)| *tag);
    wire::put_unsigned_varint(out, tagged.len() as u32);
    for (tag, data) in tagged {
        wire::put_unsigned_varint(out, tag);
        put_size(out, data.len())?;
        out.extend_from_slice(&data);
    }
    Ok(())
}

fn put_size(out: &mut Vec<u8>, len: usize) -> Result<(), EncodeError> {
    let len =
        u32::try_from(len).map_err(|_| EncodeError::new(format!("{len} bytes is too long")))?;
    wire::put_unsigned_varint(out, len);
    Ok(())
}

/// Writes a length (or count) in the compact or classic form.
fn write_length(
    out: &mut Vec<u8>,
    compact: bool,
    wide: bool,
    len: Option<usize>,
) -> Result<(), EncodeError> {
    let too_long = || EncodeError::new(format!("length {len:?} does not fit"));
    if compact {
        let raw = match len {
            None => 0,
            Some(len) => u32::try_from(len)
                .ok()
                .and_then(|len| len.checked_add(1))
                .ok_or_else(too_long)?,
        };
        wire::put_unsigned_varint(out, raw);
    } else if wide {
        let raw = match len {
            None => -1,
            Some(len) => i32::try_from(len).map_err(|_| too_long())?,
        };
        out.extend_from_slice(&raw.to_be_bytes());
    } else {
        let raw = match len {
            None => -1,
            Some(len) => i16::try_from(len).map_err(|_| too_long())?,
        };
        out.extend_from_slice(&raw.to_be_bytes());
    }
    Ok(())
}

fn write_int<T: TryFrom<i64>>(value: i64, type_name: &str) -> Result<T, EncodeError> {
    T::try_from(value)
        .map_err(|_| EncodeError::new(format!("{value} is out of range for {type_name}")))
}

fn write_value(
    out: &mut Vec<u8>,
    ty: &FieldType,
    nullable: bool,
    compact: bool,
    walk: Walk,
    value: &Value,
) -> Result<(), EncodeError> {
    match (ty, value) {
        // Strings, bytes and arrays have a null form even where the schema
        // forbids it; writing it keeps decode-then-encode lossless and lets
        // conformance suites send such violations on purpose.
        (FieldType::Struct(_), Value::Null) if nullable => out.push(0xff),
        (FieldType::String, Value::Null) => write_length(out, compact, false, None)?,
        (FieldType::Bytes | FieldType::Records | FieldType::Array(_), Value::Null) => {
            write_length(out, compact, true, None)?
        }
        (_, Value::Null) => {
            return Err(EncodeError::new("null is not allowed here in this version"))
        }
        (FieldType::Bool, Value::Bool(flag)) => out.push(u8::from(*flag)),
        (FieldType::Int8, Value::Int(int)) => {
            out.extend_from_slice(&write_int::<i8>(*int, "int8")?.to_be_bytes())
        }
        (FieldType::Int16, Value::Int(int)) => {
            out.extend_from_slice(&write_int::<i16>(*int, "int16")?.to_be_bytes())
        }
        (FieldType::Uint16, Value::Int(int)) => {
            out.extend_from_slice(&write_int::<u16>(*int, "uint16")?.to_be_bytes())
        }
        (FieldType::Int32, Value::Int(int)) => {
            out.extend_from_slice(&write_int::<i32>(*int, "int32")?.to_be_bytes())
        }
        (FieldType::Uint32, Value::Int(int)) => {
            out.extend_from_slice(&write_int::<u32>(*int, "uint32")?.to_be_bytes())
        }
        (FieldType::Int64, Value::Int(int)) => out.extend_from_slice(&int.to_be_bytes()),
        (FieldType::Float64, Value::Float(float)) => out.extend_from_slice(&float.to_be_bytes()),
        (FieldType::Float64, Value::Int(int)) => {
            out.extend_from_slice(&(*int as f64).to_be_bytes())
        }
        (FieldType::Uuid, Value::Uuid(uuid)) => out.extend_from_slice(uuid),
        (FieldType::String, Value::String(text)) => {
            write_length(out, compact, false, Some(text.len()))?;
            out.extend_from_slice(text.as_bytes());
        }
        (FieldType::Bytes | FieldType::Records, Value::Bytes(data)) => {
            write_length(out, compact, true, Some(data.len()))?;
            out.extend_from_slice(data);
        }
        (FieldType::Records, Value::Records(records)) => {
            write_length(out, compact, true, Some(records.raw.len()))?;
            out.extend_from_slice(&records.raw);
        }
        (FieldType::Struct(spec), Value::Struct(inner)) => {
            if nullable {
                out.push(1);
            }
            write_struct(out, spec, walk, inner)?;
        }
        (FieldType::Array(element), Value::Array(items)) => {
            write_length(out, compact, true, Some(items.len()))?;
            for (index, item) in items.iter().enumerate() {
                write_value(out, element, false, compact, walk, item)
                    .map_err(|error| error.within(PathSegment::Index(index)))?;
            }
        }
        (ty, value) => {
            return Err(EncodeError::new(format!(
                "expected {} but the value is {}",
                type_name(ty),
                value_kind(value)
            )))
        }
    }
    Ok(())
}

pub fn type_name(ty: &FieldType) -> String {
    match ty {
        FieldType::Bool => "bool".into(),
        FieldType::Int8 => "int8".into(),
        FieldType::Int16 => "int16".into(),
        FieldType::Uint16 => "uint16".into(),
        FieldType::Int32 => "int32".into(),
        FieldType::Uint32 => "uint32".into(),
        FieldType::Int64 => "int64".into(),
        FieldType::Float64 => "float64".into(),
        FieldType::String => "string".into(),
        FieldType::Bytes => "bytes".into(),
        FieldType::Uuid => "uuid".into(),
        FieldType::Records => "records".into(),
        FieldType::Struct(spec) => spec.name.into(),
        FieldType::Array(element) => format!("[]{}", type_name(element)),
    }
}

fn value_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a bool",
        Value::Int(_) => "an integer",
        Value::Float(_) => "a float",
        Value::String(_) => "a string",
        Value::Bytes(_) => "bytes",
        Value::Uuid(_) => "a uuid",
        Value::Array(_) => "an array",
        Value::Struct(_) => "a struct",
        Value::Records(_) => "records",
    }
}

/// The value a field takes when it is not given.
fn default_value(field: &FieldSpec, walk: Walk) -> Value {
    match field.default {
        DefaultValue::Null => Value::Null,
        DefaultValue::Bool(flag) => Value::Bool(flag),
        DefaultValue::Int(int) => Value::Int(int),
        DefaultValue::Float(float) => Value::Float(float),
        DefaultValue::Str(text) => Value::String(text.to_owned()),
        DefaultValue::Zero => zero_value(&field.ty, walk),
    }
}

fn zero_value(ty: &FieldType, walk: Walk) -> Value {
    match ty {
        FieldType::Bool => Value::Bool(false),
        FieldType::Float64 => Value::Float(0.0),
        FieldType::String => Value::String(String::new()),
        FieldType::Bytes => Value::Bytes(Bytes::new()),
        FieldType::Records => Value::Records(Box::new(RecordSet::undecoded(Bytes::new()))),
        FieldType::Uuid => Value::Uuid([0; 16]),
        FieldType::Array(_) => Value::Array(Vec::new()),
        FieldType::Struct(spec) => Value::Struct(default_struct(spec, walk)),
        FieldType::Int8
        | FieldType::Int16
        | FieldType::Uint16
        | FieldType::Int32
        | FieldType::Uint32
        | FieldType::Int64 => Value::Int(0),
    }
}

fn default_struct(spec: &StructSpec, walk: Walk) -> Struct {
    let mut out = Struct::default();
    for field in spec.fields {
        if walk.in_body(field) {
            out.push(field.name, default_value(field, walk));
        }
    }
    out
}

/// Builds a message tree from JSON written with the official field names in
/// snake_case. Fields left out take their defaults; a field that exists only
/// in other versions is ignored, so one request can serve many versions; a
/// name the message does not know at all is an error.
pub fn message_from_json(
    spec: &MessageSpec,
    version: i16,
    json: &Json,
) -> Result<Struct, EncodeError> {
    let options = DecodeOptions::default();
    let state = WalkState::new(&options, false);
    let walk = state.walk(spec, version, &options);
    struct_from_json(spec.body, walk, json)
}

fn struct_from_json(spec: &StructSpec, walk: Walk, json: &Json) -> Result<Struct, EncodeError> {
    let Json::Object(object) = json else {
        return Err(EncodeError::new(format!(
            "{} must be a JSON object",
            spec.name
        )));
    };
    for key in object.keys() {
        if key != UNKNOWN_TAGS_KEY && !spec.fields.iter().any(|field| field.name == key) {
            let known: Vec<&str> = spec.fields.iter().map(|field| field.name).collect();
            return Err(EncodeError::new(format!(
                "{} has no field `{key}` (fields: {})",
                spec.name,
                known.join(", ")
            )));
        }
    }
    // Regular fields in schema order, then tagged fields in tag order: the
    // order decoding produces, so that a decoded tree and the tree built
    // from its JSON are equal.
    let mut tagged: Vec<&FieldSpec> = spec
        .fields
        .iter()
        .filter(|field| walk.is_tagged(field))
        .collect();
    tagged.sort_by_key(|field| field.tag);
    let regular = spec.fields.iter().filter(|field| !walk.is_tagged(field));
    let mut out = Struct::default();
    for field in regular.chain(tagged) {
        if !walk.has(field) {
            continue;
        }
        match object.get(field.name) {
            Some(item) => {
                let nullable = field.nullable.contains(walk.version);
                let value = value_from_json(&field.ty, nullable, walk, item)
                    .map_err(|error| error.within(PathSegment::Field(field.name)))?;
                out.push(field.name, value);
            }
            None if walk.is_tagged(field) => {}
            None => out.push(field.name, default_value(field, walk)),
        }
    }
    if let Some(tags) = object.get(UNKNOWN_TAGS_KEY) {
        out.unknown_tags = unknown_tags_from_json(tags)?;
    }
    Ok(out)
}

fn unknown_tags_from_json(json: &Json) -> Result<Vec<RawTag>, EncodeError> {
    let error = || {
        EncodeError::new(format!(
            "{UNKNOWN_TAGS_KEY} must be [{{\"tag\": N, \"data\": \"hex\"}}]"
        ))
    };
    let Json::Array(items) = json else {
        return Err(error());
    };
    items
        .iter()
        .map(|item| {
            let tag = item
                .get("tag")
                .and_then(Json::as_u64)
                .and_then(|tag| u32::try_from(tag).ok());
            let data = item.get("data").and_then(Json::as_str).map(parse_hex);
            match (tag, data) {
                (Some(tag), Some(Ok(data))) => Ok(RawTag {
                    tag,
                    data: Bytes::from(data),
                }),
                _ => Err(error()),
            }
        })
        .collect()
}

fn value_from_json(
    ty: &FieldType,
    nullable: bool,
    walk: Walk,
    json: &Json,
) -> Result<Value, EncodeError> {
    let mismatch = || EncodeError::new(format!("expected {} but found {json}", type_name(ty)));
    let value = match (ty, json) {
        (_, Json::Null) if nullable => Value::Null,
        (
            FieldType::String | FieldType::Bytes | FieldType::Records | FieldType::Array(_),
            Json::Null,
        ) => Value::Null,
        (_, Json::Null) => {
            return Err(EncodeError::new("null is not allowed here in this version"))
        }
        (FieldType::Bool, Json::Bool(flag)) => Value::Bool(*flag),
        (FieldType::Float64, Json::Number(number)) => {
            Value::Float(number.as_f64().ok_or_else(mismatch)?)
        }
        (
            FieldType::Int8
            | FieldType::Int16
            | FieldType::Uint16
            | FieldType::Int32
            | FieldType::Uint32
            | FieldType::Int64,
            Json::Number(number),
        ) => Value::Int(number.as_i64().ok_or_else(mismatch)?),
        (FieldType::Int16, Json::String(name)) => {
            // Error codes may be written by name: "UNKNOWN_TOPIC_OR_PARTITION".
            let error = crate::schema::error_by_name(name).ok_or_else(mismatch)?;
            Value::Int(i64::from(error.code))
        }
        (FieldType::String, Json::String(text)) => Value::String(text.clone()),
        (FieldType::Bytes, Json::String(text)) => {
            Value::Bytes(Bytes::from(parse_hex(text).map_err(EncodeError::new)?))
        }
        (FieldType::Bytes, Json::Object(object))
            if object.len() == 1 && object.contains_key("utf8") =>
        {
            let text = object["utf8"].as_str().ok_or_else(mismatch)?;
            Value::Bytes(Bytes::copy_from_slice(text.as_bytes()))
        }
        (FieldType::Uuid, Json::String(text)) => {
            Value::Uuid(parse_uuid(text).map_err(EncodeError::new)?)
        }
        (FieldType::Records, Json::String(text)) => {
            Value::Bytes(Bytes::from(parse_hex(text).map_err(EncodeError::new)?))
        }
        (FieldType::Records, json) => Value::Records(Box::new(
            RecordSet::from_json(json).map_err(EncodeError::new)?,
        )),
        (FieldType::Struct(spec), json) => Value::Struct(struct_from_json(spec, walk, json)?),
        (FieldType::Array(element), Json::Array(items)) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(index, item)| {
                    value_from_json(element, false, walk, item)
                        .map_err(|error| error.within(PathSegment::Index(index)))
                })
                .collect::<Result<_, _>>()?,
        ),
        _ => return Err(mismatch()),
    };
    Ok(value)
}

/// Looks a field up by name in a struct spec.
pub fn field_spec<'a>(spec: &'a StructSpec, name: &str) -> Option<&'a FieldSpec> {
    spec.fields.iter().find(|field| field.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{REQUEST_HEADER, RESPONSE_HEADER};

    /// A request (or, without the API key, version and client id, a
    /// response) header's bytes: `client_id` as a length and bytes (`None`
    /// null), then a tag section of `tags` empty tags.
    fn header(request: bool, client_id: Option<&[u8]>, tags: u8) -> Vec<u8> {
        let mut bytes = Vec::new();
        if request {
            bytes.extend_from_slice(&[0, 3, 0, 12]);
        }
        bytes.extend_from_slice(&7_i32.to_be_bytes());
        if request {
            match client_id {
                Some(id) => {
                    let len = i16::try_from(id.len()).expect("short");
                    bytes.extend_from_slice(&len.to_be_bytes());
                    bytes.extend_from_slice(id);
                }
                None => bytes.extend_from_slice(&(-1_i16).to_be_bytes()),
            }
        }
        bytes.push(tags);
        for tag in 0..tags {
            bytes.extend_from_slice(&[tag, 1, 0xaa]);
        }
        bytes
    }

    #[test]
    fn known_headers_skim_as_their_spec_reads_them() {
        let skim = DecodeOptions {
            skim: true,
            ..DecodeOptions::default()
        };
        let ids: [Option<&[u8]>; 5] = [
            None,
            Some(b""),
            Some(b"kwire-client"),
            Some("cl\u{e9}ent".as_bytes()),
            Some(&[0x6b, 0xff]),
        ];
        let mut inputs = Vec::new();
        for request in [true, false] {
            for id in ids {
                for tags in [0, 1, 2] {
                    let whole = header(request, id, tags);
                    for cut in 0..=whole.len() {
                        inputs.push(whole[..cut].to_vec());
                    }
                    for at in 0..whole.len() {
                        for flip in [0x01, 0x80, 0xff] {
                            let mut damaged = whole.clone();
                            damaged[at] ^= flip;
                            inputs.push(damaged);
                        }
                    }
                }
            }
        }
        let mut skimmed = 0;
        for (spec, versions) in [(REQUEST_HEADER, -1..=3), (RESPONSE_HEADER, -1..=2)] {
            for version in versions {
                for bytes in &inputs {
                    let mut fast = Reader::new(Bytes::copy_from_slice(bytes));
                    let mut walked = fast.clone();
                    if skim_kafka_header(&mut fast.clone(), spec, version).is_some() {
                        skimmed += 1;
                    }
                    let a = decode_header(&mut fast, spec, version, &skim);
                    let b = decode_header_by_spec(&mut walked, spec, version, &skim);
                    let context = format!("{} v{version} {bytes:02x?}", spec.name);
                    assert_eq!(a.correlation_id, b.correlation_id, "{context}");
                    assert_eq!(a.client_id, b.client_id, "{context}");
                    assert_eq!(
                        format!("{:?}", a.message),
                        format!("{:?}", b.message),
                        "{context}"
                    );
                    assert_eq!(fast.offset(), walked.offset(), "{context}");
                }
            }
        }
        assert!(skimmed > 300, "only {skimmed} headers skimmed");
    }
}
