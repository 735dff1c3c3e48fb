//! TCP reassembly: from captured segments to ordered byte streams.
//!
//! The reassembler owns per-connection, per-direction state: where each byte
//! stream stands, the out-of-order segments waiting for a hole to fill, and
//! the connection's lifecycle (SYN, FIN, RST). It turns segments into
//! [`StreamEvent`]s in which every byte of each direction appears exactly
//! once, in sequence order, with explicit [`EventKind::Gap`]s where the
//! capture lost bytes. In-order data, the common case, is handed on as the
//! very `Bytes` slice the capture produced, without copying or buffering.
//!
//! Sequence numbers are compared modulo 2^32 (RFC 9293 section 3.4); inside
//! a direction, positions are 64-bit offsets from the first data byte, so a
//! stream may cross 2^32 any number of times. Memory is bounded whatever the
//! traffic claims: out-of-order bytes are capped per direction and in total,
//! and the number of tracked connections is capped.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;

use bytes::Bytes;

use crate::capture::TcpSegment;
use crate::hashing::SeededHashing;

/// Which end of a connection sent some bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Side {
    /// The SYN sender; when the capture starts mid-connection, the source of
    /// the first packet seen.
    Initiator,
    /// The other end.
    Responder,
}

impl Side {
    /// The opposite end.
    pub fn other(self) -> Side {
        match self {
            Side::Initiator => Side::Responder,
            Side::Responder => Side::Initiator,
        }
    }

    fn index(self) -> usize {
        match self {
            Side::Initiator => 0,
            Side::Responder => 1,
        }
    }
}

/// Something that happened on a connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamEvent {
    /// Connection index, from 0, in order of each connection's first packet.
    pub connection: u32,
    /// Who sent the bytes (for `Opened` and `Closed`: always `Initiator`).
    pub side: Side,
    pub kind: EventKind,
}

/// The events of one connection, in order: `Opened` first, `Closed` last.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// First packet of a connection. `saw_syn`: that packet carried SYN (a
    /// SYN, or a SYN-ACK when the SYN itself was not captured), so both byte
    /// streams are seen from their first byte.
    Opened {
        initiator: SocketAddr,
        responder: SocketAddr,
        saw_syn: bool,
    },
    /// The next bytes of the direction, in sequence order.
    Data {
        bytes: Bytes,
        /// Timestamp of the packet that carried these bytes.
        ts_ns: i64,
        /// Index of that packet in the capture.
        packet: u64,
    },
    /// Bytes missing from the capture in this direction; the next `Data`
    /// continues after the hole.
    Gap { bytes: u64 },
    /// The sender's FIN, in sequence order (after all its data).
    Fin,
    /// The sender reset the connection.
    Reset,
    /// The connection's state was dropped (FIN both ways, RST, eviction, or
    /// [`Reassembler::finish`]). Sent once per connection.
    Closed,
}

/// Memory bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReassemblyLimits {
    /// Out-of-order bytes buffered per direction before the first hole is
    /// declared a gap.
    pub per_stream: usize,
    /// Out-of-order bytes buffered across all directions before the oldest
    /// stream's buffer is flushed.
    pub total: usize,
    /// Connections tracked at once, open and recently closed together.
    pub max_connections: usize,
}

impl Default for ReassemblyLimits {
    fn default() -> Self {
        ReassemblyLimits {
            per_stream: 4 << 20,
            total: 256 << 20,
            max_connections: 65_536,
        }
    }
}

/// Running totals, for reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReassemblyCounters {
    /// Bytes declared missing.
    pub gap_bytes: u64,
    /// Number of `Gap` events.
    pub gaps: u64,
    /// Bytes received again after they had been seen (delivered or buffered).
    pub retransmitted_bytes: u64,
    /// Segments that arrived ahead of a hole and were buffered.
    pub out_of_order_segments: u64,
    /// Directions whose buffer was flushed because the total cap was hit.
    pub evicted_streams: u64,
    /// Open connections dropped to make room under `max_connections`.
    pub evicted_connections: u64,
    /// Segments of an already closed connection (final ACKs, retransmitted
    /// FINs), ignored.
    pub late_segments: u64,
}

/// Accounted cost of one buffered chunk beyond its payload: map node and
/// `Bytes` handle. Counting it keeps a flood of one-byte segments within the
/// same caps as a few large ones.
const CHUNK_OVERHEAD: usize = 64;

/// `a - b` in sequence space, as a signed distance (RFC 9293 section 3.4:
/// sequence numbers are compared modulo 2^32, within half the space).
fn seq_delta(a: u32, b: u32) -> i64 {
    let d = a.wrapping_sub(b);
    if d < 0x8000_0000 {
        i64::from(d)
    } else {
        i64::from(d) - (1i64 << 32)
    }
}

/// `seq + n` modulo 2^32.
fn seq_add(seq: u32, n: u64) -> u32 {
    seq.wrapping_add(u32::try_from(n & 0xFFFF_FFFF).unwrap_or(0))
}

fn len64(bytes: &Bytes) -> u64 {
    u64::try_from(bytes.len()).unwrap_or(u64::MAX)
}

/// `bytes[from..from + len]`, clamped to what exists; never panics.
fn sub_bytes(bytes: &Bytes, from: u64, len: u64) -> Bytes {
    let total = bytes.len();
    let start = usize::try_from(from).unwrap_or(usize::MAX).min(total);
    let end = start
        .saturating_add(usize::try_from(len).unwrap_or(usize::MAX))
        .min(total);
    bytes.slice(start..end)
}

/// A buffered piece of one direction.
#[derive(Clone, Debug)]
enum Chunk {
    Data {
        bytes: Bytes,
        ts_ns: i64,
        packet: u64,
    },
    /// Bytes known to be sent but absent from the capture (cut by the
    /// snaplen).
    Lost { len: u64 },
}

impl Chunk {
    fn len(&self) -> u64 {
        match self {
            Chunk::Data { bytes, .. } => len64(bytes),
            Chunk::Lost { len } => *len,
        }
    }

    fn cost(&self) -> usize {
        match self {
            Chunk::Data { bytes, .. } => bytes.len().saturating_add(CHUNK_OVERHEAD),
            Chunk::Lost { .. } => CHUNK_OVERHEAD,
        }
    }

    fn is_data(&self) -> bool {
        matches!(self, Chunk::Data { .. })
    }

    /// The part `[from, from + len)` of this chunk.
    fn sub(&self, from: u64, len: u64) -> Chunk {
        match self {
            Chunk::Data {
                bytes,
                ts_ns,
                packet,
            } => Chunk::Data {
                bytes: sub_bytes(bytes, from, len),
                ts_ns: *ts_ns,
                packet: *packet,
            },
            Chunk::Lost { len: mine } => Chunk::Lost {
                len: len.min(mine.saturating_sub(from)),
            },
        }
    }
}

/// Where events of one direction go, and the shared tallies they update.
struct Emit<'a> {
    connection: u32,
    side: Side,
    out: &'a mut Vec<StreamEvent>,
    counters: &'a mut ReassemblyCounters,
    total: &'a mut usize,
}

impl Emit<'_> {
    fn push(&mut self, kind: EventKind) {
        self.out.push(StreamEvent {
            connection: self.connection,
            side: self.side,
            kind,
        });
    }

    fn gap(&mut self, bytes: u64) {
        self.counters.gaps = self.counters.gaps.saturating_add(1);
        self.counters.gap_bytes = self.counters.gap_bytes.saturating_add(bytes);
        self.push(EventKind::Gap { bytes });
    }

    fn retransmitted(&mut self, bytes: u64) {
        self.counters.retransmitted_bytes = self.counters.retransmitted_bytes.saturating_add(bytes);
    }
}

/// A segment's contribution to one direction, with SYN already accounted.
struct Incoming {
    /// Sequence number of the first payload byte.
    seq: u32,
    payload: Bytes,
    /// Payload length on the wire (`>= payload.len()` when snapped).
    wire_len: u64,
    fin: bool,
    ts_ns: i64,
    packet: u64,
}

