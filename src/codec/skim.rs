//! Skimming (`DecodeOptions::skim`): each body layout (a struct spec at
//! one version) is turned once into a plan, a list of steps in which the
//! fixed-size fields a summary never asks for are merged into byte counts
//! stepped over on the way to the next step, and only what the
//! [`Gatherer`] wants is read. A plan
//! covers well-formed bodies only: at the first thing that would be an
//! error or a violation (a length past the end, a null where none is
//! allowed, bad UTF-8, a tagged field) it gives up, and the codec decodes
//! the body whole and reports it as always. The items of an array of flat
//! structs (integers and arrays of numbers only, such as a Metadata
//! partition) run in one loop, without a gatherer frame each.
//!
//! A skim can also write the body's JSON form as it reads
//! (`DecodeOptions::json`): its plan then steps over nothing, and each
//! field goes to a [`JsonSink`] under its key, in the form and order
//! `Struct::write_json` gives the decoded tree, so the text is the same
//! and no tree is built for it.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use super::{decode_records, read_fixed, read_int, read_length, RecordsMode, SKIM_KEEPS};
use crate::hashing::PlainHashing;
use crate::json::{JsonSink, Key};
use crate::records::{Budget, RecordSet};
use crate::schema::{FieldType, StructSpec};
use crate::summary::{asks_for_array, number_role, topic_rank, Gatherer, NumberRole};
use crate::value::{Struct, Value};
use crate::wire::Reader;

/// How one struct layout is skimmed.
#[derive(Debug)]
pub(super) struct Plan {
    steps: Vec<Planned>,
    /// Bytes of fixed-size fields after the last step that tell a summary
    /// nothing, stepped over at the end.
    skip_after: usize,
    /// How many of the steps keep their value: room made up front.
    pub kept: usize,
    /// Every step is an integer, a skipped array or the empty tag section,
    /// and none is shown: a struct that names no topic and holds no other
    /// struct nor a record set, whose array items run without a gatherer
    /// frame of their own ([`Skim::flat_items`]).
    flat: bool,
}

/// A step, after the fixed-size fields before it that tell a summary
/// nothing: `skip_before` bytes stepped over in one go. (Only plans that
/// write no JSON step over anything.) Folding them into the next step
/// saves a dispatch on the step kind, which is hard to predict.
#[derive(Debug)]
struct Planned {
    skip_before: usize,
    step: Step,
}

/// One step of a plan. Each but `NoTags` is one field, under its JSON key.
/// Each kind of array has a step of its own, so that running one takes a
/// single dispatch (on the step), hard to predict as it is.
#[derive(Debug)]
enum Step {
    /// An integer field, handed to the gatherer when it has a role there
    /// and, at a body's top level, kept when named in `SKIM_KEEPS`.
    Int {
        key: Key,
        form: IntForm,
        role: Option<NumberRole>,
        keep: bool,
    },
    /// A boolean, float or UUID field (a UUID may be a topic id, of this
    /// rank as a topic field), kept like an integer.
    Fixed {
        key: Key,
        ty: &'static FieldType,
        topic: Option<usize>,
        keep: bool,
    },
    Text {
        key: Key,
        compact: bool,
        nullable: bool,
        /// Its rank as a topic field, when it can name a topic.
        topic: Option<usize>,
    },
    /// Bytes, or (`records`) a record set.
    Sized {
        key: Key,
        compact: bool,
        nullable: bool,
        records: bool,
    },
    Struct {
        key: Key,
        nullable: bool,
        plan: Plan,
    },
    /// An array of structs.
    Structs { array: Array, plan: Plan },
    /// An array of numbers or UUIDs of this size, not shown: stepped over
    /// all at once.
    Skipped { array: Array, size: usize },
    /// An array of numbers, booleans or UUIDs, each read and shown.
    Numbers {
        array: Array,
        ty: &'static FieldType,
    },
    /// An array of strings.
    Texts { array: Array },
    /// A flexible struct's tagged-field section, which must be empty.
    NoTags,
}

/// An array field, whatever its items.
#[derive(Debug)]
struct Array {
    key: Key,
    compact: bool,
    nullable: bool,
    /// Whether the gatherer is told of it (`asks_for_array`).
    gather: bool,
}

