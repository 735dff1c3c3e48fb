//! What an exchange is about: its topics and partitions, its record counts
//! and bytes per topic-partition, and its error codes. A [`Gatherer`]
//! learns them from a stream of events (a struct begins, an integer field,
//! a text field, an array, a record set, a struct ends), which come either
//! from a decoded tree ([`Summary::add_tree`]) or straight from the wire
//! while the codec skims a message without building its tree: one set of
//! rules, so lines and statistics read the same either way. A response is
//! gathered onto its request's summary ([`Gatherer::start_after`]), with
//! the same outcome as merging the two ([`Summary::then`]).

use std::borrow::Borrow;
use std::cell::Cell;
use std::cmp::Ordering;

use compact_str::CompactString;
use smallvec::SmallVec;

use crate::exchange::{error_name, push_int, push_uint};
use crate::records::RecordSet;
use crate::schema;
use crate::value::{Struct, Value};

/// What an exchange is about, gathered from both of its messages.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Summary {
    /// Topic name (or topic id) to the partitions named under it.
    pub topics: Listing<CompactString, Partitions>,
    /// Per topic-partition: records and their bytes (keys plus values).
    pub records: Listing<(CompactString, i32), RecordTally>,
    /// Non-zero error codes, each once, in order of appearance.
    pub errors: Vec<i16>,
}

/// A topic's partitions, each once, in order of appearance.
pub type Partitions = SmallVec<[i32; 4]>;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecordTally {
    pub batches: u64,
    pub records: u64,
    /// Bytes of the record sets on the wire.
    pub bytes: u64,
    /// Batches whose CRC does not match their bytes.
    pub bad_crc: u64,
}

/// A small map kept as a list sorted by key. A summary names one topic or
/// a few, so one short list beats a tree's nodes; names are
/// `CompactString`s, held inline up to 24 bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct Listing<K, V>(Vec<(K, V)>);

impl<K, V> Default for Listing<K, V> {
    fn default() -> Self {
        Listing(Vec::new())
    }
}

impl<K, V> Listing<K, V> {
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The entries, by key.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&K, &V)> + ExactSizeIterator {
        self.0.iter().map(|(key, value)| (key, value))
    }

    pub fn keys(&self) -> impl Iterator<Item = &K> {
        self.0.iter().map(|(key, _)| key)
    }

    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.0.iter().map(|(_, value)| value)
    }

    pub fn get<Q: Ord + ?Sized>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
    {
        let at = self.find(|probe| probe.borrow().cmp(key)).ok()?;
        self.0.get(at).map(|(_, value)| value)
    }

    pub fn contains_key<Q: Ord + ?Sized>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
    {
        self.get(key).is_some()
    }

    /// Whether `other` has the same keys as this listing.
    fn same_keys(&self, other: &Listing<K, V>) -> bool
    where
        K: PartialEq,
    {
        self.0.len() == other.0.len()
            && self
                .0
                .iter()
                .zip(&other.0)
                .all(|((mine, _), (theirs, _))| mine == theirs)
    }

    /// This listing's values beside `other`'s, key by key.
    fn values_beside<'a>(
        &'a mut self,
        other: &'a Listing<K, V>,
    ) -> impl Iterator<Item = (&'a mut V, &'a V)> {
        self.0
            .iter_mut()
            .zip(&other.0)
            .map(|((_, mine), (_, theirs))| (mine, theirs))
    }

    /// Where the key that `order` finds equal is, or where it would go.
    fn find(&self, order: impl Fn(&K) -> Ordering) -> Result<usize, usize> {
        self.0.binary_search_by(|(probe, _)| order(probe))
    }

    /// The value under the key that `order` finds equal, inserted (its key
    /// made by `key`, only then) when there is none.
    fn entry(&mut self, order: impl Fn(&K) -> Ordering, key: impl FnOnce() -> K) -> &mut V
    where
        V: Default,
    {
        // Keys mostly come in order, one after another: then the last
        // entry tells where a key goes, with no search.
        let at = match self.0.last().map(|(last, _)| order(last)) {
            None | Some(Ordering::Less) => Err(self.0.len()),
            Some(Ordering::Equal) => Ok(self.0.len() - 1),
            Some(Ordering::Greater) => self.find(order),
        };
        let at = match at {
            Ok(at) => at,
            Err(at) => {
                self.0.insert(at, (key(), V::default()));
                at
            }
        };
        &mut self.0[at].1
    }
}