/// One direction of a connection: the bytes one side sent.
#[derive(Debug, Default)]
struct Half {
    /// A segment of this direction has been seen (or, for the initiator when
    /// the capture starts at the SYN-ACK, its start inferred from the ACK).
    started: bool,
    /// Sequence number of the first data byte (offset 0).
    first_seq: u32,
    /// Sequence number of the next byte to deliver.
    next_seq: u32,
    /// Offset of the next byte to deliver; all before it has been emitted.
    delivered: u64,
    /// Out-of-order chunks by offset; never overlapping, all beyond
    /// `delivered` except transiently inside `drain`.
    ooo: BTreeMap<u64, Chunk>,
    /// Accounted cost of `ooo`.
    buffered: usize,
    /// End offset of the furthest byte (or FIN) this side was seen sending.
    highest: u64,
    /// Offset of the sender's FIN, once seen (RFC 9293 section 3.4: the FIN
    /// occupies one sequence number after the last data byte).
    fin_at: Option<u64>,
    fin_done: bool,
    /// Largest acknowledgment the other side sent for this direction.
    peer_ack: Option<u32>,
}

impl Half {
    fn start(&mut self, first_seq: u32) {
        self.started = true;
        self.first_seq = first_seq;
        self.next_seq = first_seq;
    }

    fn advance(&mut self, n: u64) {
        self.delivered = self.delivered.saturating_add(n);
        self.next_seq = seq_add(self.next_seq, n);
    }

    fn release(&mut self, chunk: &Chunk, e: &mut Emit<'_>) {
        let cost = chunk.cost();
        self.buffered = self.buffered.saturating_sub(cost);
        *e.total = e.total.saturating_sub(cost);
    }

    fn emit_chunk(&mut self, chunk: Chunk, e: &mut Emit<'_>) {
        let len = chunk.len();
        if len == 0 {
            return;
        }
        match chunk {
            Chunk::Data {
                bytes,
                ts_ns,
                packet,
            } => e.push(EventKind::Data {
                bytes,
                ts_ns,
                packet,
            }),
            Chunk::Lost { len } => e.gap(len),
        }
        self.advance(len);
    }

    /// Takes one segment of this direction.
    fn accept(&mut self, seg: Incoming, e: &mut Emit<'_>, limits: &ReassemblyLimits) {
        let in_order = seg.seq == self.next_seq && !seg.fin && self.fin_at.is_none();
        if in_order && self.ooo.is_empty() && seg.wire_len == len64(&seg.payload) {
            // The common case, whole and next with nothing buffered: none of
            // the clipping and buffering below applies (and with nothing
            // buffered, there is nothing to drain).
            self.highest = self
                .highest
                .max(self.delivered.saturating_add(seg.wire_len));
            self.emit_chunk(
                Chunk::Data {
                    bytes: seg.payload,
                    ts_ns: seg.ts_ns,
                    packet: seg.packet,
                },
                e,
            );
            self.apply_peer_ack(e);
            return;
        }
        let delivered = i128::from(self.delivered);
        let mut start = delivered + i128::from(seq_delta(seg.seq, self.next_seq));
        let mut data = seg.payload;
        let mut lost = seg.wire_len.saturating_sub(len64(&data));
        let mut end = start + i128::from(len64(&data)) + i128::from(lost);

        if seg.fin && self.fin_at.is_none() && end >= delivered {
            self.fin_at = u64::try_from(end).ok();
        }
        // Nothing follows a FIN (RFC 9293 section 3.10.7.4: data beyond it is
        // not accepted); clip what claims to.
        if let Some(fin) = self.fin_at {
            let fin = i128::from(fin);
            if end > fin {
                let excess = u64::try_from(end - fin).unwrap_or(u64::MAX);
                let from_lost = excess.min(lost);
                lost -= from_lost;
                let from_data = (excess - from_lost).min(len64(&data));
                data = sub_bytes(&data, 0, len64(&data) - from_data);
                end = fin.max(start);
            }
            self.highest = self.highest.max(u64::try_from(fin + 1).unwrap_or(0));
        }
        if let Ok(end) = u64::try_from(end) {
            self.highest = self.highest.max(end);
        }

        if end <= delivered {
            // Entirely old: a retransmission (or a keepalive probe).
            e.retransmitted(len64(&data));
        } else {
            if start < delivered {
                // Overlaps what was delivered: keep only the new tail.
                let old = u64::try_from(delivered - start).unwrap_or(u64::MAX);
                let from_data = old.min(len64(&data));
                e.retransmitted(from_data);
                data = sub_bytes(&data, from_data, u64::MAX);
                lost = lost.saturating_sub(old - from_data);
                start = delivered;
            }
            let start = u64::try_from(start).unwrap_or(self.delivered);
            let captured = len64(&data);
            if start == self.delivered {
                // In order: hand the packet's own slice on.
                self.emit_chunk(
                    Chunk::Data {
                        bytes: data,
                        ts_ns: seg.ts_ns,
                        packet: seg.packet,
                    },
                    e,
                );
                self.emit_chunk(Chunk::Lost { len: lost }, e);
            } else if captured > 0 || lost > 0 {
                e.counters.out_of_order_segments =
                    e.counters.out_of_order_segments.saturating_add(1);
                self.insert(
                    start,
                    Chunk::Data {
                        bytes: data,
                        ts_ns: seg.ts_ns,
                        packet: seg.packet,
                    },
                    e,
                );
                self.insert(start.saturating_add(captured), Chunk::Lost { len: lost }, e);
                self.enforce_limit(limits.per_stream, e);
            }
        }
        self.drain(e);
        self.apply_peer_ack(e);
    }

    /// Buffers `chunk` at `start`, filling only the ranges no buffered chunk
    /// covers: the first copy of a byte wins.
    fn insert(&mut self, start: u64, chunk: Chunk, e: &mut Emit<'_>) {
        let end = start.saturating_add(chunk.len());
        let mut cur = start;
        if let Some((&key, prev)) = self.ooo.range(..cur).next_back() {
            let prev_end = key.saturating_add(prev.len());
            if prev_end > cur {
                let covered_to = prev_end.min(end);
                if chunk.is_data() {
                    e.retransmitted(covered_to - cur);
                }
                cur = covered_to;
            }
        }
        // Each round steps over one existing chunk, or ends.
        let mut rounds = self.ooo.len().saturating_add(1);
        while cur < end && rounds > 0 {
            rounds -= 1;
            let next = self
                .ooo
                .range(cur..end)
                .next()
                .map(|(&key, c)| (key, c.len()));
            let piece_end = next.map_or(end, |(key, _)| key);
            if piece_end > cur {
                let piece = chunk.sub(cur - start, piece_end - cur);
                let cost = piece.cost();
                self.buffered = self.buffered.saturating_add(cost);
                *e.total = e.total.saturating_add(cost);
                self.ooo.insert(cur, piece);
            }
            match next {
                Some((key, len)) => {
                    let covered_to = key.saturating_add(len).min(end);
                    if chunk.is_data() {
                        e.retransmitted(covered_to - key);
                    }
                    cur = covered_to;
                }
                None => cur = end,
            }
        }
    }

    /// Delivers buffered chunks that the stream has reached, then the FIN if
    /// the stream has reached it.
    fn drain(&mut self, e: &mut Emit<'_>) {
        while let Some(entry) = self.ooo.first_entry() {
            let key = *entry.key();
            if key > self.delivered {
                break;
            }
            let chunk = entry.remove();
            self.release(&chunk, e);
            let end = key.saturating_add(chunk.len());
            if end <= self.delivered {
                if chunk.is_data() {
                    e.retransmitted(chunk.len());
                }
                continue;
            }
            let skip = self.delivered - key;
            if chunk.is_data() {
                e.retransmitted(skip);
            }
            let rest = chunk.sub(skip, u64::MAX);
            self.emit_chunk(rest, e);
        }
        if let Some(fin) = self.fin_at {
            if !self.fin_done && fin == self.delivered {
                self.fin_done = true;
                e.push(EventKind::Fin);
                self.advance(1);
            }
        }
    }