/// An integer type's form on the wire, worked out once per plan, so that
/// reading one takes no dispatch on its type: `size` big-endian bytes,
/// signed or not.
#[derive(Clone, Copy, Debug)]
struct IntForm {
    size: usize,
    /// 64 less the integer's bits: what a left-aligned read of eight
    /// bytes is shifted right by.
    shift: u32,
    signed: bool,
}

impl IntForm {
    fn of(ty: &FieldType) -> Option<IntForm> {
        let (size, signed) = match ty {
            FieldType::Int8 => (1, true),
            FieldType::Int16 => (2, true),
            FieldType::Uint16 => (2, false),
            FieldType::Int32 => (4, true),
            FieldType::Uint32 => (4, false),
            FieldType::Int64 => (8, true),
            _ => return None,
        };
        Some(IntForm {
            size,
            shift: 64 - 8 * size as u32,
            signed,
        })
    }

    /// Reads one; `None` past the end.
    #[inline]
    fn read(self, reader: &mut Reader) -> Option<i64> {
        let rest = reader.rest();
        // Eight bytes read at once wherever eight remain (all but the last
        // fields of a body), the integer in their leading bytes.
        let leading = match rest.first_chunk::<8>() {
            Some(eight) => u64::from_be_bytes(*eight),
            None => {
                let mut eight = [0; 8];
                eight
                    .get_mut(..self.size)?
                    .copy_from_slice(rest.get(..self.size)?);
                u64::from_be_bytes(eight)
            }
        };
        reader.skip(self.size).ok()?;
        // Bits reinterpreted, then shifted down: arithmetically where the
        // integer is signed.
        let signed = i64::from_ne_bytes(leading.to_ne_bytes()) >> self.shift;
        let unsigned = i64::try_from(leading >> self.shift).unwrap_or(i64::MAX);
        Some(if self.signed { signed } else { unsigned })
    }
}

/// Plans by body layout (its address), version and whether they write
/// JSON; `None` for a layout no plan covers.
type Plans = HashMap<(usize, i16, bool), Option<Rc<Plan>>, PlainHashing>;

thread_local! {
    static PLANS: RefCell<Plans> = RefCell::new(HashMap::default());
}

/// The plan for a message body of layout `spec` at `version`, made on
/// first use; with `json`, one that reads every field to show it.
pub(super) fn plan(
    spec: &'static StructSpec,
    version: i16,
    flexible: bool,
    json: bool,
) -> Option<Rc<Plan>> {
    let key = (std::ptr::from_ref(spec) as usize, version, json);
    PLANS.with(|plans| {
        // Looked up first, as nearly every call finds its plan: cheaper
        // than an entry, which makes room for one more before it looks.
        if let Some(plan) = plans.borrow().get(&key) {
            return plan.clone();
        }
        let layout = Layout {
            version,
            flexible,
            json,
        };
        let plan = layout.compile(spec, true).map(Rc::new);
        plans.borrow_mut().insert(key, plan.clone());
        plan
    })
}

/// What a plan is compiled for.
struct Layout {
    version: i16,
    flexible: bool,
    json: bool,
}

