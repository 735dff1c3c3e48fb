//! The TUI's memory of a capture: a compact row per exchange plus the raw
//! frame bytes, never the decoded trees (`detail` decodes again on demand).
//!
//! The reader thread turns each [`Exchange`] into a [`Row`] with an
//! [`Ingest`], which gathers rows into a [`Batch`]: the frames' bytes in one
//! buffer, topics, partitions and error codes as words in a "facts" list,
//! packet numbers, and the names (client ids, topics) seen for the first
//! time. The UI thread owns the [`Store`] and appends each batch whole: the
//! batch's buffer becomes one chunk of the byte arena, so a frame is copied
//! once, on the reader thread.
//!
//! A row is about 100 bytes; with its facts and packet numbers an exchange
//! costs some 150 bytes beyond its frames' bytes. The filter language runs
//! on rows directly ([`RowSubject`] answers [`Subject`]), and a row's
//! summary line is rebuilt from its facts exactly as
//! [`Summary::line`] writes it.
//!
//! Exchanges whose bytes cannot be decoded again to the same thing are kept
//! whole (rare): SASL tokens, and the APIs whose secrets are redacted.

use std::collections::HashMap;
use std::fmt::Write;
use std::net::SocketAddr;

use bytes::Bytes;

use crate::codec::DecodeOptions;
use crate::exchange::{error_name, Exchange, ExchangeState, Message, PacketList, Summary};
use crate::filter::Subject;
use crate::frame;

/// "None" for the u32 fields of a row.
pub const NONE: u32 = u32::MAX;
/// A row's latency when the exchange has none.
pub const NO_LATENCY: i64 = i64::MIN;

/// Row flags.
pub const INFERRED: u8 = 1;
pub const LOST: u8 = 2;
pub const UNDECODABLE: u8 = 4;
/// The exchange is in [`Store::kept`]: decode nothing, use it.
pub const KEPT: u8 = 8;
/// The frames' bytes were not kept (the memory cap was reached).
pub const RAW_DROPPED: u8 = 16;
pub const SASL: u8 = 32;
/// A record batch's CRC does not match its bytes.
pub const BAD_CRC: u8 = 64;

/// Where a frame's bytes are in the arena.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawRef {
    pub chunk: u32,
    pub offset: u32,
    pub len: u32,
}

impl RawRef {
    pub const ABSENT: RawRef = RawRef {
        chunk: NONE,
        offset: 0,
        len: 0,
    };

    pub fn is_absent(self) -> bool {
        self.chunk == NONE
    }
}

/// One exchange, compactly.
#[derive(Clone, Copy, Debug)]
pub struct Row {
    pub id: u64,
    pub ts_ns: i64,
    /// [`NO_LATENCY`] when there is no response (or no request).
    pub latency_ns: i64,
    pub request: RawRef,
    pub response: RawRef,
    /// Frame sizes as on the wire; [`NONE`] for a side not seen.
    pub request_size: u32,
    pub response_size: u32,
    pub connection: u32,
    /// Index into [`Store::endpoints`].
    pub endpoints: u32,
    /// Symbol of the client id, or [`NONE`].
    pub client_id: u32,
    pub correlation_id: i32,
    pub api_key: i16,
    pub api_version: i16,
    /// Offset of this row's facts in [`Store::facts`].
    pub facts: u32,
    /// Offset of this row's packet numbers in [`Store::packets`].
    pub packets: u32,
    pub packet_count: u16,
    pub state: u8,
    pub flags: u8,
}

impl Row {
    pub fn state(&self) -> ExchangeState {
        state_from(self.state)
    }

    pub fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }

    pub fn latency(&self) -> Option<i64> {
        (self.latency_ns != NO_LATENCY).then_some(self.latency_ns)
    }

    pub fn request_size(&self) -> Option<u32> {
        (self.request_size != NONE).then_some(self.request_size)
    }

    pub fn response_size(&self) -> Option<u32> {
        (self.response_size != NONE).then_some(self.response_size)
    }
}