    /// Declares the first hole a gap and delivers what follows it. False
    /// when nothing is buffered.
    fn declare_gap(&mut self, e: &mut Emit<'_>) -> bool {
        let Some((&key, _)) = self.ooo.first_key_value() else {
            return false;
        };
        if key > self.delivered {
            let hole = key - self.delivered;
            e.gap(hole);
            self.advance(hole);
        }
        self.drain(e);
        true
    }

    /// Declares gaps until at most `limit` is buffered.
    fn enforce_limit(&mut self, limit: usize, e: &mut Emit<'_>) {
        let mut rounds = self.ooo.len().saturating_add(1);
        while self.buffered > limit && rounds > 0 && self.declare_gap(e) {
            rounds -= 1;
        }
    }

    /// Gives up on every hole: declares them gaps, delivers everything
    /// buffered, and a FIN whose preceding bytes never came.
    fn flush(&mut self, e: &mut Emit<'_>) {
        let mut rounds = self.ooo.len().saturating_add(1);
        while rounds > 0 && self.declare_gap(e) {
            rounds -= 1;
        }
        if let Some(fin) = self.fin_at {
            if !self.fin_done && fin > self.delivered {
                let hole = fin - self.delivered;
                e.gap(hole);
                self.advance(hole);
            }
        }
        self.drain(e);
    }

    /// Records an acknowledgment the other side sent for this direction.
    fn note_peer_ack(&mut self, ack: u32, e: &mut Emit<'_>) {
        let newer = match self.peer_ack {
            Some(known) => seq_delta(ack, known) > 0,
            None => true,
        };
        if newer {
            self.peer_ack = Some(ack);
        }
        self.apply_peer_ack(e);
    }

    /// The receiver acknowledged bytes the capture does not have: it got
    /// them, so the capture lost them, and no retransmission will come
    /// (RFC 9293 section 3.4: an ACK covers every byte before it). Declares
    /// the holes below the acknowledgment as gaps. The acknowledgment is
    /// only believed as far as this side was seen sending, so a bogus ACK
    /// cannot skip bytes that have not been captured yet.
    fn apply_peer_ack(&mut self, e: &mut Emit<'_>) {
        let Some(ack) = self.peer_ack else { return };
        if !self.started {
            return;
        }
        let ahead = seq_delta(ack, self.next_seq);
        if ahead <= 0 {
            return;
        }
        let acked = self
            .delivered
            .saturating_add(u64::try_from(ahead).unwrap_or(0))
            .min(self.highest);
        let mut rounds = self.ooo.len().saturating_add(2);
        while self.delivered < acked && rounds > 0 {
            rounds -= 1;
            let before = self.delivered;
            let mut hole_end = acked;
            if let Some((&key, _)) = self.ooo.first_key_value() {
                hole_end = hole_end.min(key);
            }
            if let (Some(fin), false) = (self.fin_at, self.fin_done) {
                hole_end = hole_end.min(fin);
            }
            if hole_end > self.delivered {
                let hole = hole_end - self.delivered;
                e.gap(hole);
                self.advance(hole);
            }
            self.drain(e);
            if self.delivered == before {
                break;
            }
        }
    }
}

/// A connection being tracked.
#[derive(Debug)]
struct Conn {
    id: u32,
    initiator: SocketAddr,
    /// Halves by [`Side::index`]: the bytes each side sent.
    halves: [Half; 2],
    /// Its place in [`Reassembler::stamps`], for as long as it is open.
    slot: u32,
}

impl Conn {
    fn buffered(&self) -> usize {
        self.halves[0]
            .buffered
            .saturating_add(self.halves[1].buffered)
    }

    fn side_of(&self, src: SocketAddr) -> Side {
        if src == self.initiator {
            Side::Initiator
        } else {
            Side::Responder
        }
    }
}

/// A connection's identity regardless of direction: its two addresses,
/// the lower first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct FlowKey(SocketAddr, SocketAddr);

/// Every segment hashes its key: where both addresses are IPv4 they go in
/// as one word, which costs a third of hashing each part apart.
impl Hash for FlowKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        match (self.0, self.1) {
            (SocketAddr::V4(a), SocketAddr::V4(b)) => {
                let packed = (u128::from(a.ip().to_bits()) << 96)
                    | (u128::from(a.port()) << 80)
                    | (u128::from(b.ip().to_bits()) << 48)
                    | (u128::from(b.port()) << 32);
                state.write_u128(packed);
            }
            (a, b) => {
                a.hash(state);
                b.hash(state);
            }
        }
    }
}

/// A table keyed by connection: the traffic chooses the addresses, so
/// the hash is seeded.
type FlowMap<V> = HashMap<FlowKey, V, SeededHashing>;

fn flow_key(a: SocketAddr, b: SocketAddr) -> FlowKey {
    if a <= b {
        FlowKey(a, b)
    } else {
        FlowKey(b, a)
    }
}

/// Reassembles every TCP connection of a capture.
#[derive(Debug)]
pub struct Reassembler {
    limits: ReassemblyLimits,
    counters: ReassemblyCounters,
    next_id: u32,
    clock: u64,
    conns: FlowMap<Conn>,
    /// Open connections by last activity, oldest first, as (stamp, slot,
    /// key). An entry is stale, and skipped, unless its slot in `stamps`
    /// holds that stamp: touching a connection appends an entry instead of
    /// moving one (a tree kept in order cost more than the rest of
    /// reassembly), and stale entries are dropped once they are many.
    lru: VecDeque<(u64, u32, FlowKey)>,
    /// Each open connection's last activity (its newest `lru` stamp; 0
    /// before its first), by slot: telling a stale entry takes no lookup
    /// by key. Slots of closed connections are reused (`free_slots`), so
    /// there are never more than connections open at once; stamps only
    /// grow, so an entry from a slot's earlier connection stays stale.
    stamps: Vec<u64>,
    free_slots: Vec<u32>,
    /// Recently closed connections, kept so that their final ACKs and
    /// retransmitted FINs do not open phantom connections.
    closed: FlowMap<u64>,
    /// `closed` in closing order; entries whose stamp no longer matches are
    /// stale.
    closed_order: VecDeque<(u64, FlowKey)>,
    /// Accounted bytes buffered across all directions.
    total: usize,
}

impl Reassembler {
    pub fn new(limits: ReassemblyLimits) -> Reassembler {
        Reassembler {
            limits,
            counters: ReassemblyCounters::default(),
            next_id: 0,
            clock: 0,
            conns: HashMap::with_hasher(SeededHashing::new()),
            lru: VecDeque::new(),
            stamps: Vec::new(),
            free_slots: Vec::new(),
            closed: HashMap::with_hasher(SeededHashing::new()),
            closed_order: VecDeque::new(),
            total: 0,
        }
    }

    pub fn counters(&self) -> ReassemblyCounters {
        self.counters
    }

    /// Connections currently open (not counting recently closed ones).
    pub fn open_connections(&self) -> usize {
        self.conns.len()
    }

    /// Accounted out-of-order bytes buffered right now.
    pub fn buffered_bytes(&self) -> usize {
        self.total
    }