impl<'a, K, V> IntoIterator for &'a Listing<K, V> {
    type Item = (&'a K, &'a V);
    type IntoIter = std::iter::Map<std::slice::Iter<'a, (K, V)>, fn(&'a (K, V)) -> (&'a K, &'a V)>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(key, value)| (key, value))
    }
}

/// Adds to `listed` the partitions it does not hold yet, in order.
fn add_partitions(listed: &mut Partitions, partitions: &[i32]) {
    // The common case: a topic listed for the first time, its partitions
    // in increasing order, so none is repeated.
    if listed.is_empty() && partitions.windows(2).all(|pair| pair[0] < pair[1]) {
        if partitions.len() > listed.inline_size() {
            // More than fit inline: one allocation of the right size and
            // one copy, not growth item by item.
            *listed = Partitions::from_slice(partitions);
        } else {
            // One or a few: item by item, not through a memcpy call.
            listed.extend(partitions.iter().copied());
        }
        return;
    }
    listed.reserve(partitions.len());
    for partition in partitions {
        if !listed.contains(partition) {
            listed.push(*partition);
        }
    }
}

impl RecordTally {
    /// What a record set counts for.
    pub fn of(records: &RecordSet) -> RecordTally {
        RecordTally {
            batches: records.batches.len() as u64,
            records: records.record_count() as u64,
            bytes: records.raw.len() as u64,
            bad_crc: records.crc_mismatches() as u64,
        }
    }

    fn add(&mut self, other: &RecordTally) {
        self.batches += other.batches;
        self.records += other.records;
        self.bytes += other.bytes;
        self.bad_crc += other.bad_crc;
    }
}

/// Field names that hold a topic's name or id in the message definitions,
/// the likelier first.
const TOPIC_FIELDS: &[&str] = &["name", "topic", "topic_name", "topic_id"];
/// Field names that hold a partition index, the likelier first.
const PARTITION_FIELDS: &[&str] = &["partition_index", "index", "partition", "partition_id"];

impl Summary {
    /// The summary of one decoded tree.
    pub fn of_tree(tree: &Struct) -> Summary {
        let mut summary = Summary::default();
        summary.add_tree(tree);
        summary
    }

    /// Adds what `tree` is about.
    pub fn add_tree(&mut self, tree: &Struct) {
        let mut gatherer = Gatherer::start_after(std::mem::take(self));
        gatherer.replay_struct(tree);
        *self = gatherer.finish();
    }

    /// Hands this summary's buffers, emptied, to the next gatherer
    /// started on this thread ([`Gatherer::start`]), which then allocates
    /// none for the first topic and tally (dropping it is fine too).
    pub fn recycle(mut self) {
        self.topics.0.clear();
        self.records.0.clear();
        self.errors.clear();
        SPARE_SUMMARY.with(|spare| spare.set(self));
    }

    /// Adds what another summary holds, as if its message had been
    /// gathered after this one's.
    pub fn merge(&mut self, other: &Summary) {
        // A response names what its request named, as a rule: entry by
        // entry, with nothing to look up.
        if self.topics.same_keys(&other.topics) {
            for (mine, theirs) in self.topics.values_beside(&other.topics) {
                add_partitions(mine, theirs);
            }
        } else {
            for (topic, partitions) in &other.topics {
                self.note_partitions(topic, partitions);
            }
        }
        if self.records.same_keys(&other.records) {
            for (mine, theirs) in self.records.values_beside(&other.records) {
                mine.add(theirs);
            }
        } else {
            for ((topic, partition), tally) in &other.records {
                self.tally_for(topic, *partition).add(tally);
            }
        }
        for code in &other.errors {
            self.note_error(*code);
        }
    }

    /// This summary with `later`'s added, as [`Summary::merge`] does, but
    /// without copying when it can: where this one only names topics (a
    /// Metadata or ListOffsets request, say), adding its names to `later`
    /// comes to the same.
    pub fn then(mut self, mut later: Summary) -> Summary {
        let names_only = self.records.is_empty()
            && self.errors.is_empty()
            && self.topics.values().all(SmallVec::is_empty);
        if names_only {
            later.merge(&self);
            return later;
        }
        // What this one lacks is taken from `later` as it is: merged into
        // nothing it would come out the same (its entries are each once).
        if self.topics.is_empty() {
            std::mem::swap(&mut self.topics, &mut later.topics);
        }
        if self.records.is_empty() {
            std::mem::swap(&mut self.records, &mut later.records);
        }
        if self.errors.is_empty() {
            std::mem::swap(&mut self.errors, &mut later.errors);
        }
        self.merge(&later);
        self
    }