fn state_code(state: ExchangeState) -> u8 {
    match state {
        ExchangeState::Complete => 0,
        ExchangeState::NoResponseExpected => 1,
        ExchangeState::ResponseMissing => 2,
        ExchangeState::RequestMissing => 3,
    }
}

fn state_from(code: u8) -> ExchangeState {
    match code {
        1 => ExchangeState::NoResponseExpected,
        2 => ExchangeState::ResponseMissing,
        3 => ExchangeState::RequestMissing,
        _ => ExchangeState::Complete,
    }
}

fn to_word(value: i32) -> u32 {
    u32::from_ne_bytes(value.to_ne_bytes())
}

fn from_word(word: u32) -> i32 {
    i32::from_ne_bytes(word.to_ne_bytes())
}

/// A row's facts read back: topics with partitions, error codes, records.
///
/// Layout in words: `topics | has_records << 31`, then per topic its symbol,
/// its partition count and the partitions; the error count and the codes;
/// then, with records, the record count and bytes as two words each.
#[derive(Clone, Copy, Debug)]
pub struct Facts<'a> {
    words: &'a [u32],
}

const HAS_RECORDS: u32 = 1 << 31;

impl<'a> Facts<'a> {
    fn topic_count(&self) -> usize {
        self.words
            .first()
            .map_or(0, |w| (w & !HAS_RECORDS) as usize)
    }

    /// Each topic's symbol and partitions (as words).
    pub fn topics(&self) -> impl Iterator<Item = (u32, &'a [u32])> + 'a {
        let words = self.words;
        let count = self.topic_count();
        let mut at = 1usize;
        (0..count).map_while(move |_| {
            let symbol = *words.get(at)?;
            let parts = *words.get(at + 1)? as usize;
            let list = words.get(at + 2..at + 2 + parts)?;
            at += 2 + parts;
            Some((symbol, list))
        })
    }

    fn errors_at(&self) -> usize {
        let mut at = 1usize;
        for _ in 0..self.topic_count() {
            let parts = self.words.get(at + 1).map_or(0, |p| *p as usize);
            at += 2 + parts;
        }
        at
    }

    pub fn errors(&self) -> impl Iterator<Item = i16> + 'a {
        let at = self.errors_at();
        let count = self.words.get(at).map_or(0, |c| *c as usize);
        self.words
            .get(at + 1..at + 1 + count)
            .unwrap_or_default()
            .iter()
            .map(|word| i16::try_from(from_word(*word)).unwrap_or(-1))
    }

    pub fn has_records(&self) -> bool {
        self.words.first().is_some_and(|w| w & HAS_RECORDS != 0)
    }

    /// Records and their bytes.
    pub fn records(&self) -> (u64, u64) {
        if !self.has_records() {
            return (0, 0);
        }
        let at = self.errors_at();
        let count = self.words.get(at).map_or(0, |c| *c as usize);
        let base = at + 1 + count;
        let pair = |i: usize| {
            let lo = self.words.get(base + i).copied().unwrap_or(0);
            let hi = self.words.get(base + i + 1).copied().unwrap_or(0);
            u64::from(hi) << 32 | u64::from(lo)
        };
        (pair(0), pair(2))
    }
}

/// Appends the facts of a summary to `out`; returns their offset.
fn push_facts(out: &mut Vec<u32>, summary: &Summary, symbol: &mut dyn FnMut(&str) -> u32) -> u32 {
    let at = u32::try_from(out.len()).unwrap_or(NONE);
    let has_records = summary.record_count() > 0 || !summary.records.is_empty();
    let topics = u32::try_from(summary.topics.len())
        .unwrap_or(0)
        .min(!HAS_RECORDS);
    out.push(topics | if has_records { HAS_RECORDS } else { 0 });
    for (topic, partitions) in summary.topics.iter().take(topics as usize) {
        out.push(symbol(topic));
        out.push(u32::try_from(partitions.len()).unwrap_or(0));
        out.extend(partitions.iter().map(|p| to_word(*p)));
    }
    out.push(u32::try_from(summary.errors.len()).unwrap_or(0));
    out.extend(summary.errors.iter().map(|code| to_word(i32::from(*code))));
    if has_records {
        for value in [summary.record_count(), summary.record_bytes()] {
            out.push((value & 0xffff_ffff) as u32);
            out.push((value >> 32) as u32);
        }
    }
    at
}