    /// Takes one segment, in capture order, and appends what it causes.
    pub fn push(&mut self, segment: TcpSegment, out: &mut Vec<StreamEvent>) {
        self.clock = self.clock.saturating_add(1);
        let key = flow_key(segment.src, segment.dst);
        // Stale entries are dropped when they outnumber live ones three to
        // one: each drop looks up every entry, so rarer is cheaper.
        if self.lru.len() > self.conns.len().saturating_mul(4).saturating_add(64) {
            let stamps = &self.stamps;
            self.lru
                .retain(|&(stamp, slot, _)| is_live(stamps, stamp, slot));
        }

        // Only a SYN without ACK can start a new incarnation; other segments
        // of a known connection (nearly all) skip the lookups below.
        let fresh_syn = segment.syn && segment.ack.is_none();
        let reopened = fresh_syn
            && self
                .conns
                .get(&key)
                .is_some_and(|conn| is_new_incarnation(conn, &segment));
        if reopened {
            // A fresh SYN with another ISN: the port pair was reused after a
            // close the capture did not show (RFC 9293 section 3.5).
            self.close(key, out, false);
        }
        // One lookup for a known connection; the second only after opening.
        let conn = if let Some(conn) = self.conns.get_mut(&key) {
            conn
        } else {
            if self.closed.contains_key(&key) {
                if !segment.syn {
                    self.counters.late_segments = self.counters.late_segments.saturating_add(1);
                    return;
                }
                self.closed.remove(&key);
            }
            self.open(key, &segment, out);
            let Some(conn) = self.conns.get_mut(&key) else {
                return;
            };
            conn
        };
        // Consecutive segments mostly belong to one connection: when it is
        // already the most recent, the order stands and the two tree
        // updates are skipped.
        if let Some(stamp) = self.stamps.get_mut(conn.slot as usize) {
            let newest = self.lru.back() == Some(&(*stamp, conn.slot, key));
            if !newest {
                *stamp = self.clock;
                self.lru.push_back((self.clock, conn.slot, key));
            }
        }

        let side = conn.side_of(segment.src);
        let mut e = Emit {
            connection: conn.id,
            side,
            out,
            counters: &mut self.counters,
            total: &mut self.total,
        };
        let [initiator_half, responder_half] = &mut conn.halves;
        let (sender, receiver) = match side {
            Side::Initiator => (initiator_half, responder_half),
            Side::Responder => (responder_half, initiator_half),
        };

        if segment.rst {
            // RFC 9293 section 3.10.7.4: a reset aborts both directions;
            // nothing more will be retransmitted, so every hole is final.
            sender.flush(&mut e);
            e.side = side.other();
            receiver.flush(&mut e);
            e.side = side;
            e.push(EventKind::Reset);
            self.close(key, out, true);
            return;
        }

        if !sender.started {
            // The SYN's own sequence number precedes the first data byte
            // (RFC 9293 section 3.4, "initial sequence number"); without a
            // SYN the first segment seen sets the start.
            let first = if segment.syn {
                segment.seq.wrapping_add(1)
            } else {
                segment.seq
            };
            sender.start(first);
        }
        if segment.syn && !receiver.started {
            if let Some(ack) = segment.ack {
                // A SYN-ACK acknowledges the initiator's ISN + 1: its first
                // data byte.
                receiver.start(ack);
            }
        }
        // The acknowledgment first: it covers bytes of the other direction
        // that were sent before this segment's payload (the sender had
        // received them), so the out-of-order bytes (or the gap) it
        // releases must come out before the payload. Otherwise a request
        // completed behind a hole would follow its own response.
        if let Some(ack) = segment.ack {
            e.side = side.other();
            receiver.note_peer_ack(ack, &mut e);
            e.side = side;
        }
        let seq = if segment.syn {
            segment.seq.wrapping_add(1)
        } else {
            segment.seq
        };
        let wire_len = u64::from(segment.wire_len).max(len64(&segment.payload));
        sender.accept(
            Incoming {
                seq,
                payload: segment.payload,
                wire_len,
                fin: segment.fin,
                ts_ns: segment.ts_ns,
                packet: segment.packet,
            },
            &mut e,
            &self.limits,
        );

        let both_fins_seen = sender.fin_at.is_some() && receiver.fin_at.is_some();
        if both_fins_seen && !(sender.fin_done && receiver.fin_done) {
            // Both ends are done sending; what is still missing before a FIN
            // will not come.
            sender.flush(&mut e);
            e.side = side.other();
            receiver.flush(&mut e);
        }
        if sender.fin_done && receiver.fin_done {
            self.close(key, out, true);
        }
        self.enforce_total(out);
    }

    /// Declares every remaining hole a gap, delivers everything buffered and
    /// closes every connection, in connection order.
    pub fn finish(&mut self, out: &mut Vec<StreamEvent>) {
        let mut keys: Vec<(u32, FlowKey)> = self
            .conns
            .iter()
            .map(|(key, conn)| (conn.id, *key))
            .collect();
        keys.sort_unstable();
        for (_, key) in keys {
            self.close(key, out, false);
        }
        self.closed.clear();
        self.closed_order.clear();
        self.lru.clear();
        self.stamps.clear();
        self.free_slots.clear();
        self.total = 0;
    }

    fn open(&mut self, key: FlowKey, segment: &TcpSegment, out: &mut Vec<StreamEvent>) {
        self.make_room(out);
        // A SYN-ACK seen first was sent by the responder.
        let (initiator, responder) = if segment.syn && segment.ack.is_some() {
            (segment.dst, segment.src)
        } else {
            (segment.src, segment.dst)
        };
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        let slot = self.free_slots.pop().unwrap_or_else(|| {
            self.stamps.push(0);
            u32::try_from(self.stamps.len() - 1).unwrap_or(u32::MAX)
        });
        out.push(StreamEvent {
            connection: id,
            side: Side::Initiator,
            kind: EventKind::Opened {
                initiator,
                responder,
                saw_syn: segment.syn,
            },
        });
        self.conns.insert(
            key,
            Conn {
                id,
                initiator,
                halves: [Half::default(), Half::default()],
                slot,
            },
        );
    }

    /// Flushes both directions, emits `Closed` and forgets the connection,
    /// keeping a tombstone if asked.
    fn close(&mut self, key: FlowKey, out: &mut Vec<StreamEvent>, tombstone: bool) {
        let Some(mut conn) = self.conns.remove(&key) else {
            return;
        };
        if let Some(stamp) = self.stamps.get_mut(conn.slot as usize) {
            *stamp = 0;
            self.free_slots.push(conn.slot);
        }
        let mut e = Emit {
            connection: conn.id,
            side: Side::Initiator,
            out,
            counters: &mut self.counters,
            total: &mut self.total,
        };
        for side in [Side::Initiator, Side::Responder] {
            e.side = side;
            conn.halves[side.index()].flush(&mut e);
        }
        e.side = Side::Initiator;
        e.push(EventKind::Closed);
        if tombstone {
            self.closed.insert(key, self.clock);
            self.closed_order.push_back((self.clock, key));
            if self.closed_order.len() > self.closed.len().saturating_mul(2).saturating_add(16) {
                let closed = &self.closed;
                self.closed_order
                    .retain(|(stamp, key)| closed.get(key) == Some(stamp));
            }
        }
    }

    /// Makes room for one more connection: forgets the oldest closed one,
    /// or else closes the least recently active open one.
    fn make_room(&mut self, out: &mut Vec<StreamEvent>) {
        let cap = self.limits.max_connections.max(1);
        let mut rounds = self
            .closed_order
            .len()
            .saturating_add(self.conns.len())
            .saturating_add(1);
        while self.conns.len().saturating_add(self.closed.len()) >= cap && rounds > 0 {
            rounds -= 1;
            if let Some((stamp, key)) = self.closed_order.pop_front() {
                if self.closed.get(&key) == Some(&stamp) {
                    self.closed.remove(&key);
                }
                continue;
            }
            if !self.closed.is_empty() {
                // Out of step with closed_order: cannot happen, but never
                // loop on it.
                self.closed.clear();
                continue;
            }
            let Some(key) = self.pop_oldest() else {
                break;
            };
            self.counters.evicted_connections = self.counters.evicted_connections.saturating_add(1);
            self.close(key, out, false);
        }
    }

    /// Takes the least recently active open connection out of `lru`.
    fn pop_oldest(&mut self) -> Option<FlowKey> {
        while let Some((stamp, slot, key)) = self.lru.pop_front() {
            if is_live(&self.stamps, stamp, slot) {
                return Some(key);
            }
        }
        None
    }