    pub fn record_count(&self) -> u64 {
        self.records.values().map(|tally| tally.records).sum()
    }

    pub fn record_bytes(&self) -> u64 {
        self.records.values().map(|tally| tally.bytes).sum()
    }

    /// Record batches whose CRC does not match their bytes.
    pub fn bad_crc_batches(&self) -> u64 {
        self.records.values().map(|tally| tally.bad_crc).sum()
    }

    /// Error names, `NONE` left out: `UNKNOWN_TOPIC_OR_PARTITION`.
    pub fn error_names(&self) -> Vec<String> {
        self.errors.iter().map(|code| error_name(*code)).collect()
    }

    /// Lists `topic`, and `partitions` under it, each once and in order;
    /// the name is copied only when it is new.
    fn note_partitions(&mut self, topic: &str, partitions: &[i32]) {
        let listed = self
            .topics
            .entry(|probe| probe.as_str().cmp(topic), || topic.into());
        add_partitions(listed, partitions);
    }

    fn note_error(&mut self, code: i16) {
        if !self.errors.contains(&code) {
            self.errors.push(code);
        }
    }

    fn tally_for(&mut self, topic: &str, partition: i32) -> &mut RecordTally {
        self.records.entry(
            |(probe, index)| (probe.as_str(), *index).cmp(&(topic, partition)),
            || (topic.into(), partition),
        )
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
        if lead > 0 {
            out.drain(start..start + lead);
        }
    }
}

/// Gathers a [`Summary`] from the events of a walk over one message.
///
/// The rules: a struct holding a topic field (`name`, `topic`, ...) next
/// to an array whose name says `partition` is a topic; its partitions are
/// the structs below it with a partition field (`partition_index`, ...).
/// Record sets count against the nearest topic and the partition of the
/// struct holding them (`?` and -1 when there is none). Every non-zero
/// `error_code` or `*_error_code` is an error. In Kafka's definitions a
/// topic's name comes before its partitions, and a partition's index
/// before its records, so the events come in an order where each is known
/// when it is needed.
#[derive(Debug, Default)]
pub struct Gatherer {
    summary: Summary,
    /// Started after an earlier message ([`Gatherer::start_after`]): that
    /// message's record tallies, kept apart from this one's until
    /// [`Gatherer::finish`], so that [`Gatherer::abandon`] can give them
    /// back as they were.
    earlier_records: Listing<(CompactString, i32), RecordTally>,
    /// The structs being walked, innermost last (the first `depth`
    /// entries). Entries are reused as structs close and open, their
    /// buffers with them.
    frames: Vec<Frame>,
    depth: usize,
}

/// One struct being walked.
#[derive(Debug, Default)]
struct Frame {
    /// The best topic field so far (text, or a topic id in base64) and
    /// its rank in `TOPIC_FIELDS`.
    topic: String,
    topic_rank: Option<usize>,
    /// A partitions array (not null) was seen: with a topic field, this
    /// struct is a topic.
    holds_partitions: bool,
    /// The best partition field so far and its rank in `PARTITION_FIELDS`.
    partition: Option<(usize, i32)>,
    /// Of a topic: the partitions found below it so far, listed in the
    /// summary when it closes (one lookup a topic, not one a partition).
    partitions: Vec<i32>,
}

impl Frame {
    fn is_topic(&self) -> bool {
        self.holds_partitions && self.topic_rank.is_some()
    }
}

thread_local! {
    /// The struct frames of a gatherer between two messages, kept with
    /// their buffers so that the next message allocates none.
    static SPARE_FRAMES: Cell<Vec<Frame>> = const { Cell::new(Vec::new()) };
    /// An empty summary with buffers, from [`Summary::recycle`].
    static SPARE_SUMMARY: Cell<Summary> = const {
        Cell::new(Summary {
            topics: Listing(Vec::new()),
            records: Listing(Vec::new()),
            errors: Vec::new(),
        })
    };
}

impl Gatherer {
    /// A gatherer for one message, with this thread's spare frames.
    pub fn start() -> Gatherer {
        Gatherer::start_after(SPARE_SUMMARY.with(Cell::take))
    }