/// Rows gathered on the reader thread, appended whole by the UI thread.
/// Raw references point into `raw` (chunk 0), facts and packet offsets into
/// this batch's lists; [`Store::append`] rebases them.
#[derive(Debug, Default)]
pub struct Batch {
    pub rows: Vec<Row>,
    pub raw: Vec<u8>,
    pub facts: Vec<u32>,
    pub packets: Vec<u64>,
    /// Names seen for the first time, in symbol order.
    pub symbols: Vec<Box<str>>,
    /// Connections seen for the first time, in endpoint order.
    pub endpoints: Vec<(SocketAddr, SocketAddr)>,
    /// Exchanges kept whole, by their index in `rows`.
    pub kept: Vec<(u32, Box<Exchange>)>,
    /// Exchanges not kept at all (the row cap was reached).
    pub dropped: u64,
}

/// Limits that keep the index bounded whatever the capture holds.
#[derive(Clone, Copy, Debug)]
pub struct IndexLimits {
    /// Exchanges kept; later ones are counted, not kept.
    pub max_rows: u64,
    /// Bytes of frames kept; later exchanges keep their row only.
    pub max_raw: u64,
    /// Distinct names (client ids, topics) kept.
    pub max_symbols: usize,
    /// Exchanges kept whole (SASL and secret-bearing APIs).
    pub max_kept: usize,
    /// Packet numbers remembered per exchange (for pcap export).
    pub max_packets: usize,
}

impl Default for IndexLimits {
    fn default() -> IndexLimits {
        IndexLimits {
            max_rows: 20_000_000,
            max_raw: 4 << 30,
            max_symbols: 1 << 20,
            max_kept: 100_000,
            max_packets: 1024,
        }
    }
}

/// The name used once `max_symbols` names are known.
pub const OVERFLOW_NAME: &str = "<too many names>";

/// Turns exchanges into rows, on the reader thread.
pub struct Ingest {
    limits: IndexLimits,
    /// Whether secrets are shown: if not, secret-bearing APIs are kept whole
    /// (their bytes were dropped by the analyzer).
    show_secrets: bool,
    symbols: HashMap<Box<str>, u32>,
    endpoints: HashMap<(SocketAddr, SocketAddr), u32>,
    rows: u64,
    raw: u64,
    kept: usize,
    batch: Batch,
}

/// Bytes up to which an exchange cut by a gap is kept whole.
const KEEP_LOST: usize = 64 * 1024;

impl Ingest {
    pub fn new(limits: IndexLimits, show_secrets: bool) -> Ingest {
        Ingest {
            limits,
            show_secrets,
            symbols: HashMap::new(),
            endpoints: HashMap::new(),
            rows: 0,
            raw: 0,
            kept: 0,
            batch: Batch::default(),
        }
    }

    /// Rows waiting in the current batch.
    pub fn pending(&self) -> usize {
        self.batch.rows.len()
    }

    /// Bytes waiting in the current batch.
    pub fn pending_bytes(&self) -> usize {
        self.batch.raw.len()
    }

    /// Hands out the current batch.
    pub fn take(&mut self) -> Batch {
        std::mem::take(&mut self.batch)
    }

    fn symbol(&mut self, name: &str) -> u32 {
        if let Some(symbol) = self.symbols.get(name) {
            return *symbol;
        }
        let name = if self.symbols.len() >= self.limits.max_symbols {
            OVERFLOW_NAME
        } else {
            name
        };
        if let Some(symbol) = self.symbols.get(name) {
            return *symbol;
        }
        let symbol = u32::try_from(self.symbols.len()).unwrap_or(NONE);
        self.symbols.insert(name.into(), symbol);
        self.batch.symbols.push(name.into());
        symbol
    }