    /// While more than the total cap is buffered, flushes the buffers of
    /// the least recently active connection that has any.
    fn enforce_total(&mut self, out: &mut Vec<StreamEvent>) {
        let mut rounds = self.conns.len();
        while self.total > self.limits.total && rounds > 0 {
            rounds -= 1;
            let (conns, stamps) = (&self.conns, &self.stamps);
            let victim = self
                .lru
                .iter()
                .filter(|&&(stamp, slot, _)| is_live(stamps, stamp, slot))
                .map(|&(_, _, key)| key)
                .find(|key| conns.get(key).is_some_and(|c| c.buffered() > 0));
            let Some(key) = victim else { break };
            let Some(conn) = self.conns.get_mut(&key) else {
                break;
            };
            let mut e = Emit {
                connection: conn.id,
                side: Side::Initiator,
                out: &mut *out,
                counters: &mut self.counters,
                total: &mut self.total,
            };
            for side in [Side::Initiator, Side::Responder] {
                let half = &mut conn.halves[side.index()];
                if half.buffered > 0 {
                    e.side = side;
                    half.flush(&mut e);
                    e.counters.evicted_streams = e.counters.evicted_streams.saturating_add(1);
                }
            }
        }
    }
}

/// Whether an `lru` entry stands for an open connection's last activity.
fn is_live(stamps: &[u64], stamp: u64, slot: u32) -> bool {
    stamps.get(slot as usize) == Some(&stamp)
}