impl Layout {
    /// Turns a struct layout into steps; `None` for a layout with an array
    /// of arrays, bytes or record sets, which no message has today, or
    /// with a field name JSON would need escaped.
    fn compile(&self, spec: &'static StructSpec, top: bool) -> Option<Plan> {
        let (version, flexible) = (self.version, self.flexible);
        let mut steps: Vec<Planned> = Vec::new();
        // Bytes to step over before the next step.
        let mut skip = 0;
        for field in spec.fields {
            if !field.in_body(version, flexible) {
                continue;
            }
            let name = field.name;
            let key = Key::of_name(name)?;
            let nullable = field.nullable.contains(version);
            let compact = field.is_compact(version, flexible);
            let step = match &field.ty {
                FieldType::String => Step::Text {
                    key,
                    compact,
                    nullable,
                    topic: topic_rank(name),
                },
                FieldType::Bytes | FieldType::Records => Step::Sized {
                    key,
                    compact,
                    nullable,
                    records: matches!(field.ty, FieldType::Records),
                },
                FieldType::Struct(inner) => Step::Struct {
                    key,
                    nullable,
                    plan: self.compile(inner, false)?,
                },
                FieldType::Array(element) => {
                    let array = Array {
                        key,
                        compact,
                        nullable,
                        gather: asks_for_array(name),
                    };
                    match element {
                        FieldType::String => Step::Texts { array },
                        FieldType::Struct(inner) => Step::Structs {
                            array,
                            plan: self.compile(inner, false)?,
                        },
                        fixed if self.json => {
                            fixed.fixed_size()?;
                            Step::Numbers { array, ty: fixed }
                        }
                        fixed => Step::Skipped {
                            array,
                            size: fixed.fixed_size()?,
                        },
                    }
                }
                fixed => {
                    let size = fixed.fixed_size()?;
                    let keep = top && SKIM_KEEPS.contains(&name);
                    let step = match IntForm::of(fixed) {
                        Some(form) => Step::Int {
                            key,
                            form,
                            role: number_role(name),
                            keep,
                        },
                        None => Step::Fixed {
                            key,
                            ty: fixed,
                            topic: topic_rank(name).filter(|_| matches!(fixed, FieldType::Uuid)),
                            keep,
                        },
                    };
                    let asks = matches!(
                        step,
                        Step::Int { role: Some(_), .. } | Step::Fixed { topic: Some(_), .. }
                    );
                    if !asks && !keep && !self.json {
                        skip += size;
                        continue;
                    }
                    step
                }
            };
            steps.push(Planned {
                skip_before: std::mem::take(&mut skip),
                step,
            });
        }
        if flexible {
            steps.push(Planned {
                skip_before: std::mem::take(&mut skip),
                step: Step::NoTags,
            });
        }
        let kept = steps
            .iter()
            .filter(|planned| {
                matches!(
                    planned.step,
                    Step::Int { keep: true, .. } | Step::Fixed { keep: true, .. }
                )
            })
            .count();
        let flat = !self.json
            && steps.iter().all(|planned| {
                matches!(
                    planned.step,
                    Step::Int { keep: false, .. } | Step::Skipped { .. } | Step::NoTags
                )
            });
        Some(Plan {
            steps,
            skip_after: skip,
            kept,
            flat,
        })
    }
}

/// What a plan runs with.
pub(super) struct Skim<'a, S: JsonSink> {
    pub gather: &'a mut Gatherer,
    pub records: RecordsMode,
    pub budget: &'a mut Budget,
    /// Where the body's JSON goes (`Discard` when none is wanted: the
    /// plan's steps then show nothing).
    pub json: &'a mut S,
}