    fn push_raw(&mut self, message: &Option<Box<Message>>) -> RawRef {
        let Some(message) = message else {
            return RawRef::ABSENT;
        };
        let raw = &message.frame.raw;
        let offset = u32::try_from(self.batch.raw.len());
        let len = u32::try_from(raw.len());
        match (offset, len) {
            (Ok(offset), Ok(len)) => {
                self.batch.raw.extend_from_slice(raw);
                self.raw += u64::from(len);
                RawRef {
                    chunk: 0,
                    offset,
                    len,
                }
            }
            _ => RawRef::ABSENT,
        }
    }

    /// Adds one exchange (with its summary, which the caller computed).
    pub fn add(&mut self, exchange: &Exchange, summary: &Summary) {
        if self.rows >= self.limits.max_rows {
            self.batch.dropped += 1;
            return;
        }
        self.rows += 1;
        let mut flags = 0u8;
        if exchange.inferred {
            flags |= INFERRED;
        }
        if exchange.lost {
            flags |= LOST;
        }
        if exchange.decode_error().is_some() {
            flags |= UNDECODABLE;
        }
        if exchange.sasl.is_some() {
            flags |= SASL;
        }
        if summary.bad_crc_batches() > 0 {
            flags |= BAD_CRC;
        }
        let raw_size = exchange.request.as_ref().map_or(0, |m| m.frame.raw.len())
            + exchange.response.as_ref().map_or(0, |m| m.frame.raw.len());
        // Frames cut by a capture gap are kept whole while small, so that
        // their missing bytes are still known; larger ones keep their bytes
        // and decode again as far as those go.
        let keep_whole = exchange.sasl.is_some()
            || (!self.show_secrets && crate::session::is_secret_api(exchange.api_key))
            || [&exchange.request, &exchange.response]
                .into_iter()
                .flatten()
                .any(|message| {
                    message.frame.header_version < 0
                        || (message.missing_bytes > 0 && raw_size <= KEEP_LOST)
                });
        let index = u32::try_from(self.batch.rows.len()).unwrap_or(NONE);
        if keep_whole && self.kept < self.limits.max_kept {
            self.kept += 1;
            flags |= KEPT;
            let mut whole = exchange.clone();
            whole.packets = PacketList::new();
            self.batch.kept.push((index, Box::new(whole)));
        }
        let (request, response) = if flags & KEPT != 0 {
            (RawRef::ABSENT, RawRef::ABSENT)
        } else if self.raw + raw_size as u64 > self.limits.max_raw {
            flags |= RAW_DROPPED;
            (RawRef::ABSENT, RawRef::ABSENT)
        } else {
            (
                self.push_raw(&exchange.request),
                self.push_raw(&exchange.response),
            )
        };
        let pair = (exchange.client, exchange.broker);
        let endpoints = match self.endpoints.get(&pair) {
            Some(index) => *index,
            None => {
                let index = u32::try_from(self.endpoints.len()).unwrap_or(NONE);
                self.endpoints.insert(pair, index);
                self.batch.endpoints.push(pair);
                index
            }
        };
        let client_id = match exchange.client_id() {
            Some(id) => self.symbol(id),
            None => NONE,
        };
        let mut facts = std::mem::take(&mut self.batch.facts);
        let facts_at = push_facts(&mut facts, summary, &mut |name| self.symbol(name));
        self.batch.facts = facts;
        let packets_at = u32::try_from(self.batch.packets.len()).unwrap_or(NONE);
        let packet_count = exchange.packets.len().min(self.limits.max_packets);
        self.batch
            .packets
            .extend(exchange.packets.iter().take(packet_count));
        let size = |message: &Option<Box<Message>>| {
            message
                .as_ref()
                .map_or(NONE, |m| u32::try_from(m.wire_size()).unwrap_or(NONE - 1))
        };
        self.batch.rows.push(Row {
            id: exchange.id,
            ts_ns: exchange.ts_ns(),
            latency_ns: exchange.latency_ns().unwrap_or(NO_LATENCY),
            request,
            response,
            request_size: size(&exchange.request),
            response_size: size(&exchange.response),
            connection: exchange.connection,
            endpoints,
            client_id,
            correlation_id: exchange.correlation_id,
            api_key: exchange.api_key,
            api_version: exchange.api_version,
            facts: facts_at,
            packets: packets_at,
            packet_count: u16::try_from(packet_count).unwrap_or(u16::MAX),
            state: state_code(exchange.state),
            flags,
        });
    }
}