    /// A gatherer for a message that comes after the one `earlier` was
    /// gathered from (a response after its request): it finishes with
    /// what `earlier.then(..)` of this message's own summary would give,
    /// without that summary made and merged apart.
    pub fn start_after(mut earlier: Summary) -> Gatherer {
        // Without tallies, the earlier summary's buffer stays to gather
        // this message's in.
        let earlier_records = if earlier.records.is_empty() {
            Listing::default()
        } else {
            std::mem::take(&mut earlier.records)
        };
        Gatherer {
            summary: earlier,
            earlier_records,
            frames: SPARE_FRAMES.with(Cell::take),
            depth: 0,
        }
    }

    /// The summary gathered, structs left open (by a walk that failed)
    /// closed; the frames become the thread's spare ones.
    pub fn finish(mut self) -> Summary {
        while self.depth > 0 {
            self.leave_struct();
        }
        SPARE_FRAMES.with(|spare| spare.set(std::mem::take(&mut self.frames)));
        if !self.earlier_records.is_empty() {
            let earlier = std::mem::take(&mut self.earlier_records);
            let later = std::mem::replace(&mut self.summary.records, earlier);
            for ((topic, partition), tally) in &later {
                self.summary.tally_for(topic, *partition).add(tally);
            }
        }
        self.summary
    }

    /// Gives up a walk that failed, for a whole decode to gather the
    /// message again: the earlier message's summary as it came, but for
    /// the topics, partitions and errors this walk listed so far. Those
    /// are each listed once, in order of appearance, so gathering the
    /// message again lists them where this walk did, as if it had not
    /// run; record tallies, which add up, are given back untouched.
    pub fn abandon(mut self) -> Summary {
        SPARE_FRAMES.with(|spare| spare.set(std::mem::take(&mut self.frames)));
        self.summary.records = self.earlier_records;
        self.summary
    }

    pub fn enter_struct(&mut self) {
        if self.depth == self.frames.len() {
            self.frames.push(Frame::default());
        } else if let Some(frame) = self.frames.get_mut(self.depth) {
            frame.topic.clear();
            frame.topic_rank = None;
            frame.holds_partitions = false;
            frame.partition = None;
            frame.partitions.clear();
        }
        self.depth += 1;
    }

    pub fn leave_struct(&mut self) {
        let Some(innermost) = self.depth.checked_sub(1) else {
            return;
        };
        self.depth = innermost;
        if let Some(frame) = self.frames.get(innermost).filter(|frame| frame.is_topic()) {
            self.summary
                .note_partitions(&frame.topic, &frame.partitions);
        }
    }

    /// The struct being walked.
    fn current(&mut self) -> Option<&mut Frame> {
        self.frames.get_mut(self.depth.checked_sub(1)?)
    }

    /// An integer field of the current struct.
    pub fn int(&mut self, field: &str, value: i64) {
        // Most numbers are neither, and an error code of 0 counts for
        // nothing: then only a partition field can matter.
        let role = if value == 0 {
            partition_rank(field).map(NumberRole::Partition)
        } else {
            number_role(field)
        };
        if let Some(role) = role {
            self.number(role, value);
        }
    }

    /// An integer field whose role is known ([`number_role`]).
    #[inline]
    pub fn number(&mut self, role: NumberRole, value: i64) {
        match role {
            // Nearly every error code is 0, which counts for nothing.
            NumberRole::Error if value == 0 => {}
            NumberRole::Error => {
                if let Ok(code) = i16::try_from(value) {
                    self.summary.note_error(code);
                }
            }
            NumberRole::Partition(rank) => self.partition(rank, value),
        }
    }

    /// A partition field of rank `rank` in the current struct.
    fn partition(&mut self, rank: usize, value: i64) {
        let Some(mut best) = self.current().map(|frame| frame.partition) else {
            return;
        };
        self.partition_field(&mut best, rank, value);
        if let Some(frame) = self.current() {
            frame.partition = best;
        }
    }

    /// A partition field of rank `rank` in a struct whose best partition
    /// field so far is `best`: the current struct's (its frame keeps it),
    /// or, for a struct the skim runs without a frame of its own (flat
    /// array items, see `codec::skim`), one the skim keeps. A better field
    /// replaces `best`, and its partition is listed under the nearest
    /// topic.
    pub fn partition_field(&mut self, best: &mut Option<(usize, i32)>, rank: usize, value: i64) {
        if best.is_some_and(|(best, _)| best <= rank) {
            return;
        }
        let Ok(partition) = i32::try_from(value) else {
            return;
        };
        *best = Some((rank, partition));
        self.add_to_nearest_topic(partition);
    }