impl<S: JsonSink> Skim<'_, S> {
    /// Runs `plan` over a struct; the top level's kept values go to `out`
    /// (nested structs keep none). `None` at the first thing the plan does
    /// not cover.
    pub(super) fn run(
        &mut self,
        plan: &Plan,
        reader: &mut Reader,
        mut out: Option<&mut Struct>,
    ) -> Option<()> {
        self.json.begin_object();
        for Planned { skip_before, step } in &plan.steps {
            if *skip_before > 0 {
                reader.skip(*skip_before).ok()?;
            }
            match step {
                Step::Int {
                    key,
                    form,
                    role,
                    keep,
                } => {
                    self.json.known_key(*key);
                    let number = form.read(reader)?;
                    if let Some(role) = role {
                        self.gather.number(*role, number);
                    }
                    self.json.int(number);
                    if let Some(out) = out.as_deref_mut().filter(|_| *keep) {
                        out.push(key.name(), Value::Int(number));
                    }
                }
                Step::Fixed {
                    key,
                    ty,
                    topic,
                    keep,
                } => {
                    self.json.known_key(*key);
                    let value = read_fixed(reader, ty).ok()??;
                    if let (Some(rank), Value::Uuid(uuid)) = (topic, &value) {
                        self.gather.topic_uuid(*rank, uuid);
                    }
                    if S::KEEPS {
                        value.write_json(self.json);
                    }
                    if let Some(out) = out.as_deref_mut().filter(|_| *keep) {
                        out.push(key.name(), value);
                    }
                }
                Step::Text {
                    key,
                    compact,
                    nullable,
                    topic,
                } => {
                    self.json.known_key(*key);
                    let text = text(reader, *compact, *nullable)?;
                    if let (Some(rank), Some(text)) = (topic, text) {
                        self.gather.topic_text(*rank, text);
                    }
                    self.json.opt_str(text);
                }
                Step::Sized {
                    key,
                    compact,
                    nullable,
                    records,
                } => {
                    self.json.known_key(*key);
                    let Some(len) = length(reader, *compact, *nullable)? else {
                        self.json.null();
                        continue;
                    };
                    let len = reader.check_length(len).ok()?;
                    if !S::KEEPS {
                        // Nothing is shown: bytes are stepped over, and
                        // record sets counted from their batch headers
                        // where they can be, with no view taken of them.
                        if !*records {
                            reader.skip(len).ok()?;
                            continue;
                        }
                        if self.records == RecordsMode::HeadersOnly {
                            let tally = RecordSet::tally_headers(reader.rest().get(..len)?);
                            if let Some(tally) = tally {
                                reader.skip(len).ok()?;
                                self.gather.record_tally(&tally);
                                continue;
                            }
                        }
                    }
                    let data = reader.take(len).ok()?;
                    if *records {
                        let records = decode_records(data, self.records, self.budget);
                        self.gather.records(&records);
                        if S::KEEPS {
                            records.write_json(self.json);
                        }
                    } else {
                        self.json.hex(&data);
                    }
                }
                Step::Struct {
                    key,
                    nullable,
                    plan,
                } => {
                    self.json.known_key(*key);
                    // A nullable struct is preceded by an int8: -1 null.
                    if *nullable && reader.i8().ok()? < 0 {
                        self.json.null();
                    } else {
                        self.nested(plan, reader)?;
                    }
                }
                Step::Structs { array, plan } => {
                    if let Some(count) = self.begin_array(array, reader)? {
                        if plan.flat {
                            self.flat_items(plan, count, reader)?;
                        } else {
                            for _ in 0..count {
                                self.nested(plan, reader)?;
                            }
                        }
                        self.json.end_array();
                    }
                }
                Step::Skipped { array, size } => {
                    if let Some(count) = self.begin_array(array, reader)? {
                        reader.skip(size.checked_mul(count)?).ok()?;
                        self.json.end_array();
                    }
                }
                Step::Numbers { array, ty } => {
                    if let Some(count) = self.begin_array(array, reader)? {
                        for _ in 0..count {
                            match read_int(reader, ty).ok()? {
                                Some(number) => self.json.int(number),
                                None => read_fixed(reader, ty).ok()??.write_json(self.json),
                            }
                        }
                        self.json.end_array();
                    }
                }
                Step::Texts { array } => {
                    if let Some(count) = self.begin_array(array, reader)? {
                        for _ in 0..count {
                            let text = text(reader, array.compact, false)??;
                            self.json.str(text);
                        }
                        self.json.end_array();
                    }
                }
                Step::NoTags => no_tags(reader)?,
            }
        }
        if plan.skip_after > 0 {
            reader.skip(plan.skip_after).ok()?;
        }
        self.json.end_object();
        Some(())
    }

    fn nested(&mut self, plan: &Plan, reader: &mut Reader) -> Option<()> {
        self.gather.enter_struct();
        self.run(plan, reader, None)?;
        self.gather.leave_struct();
        Some(())
    }

    /// Runs a flat plan (see [`Plan::flat`]) over `count` array items, as
    /// [`Skim::nested`] would run it over each, in one loop: all that a
    /// gatherer frame of such an item holds is its best partition field,
    /// kept here instead. (An array the gatherer is told of marks only the
    /// frame of its struct, which no topic can be: it is not told here.)
    fn flat_items(&mut self, plan: &Plan, count: usize, reader: &mut Reader) -> Option<()> {
        for _ in 0..count {
            let mut best_partition = None;
            for Planned { skip_before, step } in &plan.steps {
                if *skip_before > 0 {
                    reader.skip(*skip_before).ok()?;
                }
                match step {
                    Step::Int { form, role, .. } => {
                        let number = form.read(reader)?;
                        match role {
                            Some(NumberRole::Partition(rank)) => {
                                self.gather
                                    .partition_field(&mut best_partition, *rank, number);
                            }
                            Some(role) => self.gather.number(*role, number),
                            None => {}
                        }
                    }
                    Step::Skipped { array, size } => {
                        if let Some(count) = item_count(reader, array)? {
                            reader.skip(size.checked_mul(count)?).ok()?;
                        }
                    }
                    Step::NoTags => no_tags(reader)?,
                    // Not in a flat plan.
                    _ => return None,
                }
            }
            if plan.skip_after > 0 {
                reader.skip(plan.skip_after).ok()?;
            }
        }
        Some(())
    }

    /// An array's key and count, the gatherer told of it and its JSON
    /// begun; `Some(None)` for a null array (shown as one).
    #[inline(always)]
    fn begin_array(&mut self, array: &Array, reader: &mut Reader) -> Option<Option<usize>> {
        self.json.known_key(array.key);
        let Some(count) = item_count(reader, array)? else {
            self.json.null();
            return Some(None);
        };
        if array.gather {
            self.gather.array(array.key.name());
        }
        self.json.begin_array();
        Some(Some(count))
    }
}