/// Everything the UI knows of the exchanges, owned by the UI thread.
#[derive(Debug, Default)]
pub struct Store {
    pub rows: Vec<Row>,
    chunks: Vec<Vec<u8>>,
    facts: Vec<u32>,
    packets: Vec<u64>,
    symbols: Vec<Box<str>>,
    endpoints: Vec<(SocketAddr, SocketAddr)>,
    kept: HashMap<u32, Box<Exchange>>,
    /// Exchanges not kept (row cap).
    pub dropped: u64,
    raw_bytes: u64,
}

impl Store {
    pub fn new() -> Store {
        Store::default()
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Bytes of frames held.
    pub fn raw_bytes(&self) -> u64 {
        self.raw_bytes
    }

    /// Appends a batch: its buffer becomes a chunk, its offsets are rebased.
    pub fn append(&mut self, mut batch: Batch) {
        let chunk = u32::try_from(self.chunks.len()).unwrap_or(NONE);
        let facts = u32::try_from(self.facts.len()).unwrap_or(NONE);
        let packets = u32::try_from(self.packets.len()).unwrap_or(NONE);
        let first = u32::try_from(self.rows.len()).unwrap_or(NONE);
        self.raw_bytes += batch.raw.len() as u64;
        batch.raw.shrink_to_fit();
        self.chunks.push(batch.raw);
        self.facts.extend_from_slice(&batch.facts);
        self.packets.extend_from_slice(&batch.packets);
        self.symbols.extend(batch.symbols);
        self.endpoints.extend(batch.endpoints);
        self.dropped += batch.dropped;
        for (index, exchange) in batch.kept {
            self.kept.insert(first.saturating_add(index), exchange);
        }
        self.rows.reserve(batch.rows.len());
        for mut row in batch.rows {
            for side in [&mut row.request, &mut row.response] {
                if !side.is_absent() {
                    side.chunk = chunk;
                }
            }
            row.facts = row.facts.saturating_add(facts);
            row.packets = row.packets.saturating_add(packets);
            self.rows.push(row);
        }
    }

    pub fn row(&self, index: usize) -> Option<&Row> {
        self.rows.get(index)
    }

    pub fn symbol(&self, symbol: u32) -> Option<&str> {
        self.symbols.get(symbol as usize).map(|name| &**name)
    }

    pub fn client_id(&self, row: &Row) -> Option<&str> {
        if row.client_id == NONE {
            None
        } else {
            self.symbol(row.client_id)
        }
    }

    pub fn endpoints(&self, row: &Row) -> (SocketAddr, SocketAddr) {
        self.endpoints
            .get(row.endpoints as usize)
            .copied()
            .unwrap_or_else(|| {
                let unknown = SocketAddr::from(([0, 0, 0, 0], 0));
                (unknown, unknown)
            })
    }

    pub fn facts(&self, row: &Row) -> Facts<'_> {
        Facts {
            words: self.facts.get(row.facts as usize..).unwrap_or_default(),
        }
    }

    pub fn packets(&self, row: &Row) -> &[u64] {
        let start = row.packets as usize;
        self.packets
            .get(start..start + usize::from(row.packet_count))
            .unwrap_or_default()
    }

    pub fn raw(&self, raw: RawRef) -> Option<&[u8]> {
        if raw.is_absent() {
            return None;
        }
        let chunk = self.chunks.get(raw.chunk as usize)?;
        let start = raw.offset as usize;
        chunk.get(start..start + raw.len as usize)
    }

    pub fn kept(&self, index: usize) -> Option<&Exchange> {
        u32::try_from(index)
            .ok()
            .and_then(|index| self.kept.get(&index))
            .map(|exchange| &**exchange)
    }