    /// Lists `partition` under the nearest topic among the open structs.
    fn add_to_nearest_topic(&mut self, partition: i32) {
        let open = self.frames.get_mut(..self.depth).unwrap_or_default();
        if let Some(topic) = open.iter_mut().rev().find(|frame| frame.is_topic()) {
            topic.partitions.push(partition);
        }
    }

    /// A text field of the current struct.
    pub fn text(&mut self, field: &str, value: &str) {
        if let Some(rank) = topic_rank(field) {
            self.topic_text(rank, value);
        }
    }

    /// A UUID field of the current struct: a topic id is shown in base64.
    pub fn uuid(&mut self, field: &str, value: &[u8; 16]) {
        if let Some(rank) = topic_rank(field) {
            self.topic_uuid(rank, value);
        }
    }

    /// A text field that can name a topic, of rank `rank` ([`topic_rank`]).
    pub fn topic_text(&mut self, rank: usize, value: &str) {
        self.topic_field(rank, |buffer| buffer.push_str(value));
    }

    /// A UUID field that can name a topic, of rank `rank`.
    pub fn topic_uuid(&mut self, rank: usize, value: &[u8; 16]) {
        self.topic_field(rank, |buffer| {
            buffer.push_str(&crate::value::uuid_to_base64(value))
        });
    }

    fn topic_field(&mut self, rank: usize, write: impl FnOnce(&mut String)) {
        let Some(frame) = self.current() else {
            return;
        };
        if frame.topic_rank.is_some_and(|best| best <= rank) {
            return;
        }
        frame.topic.clear();
        write(&mut frame.topic);
        frame.topic_rank = Some(rank);
    }

    /// A (non-null) array field of the current struct begins.
    pub fn array(&mut self, field: &str) {
        if !names_partitions(field) {
            return;
        }
        if let Some(frame) = self.current() {
            frame.holds_partitions = true;
        }
    }

    /// A record set, counted against the nearest topic and the current
    /// struct's partition.
    pub fn records(&mut self, records: &RecordSet) {
        self.record_tally(&RecordTally::of(records));
    }

    /// What a record set counts for ([`RecordTally::of`]), counted as
    /// [`Gatherer::records`] counts the set.
    pub fn record_tally(&mut self, tally: &RecordTally) {
        let open = self.frames.get(..self.depth).unwrap_or_default();
        let (topic, partition) = match nearest_topic(open) {
            Some(topic) => {
                let partition = open.last().and_then(|frame| frame.partition);
                (topic, partition.map_or(-1, |(_, partition)| partition))
            }
            None => ("?", -1),
        };
        self.summary.tally_for(topic, partition).add(tally);
    }

    /// Replays a decoded struct as the codec would walk it.
    fn replay_struct(&mut self, tree: &Struct) {
        self.enter_struct();
        for field in &tree.fields {
            self.replay_value(field.name, &field.value);
        }
        self.leave_struct();
    }

    fn replay_value(&mut self, field: &str, value: &Value) {
        match value {
            Value::Int(number) => self.int(field, *number),
            Value::String(text) => self.text(field, text),
            Value::Uuid(uuid) => self.uuid(field, uuid),
            Value::Struct(inner) => self.replay_struct(inner),
            Value::Array(items) => {
                self.array(field);
                // Items have no field name: only structs and record sets
                // among them can tell anything. An array's items are all
                // of one type, so an array of numbers or strings is passed
                // over whole.
                let telling = |item: &Value| {
                    matches!(item, Value::Struct(_) | Value::Array(_) | Value::Records(_))
                };
                if items
                    .iter()
                    .find(|item| !matches!(item, Value::Null))
                    .is_some_and(telling)
                {
                    for item in items.iter().filter(|item| telling(item)) {
                        self.replay_value("", item);
                    }
                }
            }
            Value::Records(records) => self.records(records),
            Value::Null | Value::Bool(_) | Value::Float(_) | Value::Bytes(_) => {}
        }
    }
}

/// What an integer field can tell a summary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NumberRole {
    /// An error code: counted when not 0.
    Error,
    /// A partition index, of this rank in `PARTITION_FIELDS`.
    Partition(usize),
}

/// What an integer field named `field` can tell a summary: `None` for the
/// fields a walk may skip unread.
pub fn number_role(field: &str) -> Option<NumberRole> {
    if is_error_field(field) {
        return Some(NumberRole::Error);
    }
    partition_rank(field).map(NumberRole::Partition)
}