/// A SYN (without ACK) whose sequence number is not that of the sender's
/// known SYN starts a new connection on the same port pair.
fn is_new_incarnation(conn: &Conn, segment: &TcpSegment) -> bool {
    if !segment.syn || segment.ack.is_some() {
        return false;
    }
    let half = &conn.halves[conn.side_of(segment.src).index()];
    half.started && segment.seq.wrapping_add(1) != half.first_seq
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLIENT: &str = "10.0.0.1:40000";
    const SERVER: &str = "10.0.0.2:9092";

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    /// A segment; `flags` holds any of `S`, `F`, `R`.
    fn seg(
        from_client: bool,
        seq: u32,
        ack: Option<u32>,
        flags: &str,
        payload: &[u8],
    ) -> TcpSegment {
        let (src, dst) = if from_client {
            (addr(CLIENT), addr(SERVER))
        } else {
            (addr(SERVER), addr(CLIENT))
        };
        TcpSegment {
            packet: u64::from(seq),
            ts_ns: i64::from(seq),
            src,
            dst,
            seq,
            ack,
            syn: flags.contains('S'),
            fin: flags.contains('F'),
            rst: flags.contains('R'),
            payload: Bytes::copy_from_slice(payload),
            snapped: false,
            wire_len: u32::try_from(payload.len()).unwrap(),
        }
    }

    fn client(seq: u32, payload: &[u8]) -> TcpSegment {
        seg(true, seq, None, "", payload)
    }

    /// Events rendered one per line: `0 I data "abc"`, `0 R gap 3`, ...
    fn render(events: &[StreamEvent]) -> Vec<String> {
        events
            .iter()
            .map(|e| {
                let side = match e.side {
                    Side::Initiator => "I",
                    Side::Responder => "R",
                };
                let what = match &e.kind {
                    EventKind::Opened { saw_syn, .. } => format!("opened syn={saw_syn}"),
                    EventKind::Data { bytes, .. } => {
                        format!("data {:?}", String::from_utf8_lossy(bytes))
                    }
                    EventKind::Gap { bytes } => format!("gap {bytes}"),
                    EventKind::Fin => "fin".to_string(),
                    EventKind::Reset => "reset".to_string(),
                    EventKind::Closed => "closed".to_string(),
                };
                format!("{} {side} {what}", e.connection)
            })
            .collect()
    }

    fn run(r: &mut Reassembler, segments: Vec<TcpSegment>) -> Vec<String> {
        let mut out = Vec::new();
        for s in segments {
            r.push(s, &mut out);
        }
        render(&out)
    }

    /// SYN (ISN c), SYN-ACK (ISN s), ACK: client data starts at c + 1,
    /// server data at s + 1.
    fn handshake(c: u32, s: u32) -> Vec<TcpSegment> {
        vec![
            seg(true, c, None, "S", b""),
            seg(false, s, Some(c.wrapping_add(1)), "S", b""),
            seg(true, c.wrapping_add(1), Some(s.wrapping_add(1)), "", b""),
        ]
    }

    fn reassembler() -> Reassembler {
        Reassembler::new(ReassemblyLimits::default())
    }

    /// A fresh reassembler fed the handshake (ISNs 1000 and 5000), then
    /// `segments`; the events rendered, from the `opened` on.
    fn after_handshake(
        segments: impl IntoIterator<Item = TcpSegment>,
    ) -> (Reassembler, Vec<String>) {
        let mut r = reassembler();
        let mut all = handshake(1000, 5000);
        all.extend(segments);
        let events = run(&mut r, all);
        (r, events)
    }

    #[test]
    fn test_in_order_data_passes_through_zero_copy() {
        let mut r = reassembler();
        let mut out = Vec::new();
        for s in handshake(1000, 5000) {
            r.push(s, &mut out);
        }
        let segment = client(1001, b"hello");
        let payload = segment.payload.clone();
        r.push(segment, &mut out);
        let Some(StreamEvent {
            kind:
                EventKind::Data {
                    bytes,
                    ts_ns,
                    packet,
                },
            side: Side::Initiator,
            ..
        }) = out.last()
        else {
            panic!("{:?}", out.last());
        };
        assert_eq!(bytes.as_ptr(), payload.as_ptr());
        assert_eq!((*ts_ns, *packet), (1001, 1001));
        assert_eq!(r.buffered_bytes(), 0);
    }

    #[test]
    fn test_handshake_opens_with_initiator_and_responder() {
        let mut r = reassembler();
        let mut out = Vec::new();
        r.push(seg(false, 5000, Some(1001), "S", b""), &mut out);
        r.push(seg(true, 1000, None, "S", b""), &mut out);
        assert_eq!(
            out[0].kind,
            EventKind::Opened {
                initiator: addr(CLIENT),
                responder: addr(SERVER),
                saw_syn: true
            }
        );
    }

    #[test]
    fn test_out_of_order_segments_deliver_in_order() {
        let (r, events) = after_handshake([
            client(1007, b"ghi"),
            client(1004, b"def"),
            client(1001, b"abc"),
        ]);
        assert_eq!(
            events,
            [
                "0 I opened syn=true",
                "0 I data \"abc\"",
                "0 I data \"def\"",
                "0 I data \"ghi\""
            ]
        );
        assert_eq!(r.counters().out_of_order_segments, 2);
        assert_eq!(r.counters().gaps, 0);
        assert_eq!(r.buffered_bytes(), 0);
    }

    #[test]
    fn test_retransmission_exact_duplicate_is_delivered_once() {
        let (r, events) = after_handshake([
            client(1001, b"abc"),
            client(1001, b"abc"),
            client(1004, b"de"),
        ]);
        assert_eq!(events[1..], ["0 I data \"abc\"", "0 I data \"de\""]);
        assert_eq!(r.counters().retransmitted_bytes, 3);
    }

    #[test]
    fn test_retransmission_with_overlap_split_is_delivered_once() {
        // Buffered: [5, 10) and [12, 15) of "0123456789abcdefghij". Then a
        // retransmission covering [8, 20) fills only the holes around them,
        // and one covering [0, 20) is delivered up to the buffered bytes.
        let text = b"0123456789abcdefghij";
        let mut r = reassembler();
        let mut segments = handshake(0, 5000);
        segments.extend([
            client(1 + 5, &text[5..10]),
            client(1 + 12, &text[12..15]),
            client(1 + 8, &text[8..20]),
            client(1, &text[..20]),
        ]);
        let lines = run(&mut r, segments);
        let mut delivered = String::new();
        for line in &lines[1..] {
            let data = line
                .strip_prefix("0 I data \"")
                .unwrap()
                .trim_end_matches('"');
            delivered.push_str(data);
        }
        assert_eq!(delivered.as_bytes(), text);
        // Overlaps: [8, 10) and [12, 15) on the way in, then [5, 20) of the
        // full retransmission.
        assert_eq!(r.counters().retransmitted_bytes, 2 + 3 + 15);
        assert_eq!(r.counters().gaps, 0);
        assert_eq!(r.buffered_bytes(), 0);
    }

    #[test]
    fn test_retransmission_partly_delivered_keeps_only_the_new_tail() {
        let mut r = reassembler();
        let mut segments = handshake(1000, 5000);
        segments.extend([client(1001, b"abcd"), client(1003, b"cdefg")]);
        assert_eq!(
            run(&mut r, segments)[1..],
            ["0 I data \"abcd\"", "0 I data \"efg\""]
        );
        assert_eq!(r.counters().retransmitted_bytes, 2);
    }

    #[test]
    fn test_overlap_with_conflicting_bytes_first_seen_wins() {
        // Out-of-order copies disagree (they never do in real TCP): the first
        // buffered copy is what is delivered, and no byte comes out twice.
        let (_, events) = after_handshake([
            client(1004, b"XYZ"),
            client(1003, b"??????"),
            client(1001, b"ab"),
        ]);
        assert_eq!(
            events[1..],
            [
                "0 I data \"ab\"",
                "0 I data \"?\"",
                "0 I data \"XYZ\"",
                "0 I data \"??\""
            ]
        );
    }

    #[test]
    fn test_sequence_wraparound() {
        // ISN just below 2^32: the stream crosses it inside the second
        // segment and again in sequence space for the FIN.
        let isn = u32::MAX - 4;
        let mut r = reassembler();
        let mut segments = handshake(isn, 7);
        let first = isn.wrapping_add(1);
        segments.extend([
            seg(true, first.wrapping_add(6), None, "", b"ghij"),
            seg(true, first.wrapping_add(3), None, "", b"def"),
            seg(true, first, None, "", b"abc"),
            seg(false, 8, Some(first.wrapping_add(10)), "", b"ok"),
            seg(true, first.wrapping_add(10), Some(10), "F", b"k"),
            seg(false, 10, Some(first.wrapping_add(12)), "F", b""),
        ]);
        assert_eq!(
            run(&mut r, segments),
            [
                "0 I opened syn=true",
                "0 I data \"abc\"",
                "0 I data \"def\"",
                "0 I data \"ghij\"",
                "0 R data \"ok\"",
                "0 I data \"k\"",
                "0 I fin",
                "0 R fin",
                "0 I closed"
            ]
        );
        assert_eq!(r.counters().gaps, 0);
    }

    #[test]
    fn test_gap_declared_when_peer_acks_beyond_hole() {
        let (mut r, events) = after_handshake([
            client(1001, b"aaaa"),
            // [1005, 1009) lost by the capture, not by the network.
            client(1009, b"cccc"),
            seg(false, 5001, Some(1013), "", b""),
        ]);
        assert_eq!(
            events[1..],
            ["0 I data \"aaaa\"", "0 I gap 4", "0 I data \"cccc\""]
        );
        let counters = r.counters();
        assert_eq!((counters.gaps, counters.gap_bytes), (1, 4));
        // The lost segment's late retransmission is not delivered again.
        assert!(run(&mut r, vec![client(1005, b"bbbb")]).is_empty());
    }

    #[test]
    fn test_peer_ack_releases_bytes_before_the_segments_own_payload() {
        // The server's answer acknowledges the whole request, hole
        // included: the request's bytes (gap, then the buffered tail) come
        // out before the answer that the acknowledged bytes caused.
        let (_, events) = after_handshake([
            client(1001, b"aaaa"),
            client(1009, b"cccc"),
            seg(false, 5001, Some(1013), "", b"answer"),
        ]);
        assert_eq!(
            events[1..],
            [
                "0 I data \"aaaa\"",
                "0 I gap 4",
                "0 I data \"cccc\"",
                "0 R data \"answer\""
            ]
        );
    }

    #[test]
    fn test_gap_declared_when_data_arrives_after_peer_ack() {
        // The ACK beyond the hole came first; the segment after the hole is
        // delivered as soon as it arrives.
        let (_, events) = after_handshake([
            client(1001, b"aaaa"),
            seg(false, 5001, Some(1013), "", b""),
            client(1009, b"cccc"),
        ]);
        assert_eq!(
            events[1..],
            ["0 I data \"aaaa\"", "0 I gap 4", "0 I data \"cccc\""]
        );
    }

    #[test]
    fn test_no_gap_while_peer_ack_is_behind_hole() {
        let (r, events) = after_handshake([
            client(1001, b"aaaa"),
            client(1009, b"cccc"),
            seg(false, 5001, Some(1005), "", b""),
            client(1005, b"bbbb"),
        ]);
        assert_eq!(
            events[1..],
            [
                "0 I data \"aaaa\"",
                "0 I data \"bbbb\"",
                "0 I data \"cccc\""
            ]
        );
        assert_eq!(r.counters().gaps, 0);
    }

    #[test]
    fn test_ack_beyond_anything_captured_is_not_believed() {
        // A bogus acknowledgment far ahead must not skip bytes that simply
        // have not been captured yet.
        let (r, events) = after_handshake([
            client(1001, b"aaaa"),
            seg(false, 5001, Some(1001 + 100_000), "", b""),
            client(1005, b"bbbb"),
        ]);
        assert_eq!(events[1..], ["0 I data \"aaaa\"", "0 I data \"bbbb\""]);
        assert_eq!(r.counters().gaps, 0);
    }

    #[test]
    fn test_gap_declared_when_per_stream_limit_exceeded() {
        let mut r = Reassembler::new(ReassemblyLimits {
            per_stream: 200,
            ..ReassemblyLimits::default()
        });
        let mut segments = handshake(1000, 5000);
        segments.extend([
            client(1001, b"a"),
            client(1102, &[b'c'; 100]),
            client(1202, &[b'd'; 100]),
        ]);
        let lines = run(&mut r, segments);
        assert_eq!(lines[1], "0 I data \"a\"");
        assert_eq!(lines[2], "0 I gap 100");
        assert_eq!(lines.len(), 5);
        assert_eq!(r.buffered_bytes(), 0);
    }

    #[test]
    fn test_gap_declared_at_finish_with_buffered_data() {
        let mut r = reassembler();
        let mut segments = handshake(1000, 5000);
        segments.extend([
            client(1001, b"aa"),
            client(1005, b"cc"),
            client(1009, b"ee"),
        ]);
        let mut out = Vec::new();
        for s in segments {
            r.push(s, &mut out);
        }
        r.finish(&mut out);
        assert_eq!(
            render(&out)[1..],
            [
                "0 I data \"aa\"",
                "0 I gap 2",
                "0 I data \"cc\"",
                "0 I gap 2",
                "0 I data \"ee\"",
                "0 I closed"
            ]
        );
        assert_eq!(r.counters().gap_bytes, 4);
        assert_eq!(r.buffered_bytes(), 0);
        assert_eq!(r.open_connections(), 0);
    }

    #[test]
    fn test_gap_declared_when_both_sides_fin_with_hole() {
        let (_, events) = after_handshake([
            client(1001, b"aa"),
            seg(true, 1005, None, "F", b"cc"),
            seg(false, 5001, None, "F", b""),
        ]);
        assert_eq!(
            events[1..],
            [
                "0 I data \"aa\"",
                "0 R fin",
                "0 I gap 2",
                "0 I data \"cc\"",
                "0 I fin",
                "0 I closed"
            ]
        );
    }

    #[test]
    fn test_fin_waits_for_reordered_data() {
        let mut r = reassembler();
        let mut segments = handshake(1000, 5000);
        segments.extend([seg(true, 1004, None, "F", b"def"), client(1001, b"abc")]);
        assert_eq!(
            run(&mut r, segments)[1..],
            ["0 I data \"abc\"", "0 I data \"def\"", "0 I fin"]
        );
    }

    #[test]
    fn test_fin_consumes_a_sequence_number() {
        // The peer's ACK of FIN + 1 is not a gap, the close is clean, and
        // the final ACK after the close does not open a new connection.
        let (r, events) = after_handshake([
            seg(true, 1001, Some(5001), "F", b"bye"),
            seg(false, 5001, Some(1005), "F", b""),
            seg(true, 1005, Some(5002), "", b""),
        ]);
        assert_eq!(
            events[1..],
            ["0 I data \"bye\"", "0 I fin", "0 R fin", "0 I closed"]
        );
        assert_eq!(r.counters().gaps, 0);
        assert_eq!(r.counters().late_segments, 1);
        assert_eq!(r.open_connections(), 0);
    }

    #[test]
    fn test_data_beyond_fin_is_ignored() {
        let mut r = reassembler();
        let mut segments = handshake(1000, 5000);
        segments.extend([seg(true, 1001, None, "F", b"ab"), client(1004, b"zz")]);
        assert_eq!(run(&mut r, segments)[1..], ["0 I data \"ab\"", "0 I fin"]);
    }

    #[test]
    fn test_midstream_start() {
        // The capture starts with a response: its sender is the initiator as
        // far as the capture knows, and both sides start where first seen.
        let mut r = reassembler();
        let mut out = Vec::new();
        r.push(seg(false, 777_777, Some(42), "", b"resp"), &mut out);
        r.push(seg(true, 42, Some(777_781), "", b"req"), &mut out);
        r.push(seg(false, 777_781, Some(45), "", b"resp2"), &mut out);
        assert_eq!(
            out[0].kind,
            EventKind::Opened {
                initiator: addr(SERVER),
                responder: addr(CLIENT),
                saw_syn: false
            }
        );
        assert_eq!(
            render(&out)[1..],
            [
                "0 I data \"resp\"",
                "0 R data \"req\"",
                "0 I data \"resp2\""
            ]
        );
        assert_eq!(r.counters().gaps, 0);
    }

    #[test]
    fn test_midstream_start_at_syn_ack() {
        // The SYN was not captured: the SYN-ACK names the client's first
        // data byte, so both streams are still complete.
        let mut r = reassembler();
        let mut out = Vec::new();
        r.push(seg(false, 5000, Some(1001), "S", b""), &mut out);
        r.push(seg(true, 1001, Some(5001), "", b"req"), &mut out);
        assert_eq!(
            out[0].kind,
            EventKind::Opened {
                initiator: addr(CLIENT),
                responder: addr(SERVER),
                saw_syn: true
            }
        );
        assert_eq!(render(&out)[1..], ["0 I data \"req\""]);
    }

    #[test]
    fn test_syn_with_data() {
        // TCP Fast Open: the SYN carries data, which starts at ISN + 1.
        let mut r = reassembler();
        let segments = vec![
            seg(true, 1000, None, "S", b"hi"),
            seg(false, 5000, Some(1003), "S", b""),
            client(1003, b"there"),
            seg(true, 1000, None, "S", b"hi"),
        ];
        assert_eq!(
            run(&mut r, segments),
            [
                "0 I opened syn=true",
                "0 I data \"hi\"",
                "0 I data \"there\""
            ]
        );
        assert_eq!(r.counters().retransmitted_bytes, 2);
    }

    #[test]
    fn test_rst_closes() {
        let (r, events) = after_handshake([
            client(1001, b"aa"),
            client(1005, b"cc"),
            seg(false, 5001, None, "R", b""),
            client(1003, b"bb"),
        ]);
        assert_eq!(
            events[1..],
            [
                "0 I data \"aa\"",
                "0 I gap 2",
                "0 I data \"cc\"",
                "0 R reset",
                "0 I closed"
            ]
        );
        assert_eq!(r.counters().late_segments, 1);
        assert_eq!(r.open_connections(), 0);
    }

    #[test]
    fn test_port_reuse_with_new_syn_opens_new_connection() {
        let mut r = reassembler();
        let mut segments = handshake(1000, 5000);
        segments.push(client(1001, b"one"));
        segments.extend(handshake(90_000, 7000));
        segments.push(client(90_001, b"two"));
        assert_eq!(
            run(&mut r, segments),
            [
                "0 I opened syn=true",
                "0 I data \"one\"",
                "0 I closed",
                "1 I opened syn=true",
                "1 I data \"two\""
            ]
        );
    }

    #[test]
    fn test_syn_after_close_opens_new_connection() {
        let mut r = reassembler();
        let mut segments = handshake(1000, 5000);
        segments.push(seg(true, 1001, None, "R", b""));
        segments.extend(handshake(1000, 5000));
        segments.push(client(1001, b"again"));
        let lines = run(&mut r, segments);
        assert_eq!(lines[3..], ["1 I opened syn=true", "1 I data \"again\""]);
    }

    #[test]
    fn test_total_buffer_cap_evicts() {
        // Two connections each buffer 100 bytes behind a hole; the cap holds
        // only one, so the least recently active one is flushed.
        let mut r = Reassembler::new(ReassemblyLimits {
            total: 300,
            ..ReassemblyLimits::default()
        });
        let other = "10.0.0.3:40001";
        let mut out = Vec::new();
        for s in handshake(1000, 5000) {
            r.push(s, &mut out);
        }
        r.push(client(1011, &[b'x'; 100]), &mut out);
        let mut second = seg(true, 1000, None, "S", b"");
        second.src = addr(other);
        r.push(second, &mut out);
        let mut data = client(1011, &[b'y'; 100]);
        data.src = addr(other);
        r.push(data, &mut out);
        let lines = render(&out);
        assert_eq!(lines[1], "1 I opened syn=true");
        // The push of connection 1's data pushed the total over the cap, and
        // connection 0, idle longest, gave way.
        assert_eq!(lines[2], "0 I gap 10");
        assert!(lines[3].starts_with("0 I data \"xxx"));
        assert_eq!(r.counters().evicted_streams, 1);
        assert!(r.buffered_bytes() <= 300);
    }

    /// A reassembler that keeps at most `max` connections.
    fn with_max_connections(max: usize) -> Reassembler {
        Reassembler::new(ReassemblyLimits {
            max_connections: max,
            ..ReassemblyLimits::default()
        })
    }

    /// A client segment from `port` of the client's address.
    fn from_port(port: u16, seq: u32, flags: &str, payload: &[u8]) -> TcpSegment {
        let mut s = seg(true, seq, None, flags, payload);
        s.src = SocketAddr::new(s.src.ip(), port);
        s
    }

    #[test]
    fn test_connection_cap_evicts_closed_first() {
        let mut r = with_max_connections(2);
        let mut out = Vec::new();
        let conn = |port: u16, seq: u32, flags: &str| from_port(port, seq, flags, b"");
        r.push(conn(1, 100, "S"), &mut out);
        r.push(conn(1, 101, "R"), &mut out); // closed, kept as a tombstone
        r.push(conn(2, 200, "S"), &mut out);
        r.push(conn(3, 300, "S"), &mut out); // drops the tombstone
        assert_eq!(r.open_connections(), 2);
        assert_eq!(r.counters().evicted_connections, 0);
        r.push(conn(4, 400, "S"), &mut out); // evicts connection 1 (port 2)
        assert_eq!(r.counters().evicted_connections, 1);
        assert_eq!(
            render(&out)[3..],
            [
                "1 I opened syn=true",
                "2 I opened syn=true",
                "1 I closed",
                "3 I opened syn=true"
            ]
        );
        // Port 1 is forgotten: a late segment opens a mid-stream connection.
        r.push(conn(1, 101, ""), &mut out);
        assert_eq!(render(&out).last().unwrap(), "4 I opened syn=false");
    }

    #[test]
    fn test_many_connections_reuse_a_few_slots_and_evict_in_order() {
        // 500 connections, 3 open at most. The first stays busy; the
        // others come and go: each new one evicts the least recently
        // active, which is never the first (evicting in order of opening
        // would take it first). The bookkeeping holds a slot per
        // connection open at once, not per connection.
        let mut r = with_max_connections(3);
        let mut out = Vec::new();
        r.push(from_port(1, 1000, "S", b""), &mut out);
        for port in 2..=500u16 {
            r.push(from_port(port, 1000, "S", b""), &mut out);
            r.push(from_port(port, 1001, "", b"x"), &mut out);
            let seq = 1001 + u32::from(port - 2);
            r.push(from_port(1, seq, "", b"y"), &mut out);
        }
        assert_eq!(r.counters().evicted_connections, 497);
        assert!(r.stamps.len() <= 4, "{} slots", r.stamps.len());
        assert!(r.lru.len() <= 3 * 4 + 64, "{} LRU entries", r.lru.len());
        // Ids from 0 in order of opening: ports 2 to 498 went, in turn.
        let closed: Vec<u32> = out
            .iter()
            .filter(|event| matches!(event.kind, EventKind::Closed))
            .map(|event| event.connection)
            .collect();
        assert_eq!(closed, (1..=497).collect::<Vec<u32>>());
    }

    #[test]
    fn test_connection_cap_evicts_least_recently_active() {
        // Consecutive segments of one connection leave the order as it is;
        // the connection idle longest still gives way.
        let mut r = with_max_connections(2);
        let mut out = Vec::new();
        r.push(from_port(1, 100, "S", b""), &mut out);
        r.push(from_port(2, 200, "S", b""), &mut out);
        r.push(from_port(1, 101, "", b"a"), &mut out);
        r.push(from_port(1, 102, "", b"b"), &mut out);
        r.push(from_port(3, 300, "S", b""), &mut out); // evicts port 2
        r.push(from_port(1, 103, "", b"c"), &mut out);
        r.push(from_port(4, 400, "S", b""), &mut out); // evicts port 3
        assert_eq!(r.counters().evicted_connections, 2);
        assert_eq!(
            render(&out)[2..],
            [
                "0 I data \"a\"",
                "0 I data \"b\"",
                "1 I closed",
                "2 I opened syn=true",
                "0 I data \"c\"",
                "2 I closed",
                "3 I opened syn=true"
            ]
        );
    }

    #[test]
    fn test_snapped_segment_becomes_gap() {
        let mut r = reassembler();
        let mut segments = handshake(1000, 5000);
        let mut cut = client(1001, b"abcd");
        cut.snapped = true;
        cut.wire_len = 10;
        segments.extend([cut, client(1011, b"next")]);
        assert_eq!(
            run(&mut r, segments)[1..],
            ["0 I data \"abcd\"", "0 I gap 6", "0 I data \"next\""]
        );
    }

    #[test]
    fn test_snapped_out_of_order_segment_keeps_its_gap() {
        let mut r = reassembler();
        let mut segments = handshake(1000, 5000);
        let mut cut = client(1003, b"cd");
        cut.snapped = true;
        cut.wire_len = 6;
        segments.extend([cut, client(1009, b"ij"), client(1001, b"ab")]);
        assert_eq!(
            run(&mut r, segments)[1..],
            [
                "0 I data \"ab\"",
                "0 I data \"cd\"",
                "0 I gap 4",
                "0 I data \"ij\""
            ]
        );
    }

    #[test]
    fn test_keepalive_probe_is_not_data() {
        let mut r = reassembler();
        let mut segments = handshake(1000, 5000);
        segments.extend([client(1001, b"ab"), client(1002, b"b"), client(1003, b"c")]);
        assert_eq!(
            run(&mut r, segments)[1..],
            ["0 I data \"ab\"", "0 I data \"c\""]
        );
    }

    #[test]
    fn test_finish_closes_every_connection_in_order() {
        let mut r = reassembler();
        let mut out = Vec::new();
        for port in [5, 3, 9] {
            let mut s = client(10, b"x");
            s.src = SocketAddr::new(s.src.ip(), port);
            r.push(s, &mut out);
        }
        out.clear();
        r.finish(&mut out);
        assert_eq!(render(&out), ["0 I closed", "1 I closed", "2 I closed"]);
        let mut again = Vec::new();
        r.finish(&mut again);
        assert!(again.is_empty());
    }

    /// xorshift64*: a tiny deterministic PRNG for the property test.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }

        fn below(&mut self, n: usize) -> usize {
            usize::try_from(self.next() % u64::try_from(n.max(1)).unwrap()).unwrap()
        }
    }

    #[test]
    fn test_random_segmentation_reordering_duplication_delivers_exact_stream() {
        for seed in 1..=300u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
            let len = rng.below(20_000);
            let original: Vec<u8> = (0..len).map(|_| (rng.next() >> 56) as u8).collect();
            // Every third seed starts within reach of 2^32.
            let isn = if seed % 3 == 0 {
                u32::MAX - u32::try_from(rng.below(30_000)).unwrap()
            } else {
                u32::try_from(rng.next() >> 32).unwrap()
            };
            let first = isn.wrapping_add(1);
            let at = |offset: usize| first.wrapping_add(u32::try_from(offset).unwrap());

            // Cut into segments of 1..=1460 bytes (a few tiny ones).
            let mut pieces = Vec::new();
            let mut offset = 0;
            while offset < len {
                let size = if rng.below(10) == 0 {
                    1 + rng.below(8)
                } else {
                    1 + rng.below(1460)
                };
                let end = (offset + size).min(len);
                pieces.push((offset, end));
                offset = end;
            }
            // Duplicates, and retransmissions cut along other boundaries.
            let mut wire = Vec::new();
            for &(start, end) in &pieces {
                wire.push((start, end));
                if rng.below(10) == 0 {
                    wire.push((start, end));
                }
                if rng.below(12) == 0 {
                    let from = start.saturating_sub(rng.below(2000));
                    let to = (end + rng.below(2000)).min(len);
                    let mid = from + rng.below(to - from + 1);
                    if mid > from {
                        wire.push((from, mid));
                    }
                    if to > mid {
                        wire.push((mid, to));
                    }
                }
            }
            // Shuffle within a window of 8.
            for i in 0..wire.len() {
                let j = (i + rng.below(8)).min(wire.len() - 1);
                wire.swap(i, j);
            }

            let mut r = reassembler();
            let mut out = Vec::new();
            for s in handshake(isn, 5000) {
                r.push(s, &mut out);
            }
            // The server acknowledges what a receiver would: the contiguous
            // prefix it holds so far.
            let mut have = vec![false; len];
            let mut contiguous = 0;
            for (start, end) in wire {
                r.push(
                    seg(true, at(start), Some(5001), "", &original[start..end]),
                    &mut out,
                );
                have[start..end].iter_mut().for_each(|b| *b = true);
                while contiguous < len && have[contiguous] {
                    contiguous += 1;
                }
                if rng.below(3) == 0 {
                    r.push(seg(false, 5001, Some(at(contiguous)), "", b""), &mut out);
                }
            }
            r.push(seg(true, at(len), Some(5001), "F", b""), &mut out);
            r.push(
                seg(false, 5001, Some(at(len).wrapping_add(1)), "F", b""),
                &mut out,
            );

            let mut delivered = Vec::new();
            for event in &out {
                match &event.kind {
                    EventKind::Data { bytes, .. } => {
                        assert_eq!(event.side, Side::Initiator);
                        delivered.extend_from_slice(bytes);
                    }
                    EventKind::Gap { bytes } => panic!("seed {seed}: gap of {bytes}"),
                    _ => {}
                }
            }
            assert!(delivered == original, "seed {seed}: stream differs");
            assert_eq!(r.counters().gaps, 0, "seed {seed}");
            assert_eq!(r.buffered_bytes(), 0, "seed {seed}");
            assert_eq!(r.open_connections(), 0, "seed {seed}: not closed");
            let tail: Vec<String> = render(&out).split_off(out.len() - 3);
            assert_eq!(tail, ["0 I fin", "0 R fin", "0 I closed"], "seed {seed}");
        }
    }
}