/// A 32-bit (or compact) length or count; `Some(None)` for an allowed
/// null, `None` for anything the full walk must report.
#[inline]
fn length(reader: &mut Reader, compact: bool, nullable: bool) -> Option<Option<u64>> {
    match read_length(reader, compact, true).ok()? {
        None if nullable => Some(None),
        None => None,
        Some(len) => Some(Some(len)),
    }
}

/// An array's count, checked against the bytes left; `Some(None)` for an
/// allowed null.
#[inline]
fn item_count(reader: &mut Reader, array: &Array) -> Option<Option<usize>> {
    match length(reader, array.compact, array.nullable)? {
        Some(count) => reader.check_count(count).ok().map(Some),
        None => Some(None),
    }
}

/// A flexible struct's tagged-field section, which a plan covers only
/// when empty.
#[inline]
fn no_tags(reader: &mut Reader) -> Option<()> {
    (reader.unsigned_varint().ok()? == 0).then_some(())
}

/// A string, checked to be UTF-8; `Some(None)` for an allowed null.
#[inline]
pub(super) fn text(reader: &mut Reader, compact: bool, nullable: bool) -> Option<Option<&str>> {
    match read_length(reader, compact, false).ok()? {
        None if nullable => Some(None),
        None => None,
        Some(len) => {
            let len = reader.check_length(len).ok()?;
            reader.str(len).ok().map(Some)
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use serde_json::json;

    use super::*;
    use crate::codec::{
        decode_message, decode_message_after, encode_message, message_from_json, DecodeOptions,
    };
    use crate::summary::Summary;

    /// The plan of the array of structs named `name` among `plan`'s steps.
    fn items_plan<'a>(plan: &'a Plan, name: &str) -> &'a Plan {
        plan.steps
            .iter()
            .find_map(|planned| match &planned.step {
                Step::Structs { array, plan } if array.key.name() == name => Some(plan),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no array of structs `{name}`"))
    }

    /// Metadata responses, plain and flexible, whose partitions the skim
    /// runs as flat items, without a gatherer frame each: the summary is
    /// the one their tree gives, with partitions out of order and repeated,
    /// a topic named twice, errors in partitions and replica lists of every
    /// length.
    #[test]
    fn flat_items_gather_what_their_tree_holds() {
        let spec = crate::schema::api(3).expect("Metadata").response;
        let partition = |index: i32, error: i16, replicas: usize| {
            json!({
                "partition_index": index,
                "error_code": error,
                "replica_nodes": vec![1; replicas],
                "isr_nodes": vec![2; replicas / 2],
            })
        };
        let body = json!({ "topics": [
            { "name": "orders", "partitions": [
                partition(2, 0, 3), partition(0, 9, 1), partition(2, 0, 0), partition(1, 0, 2),
            ] },
            { "name": "audit", "partitions": [] },
            { "name": "orders", "partitions": [partition(3, 5, 1), partition(0, 0, 4)] },
        ] });
        for version in [1, 8, 12] {
            let flexible = spec.flexible.contains(version);
            let top = plan(spec.body, version, flexible, false).expect("a plan");
            assert!(items_plan(items_plan(&top, "topics"), "partitions").flat);
            let tree = message_from_json(spec, version, &body).expect("a tree");
            let mut bytes = Vec::new();
            encode_message(&mut bytes, spec, version, &tree).expect("encoded");
            let decode = |options: &DecodeOptions| {
                let mut reader = Reader::new(Bytes::from(bytes.clone()));
                decode_message(&mut reader, spec, version, options)
            };
            let whole = decode(&DecodeOptions::default());
            assert!(whole.error.is_none(), "v{version}: {:?}", whole.error);
            let skimmed = decode(&DecodeOptions {
                skim: true,
                ..DecodeOptions::default()
            });
            let expected = Summary::of_tree(&whole.body);
            assert_eq!(skimmed.summary.as_ref(), Some(&expected), "v{version}");
            assert_eq!(
                expected.line(),
                "audit orders[2,0,1,3] REPLICA_NOT_AVAILABLE,LEADER_NOT_AVAILABLE"
            );
        }
    }
    /// A Fetch response gathered straight onto its Produce-like request's
    /// summary (`decode_message_after`) sums up as `Summary::then` of the
    /// two, cut at every byte: where the skim gives up half way, what it
    /// listed stays where the tree lists it again, and the record tallies
    /// count once.
    #[test]
    fn a_message_gathered_after_an_earlier_one_sums_up_as_then_does() {
        // As the session skims for lines and statistics.
        let skim = DecodeOptions {
            skim: true,
            records: RecordsMode::HeadersOnly,
            ..DecodeOptions::default()
        };
        let batch = |values: &[&str]| {
            let records: Vec<_> = values
                .iter()
                .map(|value| json!({ "value": value }))
                .collect();
            json!({ "batches": [{ "records": records }] })
        };
        let encoded = |key: i16, request: bool, version: i16, body: serde_json::Value| {
            let api = crate::schema::api(key).expect("a known API");
            let spec = if request { api.request } else { api.response };
            let tree = message_from_json(spec, version, &body).expect("a tree");
            let mut bytes = Vec::new();
            encode_message(&mut bytes, spec, version, &tree).expect("encoded");
            (spec, bytes)
        };
        let (produce, request) = encoded(
            0,
            true,
            8,
            json!({ "acks": 1, "topic_data": [
            { "name": "orders", "partition_data": [
                { "index": 1, "records": batch(&["a", "b", "c"]) },
                { "index": 5, "records": batch(&["d"]) },
            ] },
        ] }),
        );
        let mut reader = Reader::new(Bytes::from(request));
        let earlier = decode_message(&mut reader, produce, 8, &skim)
            .summary
            .expect("a summary");
        assert_eq!(earlier.line(), "orders[1,5] 4 records 154 B");
        let (fetch, response) = encoded(
            1,
            false,
            11,
            json!({ "responses": [
            { "topic": "orders", "partitions": [
                { "partition_index": 0, "records": batch(&["e", "f"]) },
                { "partition_index": 1, "error_code": 6, "records": batch(&["g"]) },
            ] },
            { "topic": "audit", "partitions": [
                { "partition_index": 2, "records": batch(&["h"]) },
            ] },
        ] }),
        );
        for cut in (0..=response.len()).rev() {
            let decode = |earlier: Option<Summary>| {
                let bytes = Bytes::copy_from_slice(&response[..cut]);
                decode_message_after(&mut Reader::new(bytes), fetch, 11, &skim, earlier)
            };
            let expected = earlier
                .clone()
                .then(decode(None).summary.expect("a summary"));
            let after = decode(Some(earlier.clone()));
            assert_eq!(after.summary, Some(expected.clone()), "cut at byte {cut}");
            if cut == response.len() {
                assert!(after.body.fields.is_empty(), "the whole body is skimmed");
                assert_eq!(
                    expected.line(),
                    "audit[2] orders[1,5,0] 8 records 369 B NOT_LEADER_OR_FOLLOWER"
                );
            }
        }
    }
}