    /// The row's summary line, as [`Summary::line`] writes it (or the SASL
    /// step for SASL exchanges).
    pub fn summary_line(&self, index: usize) -> String {
        let Some(row) = self.rows.get(index) else {
            return String::new();
        };
        if let Some(sasl) = self.kept(index).and_then(|e| e.sasl.as_ref()) {
            return sasl.line();
        }
        let facts = self.facts(row);
        let mut out = String::new();
        for (symbol, partitions) in facts.topics() {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(self.symbol(symbol).unwrap_or("?"));
            if !partitions.is_empty() {
                let list: Vec<String> = partitions
                    .iter()
                    .map(|p| from_word(*p).to_string())
                    .collect();
                let _ = write!(out, "[{}]", list.join(","));
            }
        }
        if facts.has_records() {
            let (records, bytes) = facts.records();
            let _ = write!(out, " {records} records {bytes} B");
        }
        let errors: Vec<String> = facts.errors().map(error_name).collect();
        if !errors.is_empty() {
            let _ = write!(out, " {}", errors.join(","));
        }
        out.trim_start().to_owned()
    }

    /// The exchange again, decoded from the kept bytes: what the analyzer
    /// handed out, without packet numbers. None when its bytes were not
    /// kept.
    pub fn exchange(&self, index: usize, options: &DecodeOptions) -> Option<Exchange> {
        if let Some(kept) = self.kept(index) {
            return Some(kept.clone());
        }
        let row = self.rows.get(index)?;
        if row.has(RAW_DROPPED) {
            return None;
        }
        let (client, broker) = self.endpoints(row);
        let request = self.raw(row.request).map(|raw| {
            Box::new(Message {
                ts_ns: row.ts_ns,
                frame: frame::decode_request(Bytes::copy_from_slice(raw), options),
                missing_bytes: 0,
            })
        });
        let response_ts = match (&request, row.latency()) {
            (Some(_), Some(latency)) => row.ts_ns + latency,
            _ => row.ts_ns,
        };
        let response = self.raw(row.response).map(|raw| {
            Box::new(Message {
                ts_ns: response_ts,
                frame: frame::decode_response(
                    Bytes::copy_from_slice(raw),
                    row.api_key,
                    row.api_version,
                    options,
                ),
                missing_bytes: 0,
            })
        });
        Some(Exchange {
            id: row.id,
            connection: row.connection,
            client,
            broker,
            api_key: row.api_key,
            api_version: row.api_version,
            correlation_id: row.correlation_id,
            request,
            response,
            state: row.state(),
            inferred: row.has(INFERRED),
            packets: PacketList::from_slice(self.packets(row)),
            lost: row.has(LOST),
            sasl: None,
            summary: None,
        })
    }

    pub fn subject(&self, index: usize) -> Option<RowSubject<'_>> {
        Some(RowSubject {
            store: self,
            row: self.rows.get(index)?,
            errors: std::cell::OnceCell::new(),
        })
    }
}

/// A row answering the filter's questions.
pub struct RowSubject<'a> {
    store: &'a Store,
    row: &'a Row,
    errors: std::cell::OnceCell<Vec<i16>>,
}