fn partition_rank(field: &str) -> Option<usize> {
    PARTITION_FIELDS.iter().position(|name| *name == field)
}

/// Whether a text or UUID field named `field` can name a topic: its rank
/// in `TOPIC_FIELDS`, the likelier first.
pub fn topic_rank(field: &str) -> Option<usize> {
    TOPIC_FIELDS.iter().position(|name| *name == field)
}

/// Whether an array field named `field` can hold partitions.
pub fn asks_for_array(field: &str) -> bool {
    names_partitions(field)
}

/// The nearest topic among the structs being walked, innermost first.
fn nearest_topic(open: &[Frame]) -> Option<&str> {
    open.iter()
        .rev()
        .find(|frame| frame.is_topic())
        .map(|frame| frame.topic.as_str())
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A summary naming `topics` (each with its partitions), with a tally
    /// of `records` for each (topic, partition) in `tallied`, and `errors`.
    fn summary(
        topics: &[(&str, &[i32])],
        tallied: &[(&str, i32)],
        records: u64,
        errors: &[i16],
    ) -> Summary {
        let mut summary = Summary::default();
        for (topic, partitions) in topics {
            summary.note_partitions(topic, partitions);
        }
        for (topic, partition) in tallied {
            summary.tally_for(topic, *partition).add(&RecordTally {
                batches: 1,
                records,
                bytes: 10 * records,
                bad_crc: 0,
            });
        }
        for code in errors {
            summary.note_error(*code);
        }
        summary
    }

    /// Every list of up to four partitions from 0..3, repeats and all.
    fn partition_lists() -> Vec<Vec<i32>> {
        let mut lists = vec![Vec::new()];
        for _ in 0..4 {
            let longer: Vec<Vec<i32>> = lists
                .iter()
                .filter(|list| list.len() == lists.last().map_or(0, Vec::len))
                .flat_map(|list| {
                    (0..3).map(move |partition| [list.as_slice(), &[partition]].concat())
                })
                .collect();
            lists.extend(longer);
        }
        lists
    }

    #[test]
    fn partitions_are_added_once_each_in_order_of_appearance() {
        let lists = partition_lists();
        for listed in &lists {
            for added in &lists {
                let mut expected: Vec<i32> = Vec::new();
                for partition in listed.iter().chain(added) {
                    if !expected.contains(partition) {
                        expected.push(*partition);
                    }
                }
                let mut partitions = Partitions::new();
                add_partitions(&mut partitions, listed);
                add_partitions(&mut partitions, added);
                assert_eq!(partitions.as_slice(), expected, "{listed:?} then {added:?}");
            }
        }
    }

    #[test]
    fn topics_are_listed_by_name_in_any_order_they_come() {
        let names = ["a", "b", "c"];
        for list in partition_lists() {
            let mut summary = Summary::default();
            let mut expected = std::collections::BTreeMap::new();
            for (at, index) in list.iter().enumerate() {
                let name = names[*index as usize];
                summary.note_partitions(name, &[at as i32]);
                expected
                    .entry(name)
                    .or_insert_with(Vec::new)
                    .push(at as i32);
            }
            let listed: Vec<(&str, Vec<i32>)> = summary
                .topics
                .iter()
                .map(|(name, partitions)| (name.as_str(), partitions.to_vec()))
                .collect();
            assert_eq!(listed, expected.into_iter().collect::<Vec<_>>(), "{list:?}");
        }
    }

    #[test]
    fn then_is_merge_without_the_copies() {
        let kinds = [
            Summary::default(),
            summary(&[("orders", &[])], &[], 0, &[]),
            summary(&[("orders", &[0])], &[], 0, &[]),
            summary(&[("orders", &[0, 1])], &[("orders", 0)], 5, &[]),
            summary(
                &[("orders", &[1]), ("audit", &[3])],
                &[("audit", 3)],
                2,
                &[3],
            ),
            summary(&[], &[("?", -1)], 7, &[]),
            summary(&[("payments", &[2])], &[], 0, &[6, 3]),
            summary(&[], &[], 0, &[3]),
        ];
        for first in &kinds {
            for later in &kinds {
                let mut merged = first.clone();
                merged.merge(later);
                assert_eq!(
                    first.clone().then(later.clone()),
                    merged,
                    "{first:?} then {later:?}"
                );
            }
        }
    }
}