impl Subject for RowSubject<'_> {
    fn api_key(&self) -> i16 {
        self.row.api_key
    }
    fn api_version(&self) -> i16 {
        self.row.api_version
    }
    fn correlation_id(&self) -> i32 {
        self.row.correlation_id
    }
    fn client_id(&self) -> Option<&str> {
        self.store.client_id(self.row)
    }
    fn connection(&self) -> u32 {
        self.row.connection
    }
    fn client(&self) -> SocketAddr {
        self.store.endpoints(self.row).0
    }
    fn broker(&self) -> SocketAddr {
        self.store.endpoints(self.row).1
    }
    fn latency_ns(&self) -> Option<i64> {
        self.row.latency()
    }
    fn size(&self) -> u64 {
        u64::from(self.row.request_size().unwrap_or(0))
            + u64::from(self.row.response_size().unwrap_or(0))
    }
    fn state(&self) -> ExchangeState {
        self.row.state()
    }
    fn inferred(&self) -> bool {
        self.row.has(INFERRED)
    }
    fn lost(&self) -> bool {
        self.row.has(LOST)
    }
    fn undecodable(&self) -> bool {
        self.row.has(UNDECODABLE)
    }
    fn bad_crc(&self) -> bool {
        self.row.has(BAD_CRC)
    }
    fn any_topic(&self, test: &mut dyn FnMut(&str, &[i32]) -> bool) -> bool {
        let mut partitions = Vec::new();
        self.store.facts(self.row).topics().any(|(symbol, words)| {
            partitions.clear();
            partitions.extend(words.iter().map(|w| from_word(*w)));
            test(self.store.symbol(symbol).unwrap_or(""), &partitions)
        })
    }
    fn error_codes(&self) -> &[i16] {
        self.errors
            .get_or_init(|| self.store.facts(self.row).errors().collect())
    }
    fn record_count(&self) -> u64 {
        self.store.facts(self.row).records().0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter;

    fn corpus(name: &str) -> Vec<Exchange> {
        let path = format!("{}/corpus/captures/{name}", env!("CARGO_MANIFEST_DIR"));
        let mut out = Vec::new();
        crate::session::read_capture(
            std::path::Path::new(&path),
            crate::session::AnalyzerOptions::default(),
            |e| out.push(e),
        )
        .expect("capture");
        out
    }

    fn store_of(exchanges: &[Exchange]) -> Store {
        let mut ingest = Ingest::new(IndexLimits::default(), false);
        let mut store = Store::new();
        for (n, exchange) in exchanges.iter().enumerate() {
            ingest.add(exchange, &exchange.summary());
            if n % 7 == 0 {
                store.append(ingest.take());
            }
        }
        store.append(ingest.take());
        store
    }

    #[test]
    fn rows_answer_filters_and_summaries_as_the_exchanges_do() {
        let filters = [
            "",
            "api=Produce",
            "topic~kcat",
            "partition>0",
            "error!=NONE",
            "error~LEADER",
            "records>3",
            "client~kcat and latency>10us",
            "conn=0 or conn=:9092",
            "state=complete",
            "state=missing or state=undecodable or state=lost or state=inferred",
            "state=bad_crc",
            "size>1KB",
            "api~group",
            "version>=3 and corr<10",
        ];
        for name in [
            "kcat-mock.pcap",
            "python-sasl-tansu.pcap",
            "confluent-modern-mock.pcap",
        ] {
            let exchanges = corpus(name);
            let store = store_of(&exchanges);
            assert_eq!(store.len(), exchanges.len());
            for (index, exchange) in exchanges.iter().enumerate() {
                let summary = exchange.summary();
                let expected = match &exchange.sasl {
                    Some(sasl) => sasl.line(),
                    None => summary.line(),
                };
                assert_eq!(store.summary_line(index), expected, "{name} #{index}");
            }
            for text in filters {
                let parsed = filter::parse(text).expect(text);
                for (index, exchange) in exchanges.iter().enumerate() {
                    let subject = store.subject(index).expect("row");
                    assert_eq!(
                        parsed.matches_subject(&subject),
                        parsed.matches(exchange),
                        "{name} #{index}: {text}"
                    );
                }
            }
        }
    }

    #[test]
    fn exchanges_decode_again_from_the_kept_bytes() {
        let options = DecodeOptions::default();
        for name in ["kcat-mock.pcap", "python-sasl-tansu.pcap"] {
            let exchanges = corpus(name);
            let store = store_of(&exchanges);
            for (index, exchange) in exchanges.iter().enumerate() {
                let again = store.exchange(index, &options).expect("kept");
                let summary = exchange.summary();
                let first = exchanges.first().map_or(0, Exchange::ts_ns);
                let mut want = crate::display::exchange_json(exchange, &summary, first);
                let mut got = crate::display::exchange_json(&again, &again.summary(), first);
                // Packet numbers are not part of the JSON; the response time
                // is rebuilt from the latency.
                for json in [&mut want, &mut got] {
                    json.as_object_mut().map(|o| o.remove("ts"));
                }
                assert_eq!(got, want, "{name} #{index}");
            }
        }
    }
}
