//! Kafka on TCP: from reassembled byte streams to paired, decoded exchanges.
//!
//! The [`Analyzer`] drives the reassembler and, per connection, recognises
//! Kafka by content on any port: a request header at a frame boundary, or a
//! response that decodes as one. The side that sends requests is the client;
//! when the capture holds the SYN, that is the initiator (brokers do not
//! connect to clients). TLS is recognised by its record headers and the
//! connection is marked encrypted. Each direction is cut into frames, and
//! responses are paired with requests by correlation id; a response whose
//! request is not in the capture is decoded when its API can be inferred.
//!
//! Where a stream's frame boundary is unknown (a capture joined mid-way, or
//! after a gap) the analyzer searches for one: a request header that decodes,
//! or a response answering an outstanding request, then traces it back
//! through earlier frames that lead to it by their lengths. A gap inside a
//! frame whose length is known only costs that frame, even before the
//! connection is recognised: the stream skips to its end. Brokers answer a
//! connection's requests in order (protocol guide, "Network"), so a
//! response also settles every request before it: an acks=0 Produce as
//! expected, others as unanswered.
//!
//! Without the SYN, which side is the client is told by content too, and
//! weak evidence waits for more: a request found on one side only counts
//! once the next frame there is a request as well, and when both sides
//! hold one, the side whose correlation ids the other's frames answer is
//! the client. A broker address seen on a connection with its SYN counts
//! as a hinted port on the connections joined mid-way.
//!
//! After a SaslHandshake v0 the SASL tokens travel as size-prefixed raw bytes
//! without Kafka headers (KIP-43). Each client token and the server's answer
//! become one exchange with the handshake's API key and version, correlation
//! id -1, frames whose `header_version` is -1 (no Kafka header), and the
//! decoded tokens in [`Exchange::sasl`]. SaslAuthenticate exchanges carry
//! their decoded `auth_bytes` there too. Secrets are redacted unless asked
//! for, in the trees and in the raw body bytes.
//!
//! Memory is bounded whatever the traffic claims: per direction at most one
//! frame of `max_frame` bytes is buffered, all directions together at most
//! `max_buffered` (a frame that does not fit is skipped, its header kept),
//! outstanding requests are capped per connection, and exchanges are handed
//! out as soon as they complete. Nothing is copied that need not be: a frame
//! that lies within one segment is a view of the capture's own buffer, and
//! only a frame spanning segments is joined, into room reserved for all of
//! it, each byte copied once. A response's summary is gathered straight
//! onto its request's. A reader done with an exchange may hand it back
//! ([`recycle`]): its message boxes and summary buffers then serve the
//! next ones, so that a steady stream of exchanges allocates next to
//! nothing.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{Ipv4Addr, SocketAddr};
use std::ops::ControlFlow;
use std::path::Path;

use bytes::{Bytes, BytesMut};

use crate::capture::{into_tcp, CaptureError, CaptureReader, LinkType, SkipReason, TcpSegment};
use crate::codec::{DecodeErrorKind, DecodeOptions, RecordsMode};
use crate::exchange::{Exchange, ExchangeState, Message, PacketList};
use crate::frame::{self, DecodedFrame, Deframe, Direction, LENGTH_PREFIX};
use crate::hashing::PlainHashing;
use crate::reassembly::{EventKind, Reassembler, ReassemblyLimits, Side, StreamEvent};
use crate::sasl::{self, SaslExchange, SaslFraming, SaslMessage, Sender};
use crate::schema::{self, SASL_AUTHENTICATE_KEY, SASL_HANDSHAKE_KEY};
use crate::value::{Struct, Value};
use crate::wire::{read_i16, read_i32, WireErrorKind};

/// Requests waiting for a response, per connection. Kafka clients keep a
/// handful in flight (`max.in.flight.requests.per.connection`, 5 by
/// default); past this many the oldest is given up as unanswered.
const MAX_OUTSTANDING: usize = 1024;
/// How long (capture time) an acks=0 Produce waits for an answer that should
/// not come before it is handed out.
const ACKS0_GRACE_NS: i64 = 1_000_000_000;
/// Distinct client ids remembered per connection.
const MAX_CLIENT_IDS: usize = 16;
/// (API key, version) pairs remembered per connection for inference.
const MAX_SEEN: usize = 32;
/// Connection summaries kept after their connection closed.
const MAX_SUMMARIES: usize = 100_000;
/// Raw SASL client tokens waiting for the server's answer.
const MAX_PENDING_SASL: usize = 16;
/// Packet numbers kept per message (for `--write`).
const MAX_PACKETS_PER_MESSAGE: usize = 65_536;
/// A candidate frame longer than this is judged on its first bytes (the
/// header and the start of the body must decode) instead of waiting for all
/// of it.
const PREFIX_CHECK: usize = 512;
/// Bytes of a skipped or lost frame kept to decode its header and the
/// start of its body (less when `max_buffered` is smaller).
const PREFIX_KEEP: usize = 4096;
/// The largest orphan response waited for whole to infer its API.
const INFER_MAX_FRAME: usize = 1 << 20;
/// Candidate boundaries waiting for bytes, per direction.
const MAX_PENDING: usize = 64;
/// Rejected bytes kept while searching, so that a boundary found can be
/// traced back to earlier frames that lead to it by their lengths.
const HUNT_WINDOW: usize = 64 * 1024;
/// Frames traced back from a boundary found.
const MAX_CHAIN: usize = 8;
/// While hunting, the largest orphan response candidate waited for.
const INFER_WAIT_FRAME: usize = 4096;
/// Inference attempts while hunting for a boundary, renewed at each frame.
const INFERENCE_BUDGET: u32 = 64;
/// Bytes scanned on a connection without finding Kafka before giving up
/// (unless one of its ports is hinted).
const GIVE_UP_SCAN: u64 = 16 << 20;
/// Bytes held per direction while a connection's roles are undecided.
const UNDECIDED_HOLD: usize = 1 << 20;
/// Versions beyond the newest known still count as plausible in a header
/// (a newer client than kwire's tables).
const VERSION_SLACK: i16 = 4;
/// API keys beyond the largest known still plausible at a stream's start.
const API_KEY_SLACK: i16 = 32;
/// Client ids longer than this are implausible.
const MAX_CLIENT_ID: i16 = 4096;
/// The most room reserved ahead for a frame being joined; a larger frame
/// grows as its bytes arrive.
const MAX_RESERVE: usize = 16 << 20;
/// Frames per side compared when both sides of a connection joined
/// mid-way read as requests.
const MATCH_FRAMES: usize = 16;
/// Broker addresses learnt from connections whose SYN was seen.
const MAX_LEARNT_BROKERS: usize = 4096;

#[derive(Clone, Debug)]
pub struct AnalyzerOptions {
    /// Ports that are Kafka brokers; only used when content is ambiguous.
    pub port_hints: Vec<u16>,
    pub decode: DecodeOptions,
    /// Keep SASL passwords, proofs and tokens instead of redacting them.
    pub show_secrets: bool,
    /// The largest frame accepted (Kafka's `socket.request.max.bytes`).
    pub max_frame: usize,
    pub limits: ReassemblyLimits,
    /// Bytes of incomplete frames buffered across all connections; a frame
    /// that does not fit is skipped and only its header decoded.
    pub max_buffered: usize,
    /// The bodies `decode` shows as JSON are decoded later, elsewhere, by
    /// [`decode_for_json`] with `decode`: the session itself reads their
    /// headers only (and of Produce bodies, what comes before the
    /// records, for `acks`). Bodies with secrets it still decodes whole,
    /// so that they can be redacted.
    pub json_later: bool,
}

impl Default for AnalyzerOptions {
    fn default() -> AnalyzerOptions {
        AnalyzerOptions {
            port_hints: Vec::new(),
            decode: DecodeOptions::default(),
            show_secrets: false,
            max_frame: frame::DEFAULT_MAX_FRAME,
            limits: ReassemblyLimits::default(),
            max_buffered: 256 << 20,
            json_later: false,
        }
    }
}

/// What the capture did not let kwire see, each cause counted apart.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LossCounters {
    /// Packets cut by the snaplen, and a truncated last record.
    pub packets_truncated: u64,
    /// Packets that are not TCP, or whose headers are damaged.
    pub packets_skipped: u64,
    /// Bytes missing from TCP streams.
    pub gap_bytes: u64,
    /// Frames a gap fell in (or the capture's end cut).
    pub frames_lost: u64,
    /// Bytes skipped while looking for a frame boundary.
    pub resync_bytes: u64,
    /// Complete frames that did not decode (or whose API is unknown).
    pub undecodable_frames: u64,
    /// Frames larger than could be buffered: skipped, header decoded only.
    pub frames_too_large: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectionState {
    Open,
    Closed,
    Reset,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectionKind {
    Kafka,
    /// TLS: the bytes are encrypted.
    Tls,
    /// Not recognised (yet): neither Kafka nor TLS.
    Unknown,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionSummary {
    /// The reassembler's connection index: every TCP connection counts.
    pub index: u32,
    /// The Kafka client; the TCP initiator while the roles are unknown.
    pub client: SocketAddr,
    pub broker: SocketAddr,
    pub state: ConnectionState,
    pub kind: ConnectionKind,
    pub exchanges: u64,
    pub bytes_to_broker: u64,
    pub bytes_to_client: u64,
    pub client_ids: Vec<String>,
    pub gap_bytes: u64,
    pub frames_lost: u64,
}

/// Everything `read_capture` learnt besides the exchanges.
#[derive(Clone, Debug)]
pub struct CaptureReport {
    pub packets: u64,
    /// Captured bytes (record lengths as stored).
    pub bytes: u64,
    pub losses: LossCounters,
    pub connections: Vec<ConnectionSummary>,
    /// Connections not listed because too many were kept already.
    pub connections_omitted: u64,
    pub link_type: LinkType,
    /// A read error that ended the file early (typically a truncated last
    /// record); what came before it was analysed.
    pub read_error: Option<String>,
    /// Capture time of the first packet, which relative times count from.
    pub first_ts_ns: Option<i64>,
}

/// How far a read has come; see [`read_capture_with`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReadProgress {
    pub packets: u64,
    /// Captured bytes so far (record lengths as stored).
    pub bytes: u64,
    /// Capture time of the first packet.
    pub first_ts_ns: Option<i64>,
}

/// Reads a whole capture file: every exchange goes to `on_exchange` as soon
/// as it is complete.
pub fn read_capture(
    path: &Path,
    options: AnalyzerOptions,
    mut on_exchange: impl FnMut(Exchange),
) -> Result<CaptureReport, CaptureError> {
    read_capture_with(
        path,
        options,
        |_| {},
        |exchange, _| {
            on_exchange(exchange);
            ControlFlow::Continue(())
        },
    )
}

/// [`read_capture`] with a progress callback, called after each packet, and
/// the progress (with the first packet's time) handed along with each
/// exchange. `on_exchange` may stop the read (a closed pipe, say): the
/// report then covers the packets read so far.
pub fn read_capture_with(
    path: &Path,
    options: AnalyzerOptions,
    mut on_progress: impl FnMut(&ReadProgress),
    mut on_exchange: impl FnMut(Exchange, &ReadProgress) -> ControlFlow<()>,
) -> Result<CaptureReport, CaptureError> {
    let mut reader = CaptureReader::open(path)?;
    let link_type = reader.link_type();
    let mut analyzer = Analyzer::new(options);
    let mut out = Vec::new();
    let mut progress = ReadProgress::default();
    let mut read_error = None;
    let mut stopped = false;
    while let Some(next) = reader.next_packet() {
        match next {
            Ok(packet) => {
                progress.packets += 1;
                progress.bytes += u64::from(packet.caplen);
                progress.first_ts_ns.get_or_insert(packet.ts_ns);
                let snapped = packet.caplen < packet.origlen;
                match into_tcp(link_type, packet) {
                    Ok(segment) => analyzer.push_segment(segment, &mut out),
                    Err(_) if snapped => analyzer.note_truncated(),
                    Err(reason) => analyzer.note_skipped(&reason),
                }
            }
            Err(CaptureError::Read { message, .. }) => {
                // libpcap cannot go on after a damaged record: what was read
                // stands, and the loss is reported.
                analyzer.note_truncated();
                read_error = Some(message);
            }
            Err(error) => return Err(error),
        }
        on_progress(&progress);
        for exchange in out.drain(..) {
            if on_exchange(exchange, &progress).is_break() {
                stopped = true;
                break;
            }
        }
        if stopped {
            break;
        }
    }
    if !stopped {
        analyzer.finish(&mut out);
        for exchange in out.drain(..) {
            if on_exchange(exchange, &progress).is_break() {
                break;
            }
        }
    }
    Ok(CaptureReport {
        packets: progress.packets,
        bytes: progress.bytes,
        losses: analyzer.losses(),
        connections: analyzer.connections(),
        connections_omitted: analyzer.connections_omitted(),
        link_type,
        read_error,
        first_ts_ns: progress.first_ts_ns,
    })
}

/// The Kafka analyzer: segments in, exchanges out.
pub struct Analyzer {
    reassembler: Reassembler,
    shared: Shared,
    conns: HashMap<u32, Conn, PlainHashing>,
    closed: Vec<ConnectionSummary>,
    omitted: u64,
    events: Vec<StreamEvent>,
}

/// State every connection updates.
struct Shared {
    options: AnalyzerOptions,
    /// For judging candidate frames: record batches are not decoded.
    probe: DecodeOptions,
    /// `options.decode` building whole trees, for the APIs whose trees the
    /// Kafka layer reads itself (see `is_tree_api`) when the others are
    /// skimmed.
    whole: DecodeOptions,
    /// How the other APIs' frames are decoded here: `options.decode`, or
    /// with `json_later` headers only.
    frames: DecodeOptions,
    /// `frames` for Produce, whose `acks` the Kafka layer reads: with
    /// `json_later`, bodies without their records.
    acks: DecodeOptions,
    losses: LossCounters,
    next_id: u64,
    /// Bytes buffered across all directions.
    buffered: usize,
    /// Brokers (address and port) of connections whose SYN was seen: on a
    /// connection joined mid-way they act as port hints do.
    brokers: HashSet<SocketAddr>,
}

impl Shared {
    /// How a frame of API `key` is decoded, and whether it is to be
    /// decoded again for JSON (`AnalyzerOptions::json_later`).
    fn decode_options(&self, key: i16) -> (&DecodeOptions, bool) {
        // Secrets are hidden in trees: a body shown as JSON without one
        // would show them.
        let secret = self.options.decode.json && is_secret_api(key);
        if is_tree_api(key) || secret {
            (&self.whole, false)
        } else if key == schema::PRODUCE_KEY {
            (&self.acks, self.options.json_later)
        } else {
            (&self.frames, self.options.json_later)
        }
    }

    /// Bytes kept of a frame that is skipped.
    fn keep(&self) -> usize {
        PREFIX_KEEP.min(self.options.max_buffered / 2)
    }

    fn next_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }
}

impl Analyzer {
    pub fn new(options: AnalyzerOptions) -> Analyzer {
        let probe = DecodeOptions {
            records: RecordsMode::Raw,
            skim: false,
            json: false,
            header_only: false,
            ..options.decode
        };
        let whole = DecodeOptions {
            skim: false,
            json: false,
            header_only: false,
            ..options.decode
        };
        let (frames, acks) = if options.json_later {
            let lines = DecodeOptions {
                json: false,
                ..options.decode
            };
            let acks = DecodeOptions {
                records: RecordsMode::Raw,
                ..lines
            };
            let frames = DecodeOptions {
                header_only: true,
                ..lines
            };
            (frames, acks)
        } else {
            (options.decode, options.decode)
        };
        Analyzer {
            reassembler: Reassembler::new(options.limits),
            shared: Shared {
                options,
                probe,
                whole,
                frames,
                acks,
                losses: LossCounters::default(),
                next_id: 0,
                buffered: 0,
                brokers: HashSet::new(),
            },
            conns: HashMap::default(),
            closed: Vec::new(),
            omitted: 0,
            events: Vec::new(),
        }
    }

    /// Runs one segment through reassembly and the Kafka layer; exchanges it
    /// completes are appended to `out`.
    pub fn push_segment(&mut self, segment: TcpSegment, out: &mut Vec<Exchange>) {
        if segment.snapped {
            self.shared.losses.packets_truncated += 1;
        }
        let mut events = std::mem::take(&mut self.events);
        self.reassembler.push(segment, &mut events);
        for event in events.drain(..) {
            self.on_event(event, out);
        }
        self.events = events;
    }

    pub fn note_skipped(&mut self, _reason: &SkipReason) {
        self.shared.losses.packets_skipped += 1;
    }

    pub fn note_truncated(&mut self) {
        self.shared.losses.packets_truncated += 1;
    }

    /// Ends the capture: remaining bytes and requests are flushed (requests
    /// without a response become `ResponseMissing`).
    pub fn finish(&mut self, out: &mut Vec<Exchange>) {
        let mut events = std::mem::take(&mut self.events);
        self.reassembler.finish(&mut events);
        for event in events.drain(..) {
            self.on_event(event, out);
        }
        self.events = events;
        let mut indexes: Vec<u32> = self.conns.keys().copied().collect();
        indexes.sort_unstable();
        for index in indexes {
            self.close(index, out);
        }
    }

    pub fn losses(&self) -> LossCounters {
        self.shared.losses
    }

    /// Every connection seen (up to a bound), in index order.
    pub fn connections(&self) -> Vec<ConnectionSummary> {
        let mut all = self.closed.clone();
        all.extend(self.conns.values().map(Conn::summary));
        all.sort_by_key(|summary| summary.index);
        all
    }

    /// Closed connections left out of `connections` to bound memory.
    pub fn connections_omitted(&self) -> u64 {
        self.omitted
    }

    fn on_event(&mut self, event: StreamEvent, out: &mut Vec<Exchange>) {
        let StreamEvent {
            connection,
            side,
            kind,
        } = event;
        if let EventKind::Opened {
            initiator,
            responder,
            saw_syn,
        } = kind
        {
            self.conns.insert(
                connection,
                Conn::new(connection, initiator, responder, saw_syn),
            );
            return;
        }
        if matches!(kind, EventKind::Closed) {
            self.close(connection, out);
            return;
        }
        // Events always follow `Opened`; a connection is made up if not.
        let unspecified = SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0));
        let conn = self
            .conns
            .entry(connection)
            .or_insert_with(|| Conn::new(connection, unspecified, unspecified, false));
        match kind {
            EventKind::Data {
                bytes,
                ts_ns,
                packet,
            } => {
                conn.on_data(side, bytes, ts_ns, packet, &mut self.shared, out);
            }
            EventKind::Gap { bytes } => conn.on_gap(side, bytes, &mut self.shared, out),
            EventKind::Fin => {}
            EventKind::Reset => conn.state = ConnectionState::Reset,
            EventKind::Opened { .. } | EventKind::Closed => {}
        }
    }

    fn close(&mut self, index: u32, out: &mut Vec<Exchange>) {
        let Some(mut conn) = self.conns.remove(&index) else {
            return;
        };
        conn.flush(&mut self.shared, out);
        if conn.state == ConnectionState::Open {
            conn.state = ConnectionState::Closed;
        }
        if self.closed.len() < MAX_SUMMARIES {
            self.closed.push(conn.summary());
        } else {
            self.omitted += 1;
        }
    }
}

/// Whether a side sends requests or responses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Client,
    Broker,
}

fn index(side: Side) -> usize {
    match side {
        Side::Initiator => 0,
        Side::Responder => 1,
    }
}

/// One packet's bytes in a stream: they end at stream offset `end`.
#[derive(Clone, Copy, Debug)]
struct Chunk {
    end: u64,
    ts_ns: i64,
    packet: u64,
}

#[derive(Debug)]
enum Mode {
    /// `buf` starts at a frame boundary.
    Synced,
    /// Looking for a frame boundary; `buf` starts at the first position not
    /// rejected yet.
    Hunting,
    /// Dropping the rest of a frame that is lost or too large to hold.
    Skipping(Box<Partial>),
    /// Encrypted or not Kafka: bytes are counted, not kept.
    Ignore,
}

/// A frame kwire could not hold whole: its first bytes and where it was.
#[derive(Debug)]
struct Partial {
    prefix: BytesMut,
    /// The most bytes `prefix` may hold.
    keep: usize,
    /// Bytes of the frame still to come (skipped as they arrive).
    remaining: u64,
    /// Bytes of the frame not kept (lost or skipped).
    missing: u64,
    /// A gap fell in the frame (otherwise it was only too large); bytes
    /// after it are not added to `prefix`.
    lost: bool,
    ts_ns: i64,
    packets: PacketList,
}

/// The bytes of a direction not cut into frames yet. Bytes that arrive
/// while nothing is held are kept as a view of their packet, so a frame that
/// lies within one segment is cut from the capture's own buffer without a
/// copy; only bytes that must join others (a frame spanning segments) are
/// copied, into `joined`.
#[derive(Debug, Default)]
struct StreamBuf {
    /// A view of one packet's bytes; empty while `joined` is in use.
    view: Bytes,
    /// Bytes gathered from several packets; empty while `view` is in use.
    joined: BytesMut,
}

impl std::ops::Deref for StreamBuf {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        if self.view.is_empty() {
            &self.joined
        } else {
            &self.view
        }
    }
}

impl StreamBuf {
    fn push(&mut self, data: Bytes) {
        if data.is_empty() {
            return;
        }
        if self.is_empty() {
            self.view = data;
            return;
        }
        self.join(data.len());
        self.joined.extend_from_slice(&data);
    }

    /// Moves the view into `joined` with room for `more` bytes after it.
    fn join(&mut self, more: usize) {
        let view = std::mem::take(&mut self.view);
        self.joined.reserve(view.len() + more);
        self.joined.extend_from_slice(&view);
    }

    /// Makes room for the `more` bytes a frame still needs, so that joining
    /// a large frame copies each byte once instead of regrowing.
    fn expect(&mut self, more: usize) {
        let more = more.min(MAX_RESERVE);
        if self.view.is_empty() {
            self.joined.reserve(more);
        } else {
            self.join(more);
        }
    }

    /// Takes the first `count` bytes (at most all of them).
    fn take(&mut self, count: usize) -> Bytes {
        let count = count.min(self.len());
        if self.view.is_empty() {
            self.joined.split_to(count).freeze()
        } else {
            self.view.split_to(count)
        }
    }
}

/// One direction of a connection.
#[derive(Debug)]
struct Stream {
    buf: StreamBuf,
    /// Stream offset of `buf[0]`.
    base: u64,
    chunks: VecDeque<Chunk>,
    mode: Mode,
    /// Offset 0 of `buf` is a frame boundary known without searching: the
    /// stream's first byte, or the end of a lost frame skipped by its
    /// length.
    from_start: bool,
    /// While searching for a boundary: positions of `buf` before this were
    /// judged, and rejected unless listed in `pending`.
    scanned: usize,
    /// Candidate boundaries that need more bytes to be judged.
    pending: Vec<usize>,
    /// A gap happened since the last response was paired (broker side).
    gap_since_match: bool,
    /// After skipping to the end of a lost frame, the next frame must look
    /// like one before it is trusted.
    verify_next: bool,
    /// At the stream's start, no request was found: not the client side.
    not_client: bool,
    /// Inference at the stream's start was tried and failed.
    infer_failed: bool,
    /// A lost frame skipped by its length before the connection was
    /// recognised: how it reads depends on which side is the client, so it
    /// waits for that (the latest one, should several be lost).
    lost_early: Option<Partial>,
    bytes: u64,
}

impl Stream {
    fn new(from_start: bool) -> Stream {
        Stream {
            buf: StreamBuf::default(),
            base: 0,
            chunks: VecDeque::new(),
            mode: Mode::Hunting,
            from_start,
            scanned: 0,
            pending: Vec::new(),
            gap_since_match: false,
            verify_next: false,
            not_client: false,
            infer_failed: false,
            lost_early: None,
            bytes: 0,
        }
    }

    fn end(&self) -> u64 {
        self.base + self.buf.len() as u64
    }

    fn append(&mut self, data: Bytes, ts_ns: i64, packet: u64, buffered: &mut usize) {
        *buffered += data.len();
        self.buf.push(data);
        let end = self.end();
        match self.chunks.back_mut() {
            Some(last) if last.packet == packet => last.end = end,
            _ => self.chunks.push_back(Chunk { end, ts_ns, packet }),
        }
    }

    /// The bytes still missing from a frame being joined from several
    /// segments, when its length is known.
    fn joining(&self, max_frame: usize) -> Option<usize> {
        if !matches!(self.mode, Mode::Synced) || self.buf.joined.is_empty() {
            return None;
        }
        match frame::next_frame(&self.buf, max_frame) {
            Deframe::NeedMore(more) if self.buf.len() >= LENGTH_PREFIX => Some(more),
            _ => None,
        }
    }

    /// Drops `count` bytes from the front of `buf`.
    fn discard(&mut self, count: usize, buffered: &mut usize) {
        let count = count.min(self.buf.len());
        let _ = self.buf.take(count);
        *buffered -= count;
        self.base += count as u64;
        self.scanned = self.scanned.saturating_sub(count);
        self.pending.retain(|position| *position >= count);
        self.pending
            .iter_mut()
            .for_each(|position| *position -= count);
        self.forget_chunks();
    }

    fn clear(&mut self, buffered: &mut usize) {
        self.discard(self.buf.len(), buffered);
        self.chunks.clear();
    }

    /// Chunks wholly before `base` are no longer needed.
    fn forget_chunks(&mut self) {
        while self
            .chunks
            .front()
            .is_some_and(|chunk| chunk.end <= self.base)
        {
            self.chunks.pop_front();
        }
    }

    /// Time of the first byte of `buf` and the packets that carried the
    /// first `len` bytes.
    fn origin(&self, len: usize) -> (i64, PacketList) {
        let end = self.base + len as u64;
        let mut ts_ns = 0;
        let mut packets = PacketList::new();
        for chunk in &self.chunks {
            if chunk.end <= self.base {
                continue;
            }
            if packets.is_empty() {
                ts_ns = chunk.ts_ns;
            }
            if packets.len() < MAX_PACKETS_PER_MESSAGE {
                packets.push(chunk.packet);
            }
            if chunk.end >= end {
                break;
            }
        }
        (ts_ns, packets)
    }

    /// Takes the first `len` bytes of `buf` as a frame.
    fn cut(&mut self, len: usize, buffered: &mut usize) -> Cut {
        let (ts_ns, packets) = self.origin(len);
        let bytes = self.buf.take(len);
        *buffered -= len;
        self.base += len as u64;
        self.forget_chunks();
        Cut {
            bytes,
            ts_ns,
            packets,
        }
    }

    /// Starts skipping the frame at the front of `buf`, `total` bytes long,
    /// keeping at most `keep` of its bytes.
    fn start_skip(
        &mut self,
        total: u64,
        lost: bool,
        keep: usize,
        buffered: &mut usize,
    ) -> Option<Partial> {
        let have = self.buf.len();
        let (ts_ns, packets) = self.origin(have);
        let taken = self.buf.take(have);
        *buffered -= have;
        self.base += have as u64;
        self.forget_chunks();
        let prefix = BytesMut::from(taken.get(..keep).unwrap_or(&taken[..]));
        let remaining = total.saturating_sub(have as u64);
        let partial = Partial {
            keep,
            missing: total.saturating_sub(prefix.len() as u64),
            prefix,
            remaining,
            lost,
            ts_ns,
            packets,
        };
        if remaining == 0 {
            return Some(partial);
        }
        self.mode = Mode::Skipping(Box::new(partial));
        None
    }
}

/// A frame cut from a stream, with where it came from.
struct Cut {
    bytes: Bytes,
    ts_ns: i64,
    packets: PacketList,
}

/// The raw-token phase after a SaslHandshake v0.
#[derive(Debug)]
struct RawSasl {
    version: i16,
    /// Client tokens waiting for the server's answer.
    pending: VecDeque<Exchange>,
}

/// What the search for a first request found.
enum Found {
    At(usize),
    Tls,
    Nothing,
}

/// What a candidate frame start looks like.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    Accept,
    Reject,
    /// More bytes are needed to tell.
    Wait,
}

/// How strict a request-header check is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Strictness {
    /// At a known frame boundary: unknown API keys and newer versions pass.
    Boundary,
    /// Searching arbitrary positions: the API must be known and the frame
    /// must decode.
    Search,
}

struct Conn {
    index: u32,
    initiator: SocketAddr,
    responder: SocketAddr,
    /// The capture holds the connection's SYN: the initiator is the Kafka
    /// client (brokers never connect to clients; a broker fetching from
    /// another is a client of it).
    saw_syn: bool,
    /// The capture or the connection ended: identify on what there is.
    closing: bool,
    kind: ConnectionKind,
    state: ConnectionState,
    /// Which side is the Kafka client, once known.
    client_side: Option<Side>,
    streams: [Stream; 2],
    outstanding: VecDeque<Exchange>,
    raw_sasl: Option<RawSasl>,
    /// The SaslHandshake version that started raw tokens, once it did.
    raw_sasl_version: Option<i16>,
    mechanism: Option<String>,
    /// Versions the broker announced in ApiVersions: (key, min, max).
    learnt: Vec<(i16, i16, i16)>,
    /// (API key, version) pairs seen on the connection, latest first.
    seen: Vec<(i16, i16)>,
    last_request_correlation: Option<i32>,
    client_ids: Vec<String>,
    exchanges: u64,
    gap_bytes: u64,
    frames_lost: u64,
    /// Bytes skipped before Kafka was recognised (mid-stream start).
    skipped_before_sync: u64,
    /// Frames hit by gaps before Kafka was recognised.
    lost_before_sync: u64,
    /// Bytes looked at while undecided.
    scanned: u64,
    /// Inference attempts left while searching, renewed at each boundary
    /// found (a `Cell`: judging candidates only reads the connection).
    inference_budget: Cell<u32>,
}

impl Conn {
    fn new(index: u32, initiator: SocketAddr, responder: SocketAddr, saw_syn: bool) -> Conn {
        Conn {
            index,
            initiator,
            responder,
            saw_syn,
            closing: false,
            kind: ConnectionKind::Unknown,
            state: ConnectionState::Open,
            client_side: None,
            streams: [Stream::new(saw_syn), Stream::new(saw_syn)],
            outstanding: VecDeque::new(),
            raw_sasl: None,
            raw_sasl_version: None,
            mechanism: None,
            learnt: Vec::new(),
            seen: Vec::new(),
            last_request_correlation: None,
            client_ids: Vec::new(),
            exchanges: 0,
            gap_bytes: 0,
            frames_lost: 0,
            skipped_before_sync: 0,
            lost_before_sync: 0,
            scanned: 0,
            inference_budget: Cell::new(INFERENCE_BUDGET),
        }
    }

    fn address(&self, side: Side) -> SocketAddr {
        match side {
            Side::Initiator => self.initiator,
            Side::Responder => self.responder,
        }
    }

    fn client_side(&self) -> Side {
        self.client_side.unwrap_or(Side::Initiator)
    }

    fn role(&self, side: Side) -> Role {
        if side == self.client_side() {
            Role::Client
        } else {
            Role::Broker
        }
    }

    fn client(&self) -> SocketAddr {
        self.address(self.client_side())
    }

    fn broker(&self) -> SocketAddr {
        self.address(self.client_side().other())
    }

    /// Whether `port_of`'s side is a broker by what is known apart from
    /// this connection's content: its port is hinted, or its address is the
    /// broker of a connection whose SYN was seen.
    fn hinted(&self, shared: &Shared, port_of: Side) -> bool {
        let address = self.address(port_of);
        shared.options.port_hints.contains(&address.port()) || shared.brokers.contains(&address)
    }

    fn summary(&self) -> ConnectionSummary {
        let client = self.client_side();
        ConnectionSummary {
            index: self.index,
            client: self.client(),
            broker: self.broker(),
            state: self.state,
            kind: self.kind,
            exchanges: self.exchanges,
            bytes_to_broker: self.streams[index(client)].bytes,
            bytes_to_client: self.streams[index(client.other())].bytes,
            client_ids: self.client_ids.clone(),
            gap_bytes: self.gap_bytes,
            frames_lost: self.frames_lost,
        }
    }

    fn on_data(
        &mut self,
        side: Side,
        bytes: Bytes,
        ts_ns: i64,
        packet: u64,
        shared: &mut Shared,
        out: &mut Vec<Exchange>,
    ) {
        self.streams[index(side)].bytes += bytes.len() as u64;
        let mut data = bytes;
        while !data.is_empty() {
            data = self.take_data(side, data, ts_ns, packet, shared, out);
        }
    }

    /// Takes what the stream's state wants of `data` now, and returns the
    /// rest: the bytes after a skipped frame's end, or after the end of a
    /// frame being joined (so that the frames after it in the segment are
    /// cut from the segment itself, not copied).
    fn take_data(
        &mut self,
        side: Side,
        mut data: Bytes,
        ts_ns: i64,
        packet: u64,
        shared: &mut Shared,
        out: &mut Vec<Exchange>,
    ) -> Bytes {
        let kafka = self.kind == ConnectionKind::Kafka;
        let max_frame = shared.options.max_frame;
        let stream = &mut self.streams[index(side)];
        match &mut stream.mode {
            Mode::Ignore => return Bytes::new(),
            Mode::Skipping(partial) => {
                let take = usize::try_from(partial.remaining)
                    .unwrap_or(usize::MAX)
                    .min(data.len());
                let skipped = data.split_to(take);
                if !partial.lost {
                    let room = partial.keep.saturating_sub(partial.prefix.len()).min(take);
                    partial.prefix.extend_from_slice(&skipped[..room]);
                    partial.missing -= room as u64;
                }
                partial.remaining -= take as u64;
                if partial.packets.len() < MAX_PACKETS_PER_MESSAGE {
                    partial.packets.push(packet);
                }
                stream.base += take as u64;
                if partial.remaining == 0 {
                    let was_lost = partial.lost;
                    let Mode::Skipping(partial) = std::mem::replace(&mut stream.mode, Mode::Synced)
                    else {
                        unreachable!("matched above")
                    };
                    stream.verify_next = was_lost;
                    stream.from_start = true;
                    self.finish_partial(side, *partial, shared, out);
                }
                return data;
            }
            Mode::Synced | Mode::Hunting => {}
        }
        let head = match stream.joining(max_frame) {
            Some(need) if kafka && need < data.len() => data.split_to(need),
            _ => std::mem::take(&mut data),
        };
        stream.append(head, ts_ns, packet, &mut shared.buffered);
        if kafka {
            self.pump(side, shared, out);
            self.release_unanswered(ts_ns, out);
        } else {
            self.identify(shared, out);
        }
        data
    }

    fn on_gap(&mut self, side: Side, bytes: u64, shared: &mut Shared, out: &mut Vec<Exchange>) {
        self.gap_bytes += bytes;
        shared.losses.gap_bytes += bytes;
        let kafka = self.kind == ConnectionKind::Kafka;
        let role = self.role(side);
        let max_frame = shared.options.max_frame;
        let stream = &self.streams[index(side)];
        // When the buffer starts at a frame boundary, the gap falls in the
        // frame there. A Kafka connection's streams are cut at boundaries;
        // before the connection is recognised (which takes a whole request
        // header), `from_start` tells, so that a gap in the first request's
        // header costs that frame only, as it would later.
        let at_boundary = match stream.mode {
            Mode::Synced if kafka => true,
            Mode::Synced | Mode::Hunting => !kafka && stream.from_start,
            Mode::Skipping(_) | Mode::Ignore => false,
        };
        if at_boundary {
            self.count_lost(shared);
        }
        let stream = &mut self.streams[index(side)];
        stream.from_start = false;
        stream.gap_since_match = true;
        let mode = std::mem::replace(&mut stream.mode, Mode::Hunting);
        match mode {
            Mode::Ignore => {
                stream.mode = Mode::Ignore;
                stream.base += bytes;
            }
            Mode::Synced | Mode::Hunting => {
                let total = match frame::next_frame(&stream.buf, max_frame) {
                    Deframe::NeedMore(more) if at_boundary && stream.buf.len() >= LENGTH_PREFIX => {
                        Some((stream.buf.len() + more) as u64)
                    }
                    _ => None,
                };
                if let Some(total) = total {
                    // The lost frame's length is known: skip to its end.
                    let done = stream.start_skip(total, true, shared.keep(), &mut shared.buffered);
                    debug_assert!(done.is_none(), "an incomplete frame has bytes to come");
                    return self.skip_gap(side, bytes, shared, out);
                }
                // What was held cannot be joined to what follows: hunt.
                let held = stream.buf.len();
                stream.clear(&mut shared.buffered);
                stream.scanned = 0;
                stream.base += bytes;
                if !kafka {
                    // Counted if the connection turns out to be Kafka.
                    self.skipped_before_sync += held as u64;
                    return;
                }
                shared.losses.resync_bytes += held as u64;
                // A gap in a response whose correlation id was not read: it
                // answered the oldest outstanding request. A gap between
                // responses may have taken whole ones, or none whose request
                // is known (a capture filtered by exchange, say): the next
                // response paired tells which went missing.
                if at_boundary && role == Role::Broker && (1..8).contains(&held) {
                    self.lose_next_response(out);
                }
            }
            Mode::Skipping(mut partial) => {
                if !partial.lost {
                    partial.lost = true;
                    self.frames_lost += 1;
                    shared.losses.frames_lost += 1;
                }
                stream.mode = Mode::Skipping(partial);
                self.skip_gap(side, bytes, shared, out);
            }
        }
    }

    /// Counts a frame a gap fell in; before the connection is recognised,
    /// only once it is (as Kafka).
    fn count_lost(&mut self, shared: &mut Shared) {
        if self.kind == ConnectionKind::Kafka {
            self.frames_lost += 1;
            shared.losses.frames_lost += 1;
        } else {
            self.lost_before_sync += 1;
        }
    }

    /// A gap of `bytes` while skipping a frame: inside it, the skip goes on;
    /// past its end, the frame is finished and the stream hunts.
    fn skip_gap(&mut self, side: Side, bytes: u64, shared: &mut Shared, out: &mut Vec<Exchange>) {
        let stream = &mut self.streams[index(side)];
        let Mode::Skipping(partial) = &mut stream.mode else {
            return;
        };
        if bytes < partial.remaining {
            partial.remaining -= bytes;
            stream.base += bytes;
            return;
        }
        let beyond = bytes - partial.remaining;
        stream.base += bytes;
        let Mode::Skipping(partial) = std::mem::replace(&mut stream.mode, Mode::Hunting) else {
            unreachable!("matched above")
        };
        if beyond == 0 {
            // The gap ends where the frame does: the next frame starts here.
            stream.mode = Mode::Synced;
            stream.verify_next = true;
            stream.from_start = true;
        } else {
            // The gap runs into the next frame: that one is lost too (and
            // any wholly inside the gap, which cannot be counted).
            self.count_lost(shared);
        }
        self.finish_partial(side, *partial, shared, out);
    }

    /// Identifies an undecided connection from what both sides sent so far.
    fn identify(&mut self, shared: &mut Shared, out: &mut Vec<Exchange>) {
        if self.kind != ConnectionKind::Unknown
            || self
                .streams
                .iter()
                .any(|stream| matches!(stream.mode, Mode::Ignore))
        {
            return;
        }
        for side in [Side::Initiator, Side::Responder] {
            let stream = &self.streams[index(side)];
            if stream.from_start {
                if let Some(client) = tls_hello(&stream.buf, side) {
                    return self.become_tls(client, shared);
                }
            }
        }
        let mut request_at: [Option<usize>; 2] = [None, None];
        for side in [Side::Initiator, Side::Responder] {
            // A side sending from a hinted port (and not to one) is a
            // broker: only responses are looked for there.
            let hinted_broker = self.hinted(shared, side) && !self.hinted(shared, side.other());
            if hinted_broker || (self.saw_syn && side == Side::Responder) {
                if hinted_broker {
                    if let Some(at) = self.find_response(side, shared) {
                        return self.become_kafka(side.other(), None, Some(at), shared, out);
                    }
                }
                continue;
            }
            match self.find_request(side, shared) {
                Found::At(at) => request_at[index(side)] = Some(at),
                // Mid-stream TLS: which side is which cannot be told.
                Found::Tls => return self.become_tls(Side::Initiator, shared),
                Found::Nothing => {}
            }
        }
        // Without a SYN, a request found on one side only is weak evidence:
        // an old-version response (Produce, Fetch v0, ListOffsets v0) with a
        // small correlation id reads as a Produce request, and a broker may
        // be all that speaks after the capture's start. The next whole frame
        // on that side must be a request too; while it is not there, the
        // other side may still speak, or another connection show which
        // address is the broker. A candidate whose next frame is no request
        // is dropped, and the search goes on after it.
        if !self.saw_syn && !self.closing {
            for side in [Side::Initiator, Side::Responder] {
                let lone = request_at[index(side.other())].is_none();
                if !lone
                    || self.streams[index(side)].from_start
                    || self.hinted(shared, side.other())
                {
                    continue;
                }
                while let Some(at) = request_at[index(side)] {
                    match self.next_request(side, at, shared) {
                        Verdict::Accept => break,
                        Verdict::Wait => {
                            // Judged again next time.
                            self.streams[index(side)].scanned = at;
                            return self.maybe_give_up(shared);
                        }
                        Verdict::Reject => {
                            request_at[index(side)] = match self.find_request(side, shared) {
                                Found::At(at) => Some(at),
                                Found::Tls | Found::Nothing => None,
                            };
                        }
                    }
                }
            }
        }
        // The connection ended with one side only speaking, and what it
        // said not confirmed as requests: a broker answering requests sent
        // before the capture's start may have been all there was. A
        // candidate that leaves bytes over as a request and decodes whole
        // as a response (of some API: without its request the API may be
        // uncertain) is read as that response.
        if !self.saw_syn && self.closing {
            for side in [Side::Initiator, Side::Responder] {
                let Some(at) = request_at[index(side)] else {
                    continue;
                };
                if self.streams[index(side.other())].bytes > 0
                    || self.streams[index(side)].from_start
                    || self.next_request(side, at, shared) == Verdict::Accept
                {
                    continue;
                }
                let response = self
                    .whole_frame(side, at, shared)
                    .filter(|frame| leaves_bytes_over(frame.clone(), shared))
                    .is_some_and(|frame| some_response_fits(&frame, shared));
                if response {
                    return self.become_kafka(side.other(), None, Some(at), shared, out);
                }
            }
        }
        let client = match request_at {
            [Some(initiator), Some(responder)] => {
                Some(self.tie_break([initiator, responder], shared))
            }
            [Some(_), None] => Some(Side::Initiator),
            [None, Some(_)] => Some(Side::Responder),
            [None, None] => None,
        };
        if let Some(client) = client {
            let at = request_at[index(client)];
            return self.become_kafka(client, at, None, shared, out);
        }
        for side in [Side::Initiator, Side::Responder] {
            if let Some(at) = self.find_response(side, shared) {
                return self.become_kafka(side.other(), None, Some(at), shared, out);
            }
        }
        self.maybe_give_up(shared);
    }

    /// Judges the frame after the request candidate at `at` on `side`: a
    /// client's next frame is a request too, with a correlation id no
    /// smaller.
    fn next_request(&self, side: Side, at: usize, shared: &Shared) -> Verdict {
        let max_frame = shared.options.max_frame;
        let rest = self.streams[index(side)].buf.get(at..).unwrap_or_default();
        let Deframe::Frame(len) = frame::next_frame(rest, max_frame) else {
            return Verdict::Wait;
        };
        let next = rest.get(len..).unwrap_or_default();
        let after = read_i32(rest, 8);
        judge_request(next, max_frame, Strictness::Search, after, &shared.probe)
    }

    /// The whole frame at `at` on `side`, once all of it is there.
    fn whole_frame(&self, side: Side, at: usize, shared: &Shared) -> Option<Bytes> {
        let rest = self.streams[index(side)].buf.get(at..)?;
        let Deframe::Frame(len) = frame::next_frame(rest, shared.options.max_frame) else {
            return None;
        };
        Some(Bytes::copy_from_slice(rest.get(..len)?))
    }

    /// Both sides hold something that looks like a request, at `at`.
    fn tie_break(&self, at: [usize; 2], shared: &Shared) -> Side {
        let [initiator, responder] = &self.streams;
        if initiator.from_start != responder.from_start {
            return if initiator.from_start {
                Side::Initiator
            } else {
                Side::Responder
            };
        }
        // Brokers answer with the requests' correlation ids: the side more
        // of whose candidate requests the other side's frames answer (taken
        // from its first byte, a segment's start and so usually a frame's)
        // is the client. Distinct ids count: an array count of 1 read as a
        // correlation id would answer many Produce v1 requests read as
        // responses.
        let max_frame = shared.options.max_frame;
        let answered = |client: Side| {
            let requests = correlations(
                &self.streams[index(client)].buf,
                at[index(client)],
                8,
                max_frame,
            );
            let mut answers =
                correlations(&self.streams[index(client.other())].buf, 0, 4, max_frame);
            answers.retain(|id| requests.contains(id));
            answers.sort_unstable();
            answers.dedup();
            answers.len()
        };
        match answered(Side::Initiator).cmp(&answered(Side::Responder)) {
            std::cmp::Ordering::Greater => return Side::Initiator,
            std::cmp::Ordering::Less => return Side::Responder,
            std::cmp::Ordering::Equal => {}
        }
        // A response read as a request usually leaves bytes over.
        let left_over = |side: Side| {
            let frame = self.whole_frame(side, at[index(side)], shared)?;
            Some(leaves_bytes_over(frame, shared))
        };
        match (left_over(Side::Initiator), left_over(Side::Responder)) {
            (Some(true), Some(false)) => return Side::Responder,
            (Some(false), Some(true)) => return Side::Initiator,
            _ => {}
        }
        // A side sending to a hinted port is the client.
        if self.hinted(shared, Side::Initiator) && !self.hinted(shared, Side::Responder) {
            return Side::Responder;
        }
        Side::Initiator
    }

    /// Where the first request starts on `side`, if one was found.
    fn find_request(&mut self, side: Side, shared: &mut Shared) -> Found {
        let max_frame = shared.options.max_frame;
        let stream = &mut self.streams[index(side)];
        if stream.from_start {
            if stream.not_client {
                return Found::Nothing;
            }
            // The TCP responder is the Kafka client only on stronger
            // evidence: its first frame must decode as a request.
            let strictness = match side {
                Side::Initiator => Strictness::Boundary,
                Side::Responder => Strictness::Search,
            };
            return match judge_request(&stream.buf, max_frame, strictness, None, &shared.probe) {
                Verdict::Accept => Found::At(0),
                Verdict::Reject => {
                    stream.not_client = true;
                    Found::Nothing
                }
                Verdict::Wait => Found::Nothing,
            };
        }
        let probe = &shared.probe;
        let judge = |rest: &[u8]| match tls_records(rest) {
            Verdict::Reject => judge_request(rest, max_frame, Strictness::Search, None, probe),
            // A TLS record chain is reported as such.
            Verdict::Accept => Verdict::Accept,
            Verdict::Wait => Verdict::Wait,
        };
        let before = stream.scanned;
        let found = search(stream, |rest| judge(rest));
        self.scanned += stream.scanned.saturating_sub(before) as u64;
        match found {
            Some(position) if tls_records(&stream.buf[position..]) == Verdict::Accept => Found::Tls,
            Some(position) => Found::At(position),
            None => Found::Nothing,
        }
    }

    /// Where the first response starts on `side`, when its API can be
    /// inferred: at the stream's start (one of its first frames, cut by
    /// length, must be inferred), or (from a hinted broker port) anywhere.
    fn find_response(&mut self, side: Side, shared: &mut Shared) -> Option<usize> {
        let i = index(side);
        let stream = &self.streams[i];
        if stream.buf.is_empty() || stream.infer_failed {
            return None;
        }
        if !stream.from_start {
            if !self.hinted(shared, side) {
                return None;
            }
            // The judge needs the connection; work on a detached stream.
            let mut stream = std::mem::replace(&mut self.streams[i], Stream::new(false));
            let found =
                search(&mut stream, |rest| self.judge_response(rest, side, shared)).map(|at| {
                    chain_back(&stream.buf, at, |rest| {
                        response_header_plausible(rest, None)
                    })
                });
            self.streams[i] = stream;
            return found;
        }
        // From the start, frames follow each other by length: `scanned` is
        // the next one to try.
        let max_frame = shared.options.max_frame.min(INFER_MAX_FRAME);
        let mut position = self.streams[i].scanned;
        while position < self.streams[i].buf.len() {
            let rest = &self.streams[i].buf[position..];
            let step = match frame::next_frame(rest, max_frame) {
                Deframe::NeedMore(_) => return None,
                Deframe::Frame(len) if len >= 8 => {
                    let frame = Bytes::copy_from_slice(&rest[..len]);
                    self.inference_budget
                        .set(self.inference_budget.get().saturating_sub(1));
                    if self.infer(&frame, shared).is_some() {
                        return Some(0);
                    }
                    len
                }
                Deframe::Frame(len) => len,
                Deframe::Malformed(_) => {
                    self.streams[i].infer_failed = true;
                    return None;
                }
            };
            position += step;
            self.streams[i].scanned = position;
            if self.inference_budget.get() + 8 <= INFERENCE_BUDGET {
                // Eight frames from the start and none is a response.
                self.streams[i].infer_failed = true;
                return None;
            }
        }
        None
    }

    fn maybe_give_up(&mut self, shared: &mut Shared) {
        let hinted = self.hinted(shared, Side::Initiator) || self.hinted(shared, Side::Responder);
        let [initiator, responder] = &self.streams;
        // A Kafka client speaks first; an initiator that did not send a
        // request from its first byte is not one, and a responder whose
        // first frame is no response either is not a broker.
        let not_kafka = initiator.from_start
            && initiator.not_client
            && (responder.buf.is_empty() || responder.infer_failed);
        let scanned_out = self.scanned > GIVE_UP_SCAN && !hinted;
        if not_kafka || scanned_out {
            for stream in &mut self.streams {
                stream.clear(&mut shared.buffered);
                stream.mode = Mode::Ignore;
            }
            return;
        }
        // Bound what an undecided connection holds.
        for stream in &mut self.streams {
            if stream.buf.len() > UNDECIDED_HOLD {
                let drop = stream.buf.len() - UNDECIDED_HOLD;
                stream.discard(drop, &mut shared.buffered);
                stream.from_start = false;
                self.skipped_before_sync += drop as u64;
            }
        }
    }

    fn become_tls(&mut self, client: Side, shared: &mut Shared) {
        self.kind = ConnectionKind::Tls;
        self.client_side = Some(client);
        for stream in &mut self.streams {
            stream.clear(&mut shared.buffered);
            stream.mode = Mode::Ignore;
        }
    }

    /// Kafka, with `client` sending requests: its first frame starts at
    /// `request_at` in its buffer, the broker's at `response_at` in its; an
    /// unknown start is the stream's start, or is hunted for.
    fn become_kafka(
        &mut self,
        client: Side,
        request_at: Option<usize>,
        response_at: Option<usize>,
        shared: &mut Shared,
        out: &mut Vec<Exchange>,
    ) {
        self.kind = ConnectionKind::Kafka;
        self.client_side = Some(client);
        if self.saw_syn && shared.brokers.len() < MAX_LEARNT_BROKERS {
            shared.brokers.insert(self.broker());
        }
        shared.losses.resync_bytes += self.skipped_before_sync;
        shared.losses.frames_lost += self.lost_before_sync;
        self.frames_lost += self.lost_before_sync;
        self.inference_budget.set(INFERENCE_BUDGET);
        let max_frame = shared.options.max_frame;
        let request_at = request_at.map(|at| {
            // Earlier requests may lead to this one by their lengths.
            chain_back(&self.streams[index(client)].buf, at, |rest| {
                judge_request(rest, max_frame, Strictness::Boundary, None, &shared.probe)
                    == Verdict::Accept
            })
        });
        for (side, at) in [(client, request_at), (client.other(), response_at)] {
            let stream = &mut self.streams[index(side)];
            stream.scanned = 0;
            stream.pending.clear();
            stream.mode = match (at, std::mem::replace(&mut stream.mode, Mode::Hunting)) {
                (Some(at), _) => {
                    shared.losses.resync_bytes += at as u64;
                    stream.discard(at, &mut shared.buffered);
                    Mode::Synced
                }
                // A frame lost before is still being skipped.
                (None, skipping @ Mode::Skipping(_)) => skipping,
                (None, _) if stream.from_start => Mode::Synced,
                (None, _) => Mode::Hunting,
            };
        }
        for side in [client, client.other()] {
            // A frame lost before the roles were known comes before the
            // frames after it.
            if let Some(partial) = self.streams[index(side)].lost_early.take() {
                self.finish_partial(side, partial, shared, out);
            }
            self.pump(side, shared, out);
        }
    }

    /// Cuts and handles every frame `side` holds.
    fn pump(&mut self, side: Side, shared: &mut Shared, out: &mut Vec<Exchange>) {
        let role = self.role(side);
        let max_frame = shared.options.max_frame;
        let i = index(side);
        loop {
            if self.streams[i].buf.is_empty() {
                return;
            }
            match self.streams[i].mode {
                Mode::Ignore | Mode::Skipping(_) => return,
                Mode::Hunting => {
                    let Some(at) = self.hunt(side, shared) else {
                        return;
                    };
                    let stream = &mut self.streams[i];
                    shared.losses.resync_bytes += at as u64;
                    stream.discard(at, &mut shared.buffered);
                    stream.mode = Mode::Synced;
                    stream.verify_next = false;
                    self.inference_budget.set(INFERENCE_BUDGET);
                    continue;
                }
                Mode::Synced => {}
            }
            let raw_sasl = self.raw_sasl.is_some();
            let stream = &mut self.streams[i];
            if stream.verify_next && role == Role::Client && !raw_sasl {
                let strictness = Strictness::Boundary;
                match judge_request(&stream.buf, max_frame, strictness, None, &shared.probe) {
                    Verdict::Wait => return,
                    Verdict::Reject => {
                        stream.mode = Mode::Hunting;
                        continue;
                    }
                    Verdict::Accept => {}
                }
            }
            stream.verify_next = false;
            match frame::next_frame(&stream.buf, max_frame) {
                Deframe::Frame(len) => {
                    let cut = stream.cut(len, &mut shared.buffered);
                    self.on_frame(side, cut, shared, out);
                }
                Deframe::NeedMore(_) if stream.buf.len() < LENGTH_PREFIX => return,
                Deframe::NeedMore(more) => {
                    // Holding `more` bytes must keep within the total bound;
                    // otherwise the frame is skipped.
                    if shared.buffered + more <= shared.options.max_buffered {
                        stream.buf.expect(more);
                        return;
                    }
                    let total = (stream.buf.len() + more) as u64;
                    self.skip_frame(side, total, shared, out);
                    return;
                }
                Deframe::Malformed(claimed) => {
                    let plausible = claimed > 0
                        && match role {
                            Role::Client => header_plausible(&stream.buf[LENGTH_PREFIX..]),
                            Role::Broker => self.outstanding_for(&self.streams[i].buf).is_some(),
                        };
                    if !plausible {
                        self.streams[i].mode = Mode::Hunting;
                        continue;
                    }
                    // A frame over `max_frame` with a believable header:
                    // skip it, keeping its header.
                    let total = u64::try_from(claimed).unwrap_or(0) + LENGTH_PREFIX as u64;
                    self.skip_frame(side, total, shared, out);
                    return;
                }
            }
        }
    }

    /// Skips a frame too large to hold, decoding only its first bytes.
    fn skip_frame(&mut self, side: Side, total: u64, shared: &mut Shared, out: &mut Vec<Exchange>) {
        shared.losses.frames_too_large += 1;
        let stream = &mut self.streams[index(side)];
        if let Some(partial) = stream.start_skip(total, false, shared.keep(), &mut shared.buffered)
        {
            self.finish_partial(side, partial, shared, out);
        }
    }

    /// The outstanding request a response frame (prefix) answers.
    fn outstanding_for(&self, frame: &[u8]) -> Option<(i16, i16)> {
        let correlation = read_i32(frame, LENGTH_PREFIX)?;
        self.outstanding
            .iter()
            .find(|exchange| exchange.correlation_id == correlation)
            .map(|exchange| (exchange.api_key, exchange.api_version))
    }

    /// Looks for the next frame boundary on a Kafka connection's side, then
    /// traces it back through earlier frames that lead to it by length.
    /// Bytes that cannot start a frame are dropped (past a window kept for
    /// the tracing) and counted; the caller drops and counts those before
    /// the boundary returned.
    fn hunt(&mut self, side: Side, shared: &mut Shared) -> Option<usize> {
        let role = self.role(side);
        let max_frame = shared.options.max_frame;
        let i = index(side);
        let last = self.last_request_correlation;
        let found = match role {
            Role::Client => search(&mut self.streams[i], |rest| {
                judge_request(rest, max_frame, Strictness::Search, last, &shared.probe)
            }),
            Role::Broker => {
                // The judge needs the connection; work on a detached stream.
                let mut stream = std::mem::replace(&mut self.streams[i], Stream::new(false));
                let found = search(&mut stream, |rest| self.judge_response(rest, side, shared));
                self.streams[i] = stream;
                found
            }
        };
        let stream = &mut self.streams[i];
        if let Some(at) = found {
            let at = chain_back(&stream.buf, at, |rest| match role {
                Role::Client => {
                    judge_request(rest, max_frame, Strictness::Boundary, None, &shared.probe)
                        == Verdict::Accept
                }
                Role::Broker => response_header_plausible(rest, last),
            });
            stream.scanned = 0;
            stream.pending.clear();
            return Some(at);
        }
        let floor = stream.scanned.saturating_sub(HUNT_WINDOW);
        let drop = stream
            .pending
            .first()
            .map_or(floor, |first| floor.min(*first));
        shared.losses.resync_bytes += drop as u64;
        stream.discard(drop, &mut shared.buffered);
        None
    }

    /// Judges a response start: it answers an outstanding request and
    /// decodes as its response, or its API can be inferred.
    fn judge_response(&self, rest: &[u8], side: Side, shared: &Shared) -> Verdict {
        let max_frame = shared.options.max_frame;
        let Some(size) = read_i32(rest, 0) else {
            return Verdict::Wait;
        };
        let total = match usize::try_from(size) {
            Ok(size) if (4..=max_frame).contains(&size) => size + LENGTH_PREFIX,
            _ => return Verdict::Reject,
        };
        let Some(correlation) = read_i32(rest, LENGTH_PREFIX) else {
            return Verdict::Wait;
        };
        if let Some((key, version)) = self.outstanding_for(rest) {
            return judge_decode(rest, total, NewerVersion::HeaderSuffices, |frame| {
                frame::decode_response(frame, key, version, &shared.probe)
            });
        }
        // A response to a request the capture lost: only when the API can be
        // inferred, and only for a correlation id near the client's.
        let near = match self.last_request_correlation {
            Some(last) => correlation <= last && correlation >= last.saturating_sub(1024).max(0),
            None => correlation >= 0 && self.hinted(shared, side),
        };
        if !near || self.inference_budget.get() == 0 || total > INFER_MAX_FRAME {
            return Verdict::Reject;
        }
        if rest.len() < total {
            return if total <= INFER_WAIT_FRAME {
                Verdict::Wait
            } else {
                Verdict::Reject
            };
        }
        // The frame must end where the bytes do, or where another response
        // plausibly starts: a small body fits too many places otherwise.
        let next = &rest[total..];
        if !next.is_empty() {
            if next.len() < 8 {
                return Verdict::Wait;
            }
            let next_size = read_i32(next, 0).and_then(|size| usize::try_from(size).ok());
            let next_ok = next_size.is_some_and(|size| (4..=max_frame).contains(&size))
                && (self.outstanding_for(next).is_some()
                    || response_header_plausible(next, self.last_request_correlation));
            if !next_ok {
                return Verdict::Reject;
            }
        }
        let frame = Bytes::copy_from_slice(&rest[..total]);
        self.inference_budget.set(self.inference_budget.get() - 1);
        if self.infer(&frame, shared).is_some() {
            Verdict::Accept
        } else {
            Verdict::Reject
        }
    }

    fn on_frame(&mut self, side: Side, cut: Cut, shared: &mut Shared, out: &mut Vec<Exchange>) {
        match self.role(side) {
            Role::Client => self.on_request(cut, 0, false, shared, out),
            Role::Broker => self.on_response(cut, 0, false, shared, out),
        }
    }

    /// A frame kwire holds only the start of: decode what it can.
    fn finish_partial(
        &mut self,
        side: Side,
        partial: Partial,
        shared: &mut Shared,
        out: &mut Vec<Exchange>,
    ) {
        if self.kind != ConnectionKind::Kafka {
            // Which side is the client is not known yet.
            self.streams[index(side)].lost_early = Some(partial);
            return;
        }
        let cut = Cut {
            bytes: partial.prefix.freeze(),
            ts_ns: partial.ts_ns,
            packets: partial.packets,
        };
        match self.role(side) {
            Role::Client => {
                // Without its correlation id a request cannot be paired.
                if cut.bytes.len() >= 12 && self.raw_sasl.is_none() {
                    self.on_request(cut, partial.missing, partial.lost, shared, out);
                }
            }
            Role::Broker => {
                if cut.bytes.len() >= 8 {
                    self.on_response(cut, partial.missing, partial.lost, shared, out);
                } else if partial.lost {
                    self.lose_next_response(out);
                }
            }
        }
    }

    /// A response whose correlation id is lost: brokers answer in request
    /// order on a connection (protocol guide, "Network"), so it answered the
    /// oldest outstanding request.
    fn lose_next_response(&mut self, out: &mut Vec<Exchange>) {
        while let Some(mut exchange) = self.outstanding.pop_front() {
            if exchange.state == ExchangeState::NoResponseExpected {
                self.emit(exchange, out);
                continue;
            }
            exchange.lost = true;
            self.emit(exchange, out);
            return;
        }
    }

    /// Hands out acks=0 Produce requests that waited `ACKS0_GRACE_NS` for
    /// an answer that is not expected.
    fn release_unanswered(&mut self, now_ns: i64, out: &mut Vec<Exchange>) {
        while let Some(front) = self.outstanding.front() {
            let since = front.ts_ns();
            if front.state != ExchangeState::NoResponseExpected
                || now_ns.saturating_sub(since) < ACKS0_GRACE_NS
            {
                return;
            }
            if let Some(exchange) = self.outstanding.pop_front() {
                self.emit(exchange, out);
            }
        }
    }

    fn emit(&mut self, mut exchange: Exchange, out: &mut Vec<Exchange>) {
        settle(&mut self.exchanges, &mut exchange);
        out.push(exchange);
    }

    fn new_exchange(
        &self,
        id: u64,
        api_key: i16,
        api_version: i16,
        correlation_id: i32,
    ) -> Exchange {
        Exchange {
            id,
            connection: self.index,
            client: self.client(),
            broker: self.broker(),
            api_key,
            api_version,
            correlation_id,
            request: None,
            response: None,
            state: ExchangeState::ResponseMissing,
            inferred: false,
            packets: PacketList::new(),
            lost: false,
            sasl: None,
            summary: None,
        }
    }

    fn on_request(
        &mut self,
        cut: Cut,
        missing: u64,
        lost: bool,
        shared: &mut Shared,
        out: &mut Vec<Exchange>,
    ) {
        if self.raw_sasl.is_some() {
            let leaves = missing == 0
                && judge_request(
                    &cut.bytes,
                    shared.options.max_frame,
                    Strictness::Search,
                    self.last_request_correlation,
                    &shared.probe,
                ) == Verdict::Accept;
            if !leaves {
                return self.on_raw_token(Sender::Client, cut, shared, out);
            }
            self.end_raw_sasl(out);
        }
        let key = read_i16(&cut.bytes, LENGTH_PREFIX).unwrap_or(-1);
        let (options, json_later) = shared.decode_options(key);
        let mut message = decoded_message(cut.ts_ns, missing, |frame| {
            frame::decode_request_into(frame, cut.bytes, options);
            frame.json_later = json_later;
        });
        let decoded = &message.frame;
        if decoded.error.is_some() && missing == 0 {
            shared.losses.undecodable_frames += 1;
        }
        let id = shared.next_id();
        let correlation = decoded.correlation_id;
        let mut exchange = self.new_exchange(
            id,
            decoded.api_key,
            decoded.api_version,
            correlation.unwrap_or(-1),
        );
        exchange.lost = lost;
        exchange.packets = cut.packets;
        if let Some(client_id) = decoded.client_id() {
            if self.client_ids.len() < MAX_CLIENT_IDS
                && !self.client_ids.iter().any(|id| id == client_id)
            {
                self.client_ids.push(client_id.to_owned());
            }
        }
        self.note_seen(decoded.api_key, decoded.api_version);
        let mut no_response = false;
        if let Some(body) = &decoded.body {
            match decoded.api_key {
                schema::PRODUCE_KEY => no_response = body.int("acks") == Some(0),
                SASL_HANDSHAKE_KEY => self.mechanism = body.str("mechanism").map(str::to_owned),
                SASL_AUTHENTICATE_KEY => {
                    exchange.sasl = Some(Box::new(SaslExchange {
                        mechanism: self.mechanism.clone(),
                        framing: SaslFraming::Authenticate,
                        client: auth_bytes(body)
                            .map(|token| self.decode_token(Sender::Client, token, shared)),
                        server: None,
                    }));
                }
                _ => {}
            }
        }
        hide_secrets(&mut message.frame, shared.options.show_secrets);
        exchange.request = Some(message);
        let Some(correlation) = correlation else {
            // The header did not decode: nothing can answer it.
            return self.emit(exchange, out);
        };
        if no_response {
            // Held until a later response (or a grace time) shows that no
            // answer came: librdkafka's mock cluster answers acks=0 anyway.
            exchange.state = ExchangeState::NoResponseExpected;
        }
        self.last_request_correlation = Some(correlation);
        if let Some(position) = self
            .outstanding
            .iter()
            .position(|pending| pending.correlation_id == correlation)
        {
            if let Some(stale) = self.outstanding.remove(position) {
                self.emit(stale, out);
            }
        }
        if self.outstanding.len() >= MAX_OUTSTANDING {
            if let Some(oldest) = self.outstanding.pop_front() {
                self.emit(oldest, out);
            }
        }
        self.outstanding.push_back(exchange);
    }

    fn on_response(
        &mut self,
        cut: Cut,
        missing: u64,
        lost: bool,
        shared: &mut Shared,
        out: &mut Vec<Exchange>,
    ) {
        if self
            .raw_sasl
            .as_ref()
            .is_some_and(|raw| !raw.pending.is_empty())
            && missing == 0
        {
            return self.on_raw_token(Sender::Server, cut, shared, out);
        }
        if missing == 0 && cut.bytes.len() < 8 && self.raw_sasl_version.is_some() {
            // Too short for a Kafka response: a SASL token the server sent
            // unasked (Tansu and librdkafka's mock cluster send a second
            // empty one after OAUTHBEARER).
            return self.on_raw_token(Sender::Server, cut, shared, out);
        }
        let correlation = read_i32(&cut.bytes, LENGTH_PREFIX);
        let position = correlation.and_then(|correlation| {
            self.outstanding
                .iter()
                .position(|pending| pending.correlation_id == correlation)
        });
        let broker = self.client_side().other();
        let Some(position) = position else {
            return self.on_orphan_response(cut, missing, lost, shared, out);
        };
        // A broker answers the requests of a connection in order (protocol
        // guide, "Network"): the requests before this one got no answer.
        // For acks=0 Produce that is expected; otherwise a gap may have
        // eaten the answers, or the broker never sent them.
        let gap = std::mem::take(&mut self.streams[index(broker)].gap_since_match);
        for _ in 0..position {
            if let Some(mut earlier) = self.outstanding.pop_front() {
                earlier.lost |= gap && earlier.state == ExchangeState::ResponseMissing;
                self.emit(earlier, out);
            }
        }
        // The exchange is completed where it waits and then moved out
        // once: it is large, and each move is a copy.
        let Some((api_key, api_version)) = self
            .outstanding
            .front()
            .map(|exchange| (exchange.api_key, exchange.api_version))
        else {
            return;
        };
        let (options, json_later) = shared.decode_options(api_key);
        // The response's summary is gathered onto its request's, which
        // then sums up the exchange with no second summary made and
        // merged; the request keeps an empty one in its place.
        let earlier = self
            .outstanding
            .front_mut()
            .and_then(|exchange| exchange.request.as_mut())
            .and_then(|request| request.frame.summary.as_mut())
            .map(std::mem::take);
        let mut message = decoded_message(cut.ts_ns, missing, |frame| {
            frame::decode_response_after(frame, cut.bytes, api_key, api_version, options, earlier);
            frame.json_later = json_later;
        });
        let decoded = &message.frame;
        if decoded.error.is_some() && missing == 0 {
            shared.losses.undecodable_frames += 1;
        }
        let mut server_token = None;
        if let Some(body) = &decoded.body {
            let ok = body.int("error_code") == Some(0);
            match api_key {
                schema::API_VERSIONS_KEY if ok => self.learn_versions(body),
                SASL_HANDSHAKE_KEY if ok && api_version == 0 => {
                    self.raw_sasl_version = Some(api_version);
                    self.raw_sasl = Some(RawSasl {
                        version: api_version,
                        pending: VecDeque::new(),
                    });
                }
                SASL_AUTHENTICATE_KEY => {
                    server_token = Some(
                        auth_bytes(body)
                            .map(|token| self.decode_token(Sender::Server, token, shared)),
                    );
                }
                _ => {}
            }
        }
        hide_secrets(&mut message.frame, shared.options.show_secrets);
        let Some(exchange) = self.outstanding.front_mut() else {
            return;
        };
        if let (Some(token), Some(sasl)) = (server_token, &mut exchange.sasl) {
            sasl.server = token;
        }
        exchange.response = Some(message);
        exchange.lost |= lost;
        exchange.state = ExchangeState::Complete;
        merge_packets(&mut exchange.packets, cut.packets);
        settle(&mut self.exchanges, exchange);
        out.extend(self.outstanding.pop_front());
    }

    /// A response whose request is not in the capture.
    fn on_orphan_response(
        &mut self,
        cut: Cut,
        missing: u64,
        lost: bool,
        shared: &mut Shared,
        out: &mut Vec<Exchange>,
    ) {
        let inferred = if missing == 0 {
            self.infer(&cut.bytes, shared)
        } else {
            None
        };
        if inferred.is_none() && missing == 0 {
            shared.losses.undecodable_frames += 1;
        }
        let mut message = decoded_message(cut.ts_ns, missing, |frame| match inferred {
            Some((key, version)) => {
                let (options, json_later) = shared.decode_options(key);
                frame::decode_response_into(frame, cut.bytes, key, version, options);
                frame.json_later = json_later;
            }
            None => {
                // Header only: the correlation id and the size. The API
                // is not known, which is no fault of the frame's.
                frame::decode_response_into(frame, cut.bytes, -1, -1, &shared.probe);
                frame
                    .error
                    .take_if(|error| matches!(error.kind, DecodeErrorKind::UnknownApiKey(_)));
            }
        });
        let inferred = inferred.is_some();
        let decoded = &message.frame;
        if inferred {
            self.note_seen(decoded.api_key, decoded.api_version);
            if let Some(body) = decoded
                .body
                .as_ref()
                .filter(|_| decoded.api_key == schema::API_VERSIONS_KEY)
            {
                if body.int("error_code") == Some(0) {
                    self.learn_versions(body);
                }
            }
        }
        let id = shared.next_id();
        let mut exchange = self.new_exchange(
            id,
            decoded.api_key,
            decoded.api_version,
            decoded.correlation_id.unwrap_or(-1),
        );
        exchange.inferred = inferred;
        exchange.lost = lost;
        exchange.state = ExchangeState::RequestMissing;
        exchange.packets = cut.packets;
        hide_secrets(&mut message.frame, shared.options.show_secrets);
        exchange.response = Some(message);
        self.emit(exchange, out);
    }

    /// The (API key, version) whose response `frame` is: it must decode
    /// with no error, use every byte, and hold sane values. Versions learnt
    /// from ApiVersions and APIs seen on the connection come first; among
    /// the rest, the answer must be unambiguous.
    fn infer(&self, frame: &Bytes, shared: &Shared) -> Option<(i16, i16)> {
        let fits = |key: i16, version: i16| response_fits(frame, key, version, shared);
        for &(key, version) in &self.seen {
            if fits(key, version) {
                return Some((key, version));
            }
        }
        let mut found: Option<(i16, i16)> = None;
        for api in schema::APIS {
            let valid = api.response.valid;
            let (min, max) = match self.learnt.iter().find(|(key, _, _)| *key == api.key) {
                Some(&(_, min, max)) => (min.max(valid.min), max.min(valid.max)),
                None if self.learnt.is_empty() => (valid.min, valid.max),
                None => continue,
            };
            for version in (min..=max).rev() {
                if self.seen.contains(&(api.key, version)) || !fits(api.key, version) {
                    continue;
                }
                match found {
                    None => found = Some((api.key, version)),
                    Some((key, _)) if key == api.key => {}
                    Some(_) => return None,
                }
                break;
            }
        }
        found
    }

    fn note_seen(&mut self, key: i16, version: i16) {
        if schema::api(key).is_none() {
            return;
        }
        if let Some(position) = self.seen.iter().position(|&seen| seen == (key, version)) {
            self.seen.remove(position);
        }
        self.seen.insert(0, (key, version));
        self.seen.truncate(MAX_SEEN);
    }

    fn learn_versions(&mut self, body: &Struct) {
        let Some(Value::Array(items)) = body.get("api_keys") else {
            return;
        };
        self.learnt = items
            .iter()
            .filter_map(Value::as_struct)
            .filter_map(|item| {
                let key = i16::try_from(item.int("api_key")?).ok()?;
                let min = i16::try_from(item.int("min_version")?).ok()?;
                let max = i16::try_from(item.int("max_version")?).ok()?;
                Some((key, min, max))
            })
            .take(1024)
            .collect();
    }

    /// A SASL token of the connection's mechanism, secrets hidden unless asked for.
    fn decode_token(&self, sender: Sender, token: &[u8], shared: &Shared) -> SaslMessage {
        sasl::decode(
            self.mechanism.as_deref(),
            sender,
            token,
            shared.options.show_secrets,
        )
    }

    /// A raw SASL token (after SaslHandshake v0): a client token opens an
    /// exchange, the server's token completes it.
    fn on_raw_token(
        &mut self,
        sender: Sender,
        cut: Cut,
        shared: &mut Shared,
        out: &mut Vec<Exchange>,
    ) {
        let Some(version) = self
            .raw_sasl
            .as_ref()
            .map(|raw| raw.version)
            .or(self.raw_sasl_version)
        else {
            return;
        };
        let token = cut.bytes.slice(cut.bytes.len().min(LENGTH_PREFIX)..);
        let show = shared.options.show_secrets;
        let message = self.decode_token(sender, &token, shared);
        let direction = match sender {
            Sender::Client => Direction::Request,
            Sender::Server => Direction::Response,
        };
        let frame = DecodedFrame {
            direction,
            api_key: SASL_HANDSHAKE_KEY,
            api_version: version,
            correlation_id: None,
            header_version: -1,
            body_version: version,
            header: Struct::default(),
            client_id: None,
            body: None,
            body_start: LENGTH_PREFIX,
            raw: if show {
                cut.bytes.clone()
            } else {
                Bytes::copy_from_slice(cut.bytes.get(..LENGTH_PREFIX).unwrap_or_default())
            },
            size: cut.bytes.len(),
            error: None,
            violations: Vec::new(),
            trailing: Bytes::new(),
            summary: None,
            body_json: None,
            json_later: false,
        };
        let message_at = Box::new(Message {
            ts_ns: cut.ts_ns,
            frame,
            missing_bytes: 0,
        });
        match sender {
            Sender::Client => {
                let id = shared.next_id();
                let mut exchange = self.new_exchange(id, SASL_HANDSHAKE_KEY, version, -1);
                exchange.request = Some(message_at);
                exchange.packets = cut.packets;
                exchange.sasl = Some(Box::new(SaslExchange {
                    mechanism: self.mechanism.clone(),
                    framing: SaslFraming::Raw,
                    client: Some(message),
                    server: None,
                }));
                let mut overflow = None;
                if let Some(raw) = &mut self.raw_sasl {
                    if raw.pending.len() >= MAX_PENDING_SASL {
                        overflow = raw.pending.pop_front();
                    }
                    raw.pending.push_back(exchange);
                }
                if let Some(stale) = overflow {
                    self.emit(stale, out);
                }
            }
            Sender::Server => {
                let pending = self
                    .raw_sasl
                    .as_mut()
                    .and_then(|raw| raw.pending.pop_front());
                let Some(mut exchange) = pending else {
                    // A token nothing asked for: an exchange of its own.
                    let id = shared.next_id();
                    let mut exchange = self.new_exchange(id, SASL_HANDSHAKE_KEY, version, -1);
                    exchange.response = Some(message_at);
                    exchange.state = ExchangeState::RequestMissing;
                    exchange.packets = cut.packets;
                    exchange.sasl = Some(Box::new(SaslExchange {
                        mechanism: self.mechanism.clone(),
                        framing: SaslFraming::Raw,
                        client: None,
                        server: Some(message),
                    }));
                    return self.emit(exchange, out);
                };
                let done = authentication_done(self.mechanism.as_deref(), &message);
                if let Some(sasl) = &mut exchange.sasl {
                    sasl.server = Some(message);
                }
                exchange.response = Some(message_at);
                exchange.state = ExchangeState::Complete;
                merge_packets(&mut exchange.packets, cut.packets);
                self.emit(exchange, out);
                if done {
                    self.end_raw_sasl(out);
                }
            }
        }
    }

    fn end_raw_sasl(&mut self, out: &mut Vec<Exchange>) {
        if let Some(raw) = self.raw_sasl.take() {
            for exchange in raw.pending {
                self.emit(exchange, out);
            }
        }
    }

    /// The connection is gone: partial frames are lost, requests unanswered.
    fn flush(&mut self, shared: &mut Shared, out: &mut Vec<Exchange>) {
        if self.kind == ConnectionKind::Unknown {
            // A decision deferred for more evidence is taken now.
            self.closing = true;
            self.identify(shared, out);
        }
        let kafka = self.kind == ConnectionKind::Kafka;
        let max_frame = shared.options.max_frame;
        for side in [Side::Initiator, Side::Responder] {
            let stream = &mut self.streams[index(side)];
            let mode = std::mem::replace(&mut stream.mode, Mode::Ignore);
            // A frame the capture (or the connection) ended inside is lost,
            // counted once.
            let partial = match mode {
                Mode::Synced if kafka && !stream.buf.is_empty() => {
                    let have = stream.buf.len();
                    let total = match frame::next_frame(&stream.buf, max_frame) {
                        Deframe::NeedMore(more) if have >= LENGTH_PREFIX => have + more,
                        _ => have,
                    };
                    let partial = match stream.start_skip(
                        total as u64,
                        true,
                        shared.keep(),
                        &mut shared.buffered,
                    ) {
                        Some(partial) => Some(partial),
                        None => match std::mem::replace(&mut stream.mode, Mode::Ignore) {
                            Mode::Skipping(partial) => Some(*partial),
                            _ => None,
                        },
                    };
                    partial.map(|partial| (partial, true))
                }
                Mode::Skipping(partial) => {
                    let newly_lost = !partial.lost;
                    Some((*partial, newly_lost))
                }
                Mode::Hunting if kafka => {
                    shared.losses.resync_bytes += stream.buf.len() as u64;
                    None
                }
                _ => None,
            };
            let stream = &mut self.streams[index(side)];
            stream.clear(&mut shared.buffered);
            stream.mode = Mode::Ignore;
            if let Some((mut partial, newly_lost)) = partial {
                if newly_lost {
                    self.frames_lost += 1;
                    shared.losses.frames_lost += 1;
                }
                partial.lost = true;
                self.finish_partial(side, partial, shared, out);
            }
        }
        self.end_raw_sasl(out);
        let broker_gap = self.streams[index(self.client_side().other())].gap_since_match;
        while let Some(mut exchange) = self.outstanding.pop_front() {
            exchange.lost |= broker_gap && exchange.state == ExchangeState::ResponseMissing;
            self.emit(exchange, out);
        }
    }
}

/// Whether a raw SASL exchange ends authentication: PLAIN takes one round
/// trip, SCRAM ends with server-final, OAUTHBEARER with an empty answer.
/// Other mechanisms end when the client sends a Kafka request again.
fn authentication_done(mechanism: Option<&str>, server: &SaslMessage) -> bool {
    let mechanism = mechanism.unwrap_or_default().to_ascii_uppercase();
    match mechanism.as_str() {
        "PLAIN" => true,
        "OAUTHBEARER" => matches!(server, SaslMessage::Empty),
        scram if scram.starts_with("SCRAM-") => {
            matches!(server, SaslMessage::ScramServerFinal { .. })
        }
        _ => false,
    }
}

fn auth_bytes(body: &Struct) -> Option<&[u8]> {
    match body.get("auth_bytes") {
        Some(Value::Bytes(bytes)) => Some(bytes),
        _ => None,
    }
}

/// APIs whose bodies hold credentials: the only ones with
/// display::redact's fields (SaslAuthenticate, the delegation token APIs
/// and AlterUserScramCredentials). Their raw body bytes are dropped too
/// when secrets are hidden. (A match, not a slice search: asked of every
/// frame, it then stays inline however the crate is split for codegen.)
pub fn is_secret_api(key: i16) -> bool {
    matches!(key, 36 | 38 | 39 | 40 | 41 | 51)
}

/// APIs whose trees the Kafka layer reads: versions learnt from
/// ApiVersions, the SASL mechanism and tokens. They are decoded whole even
/// when the others are skimmed (`DecodeOptions::skim`).
fn is_tree_api(key: i16) -> bool {
    matches!(
        key,
        schema::API_VERSIONS_KEY | SASL_HANDSHAKE_KEY | SASL_AUTHENTICATE_KEY
    )
}

/// What handing an exchange on does besides moving it: it is counted (in
/// `exchanges`, its connection's count) and its summary settled.
fn settle(exchanges: &mut u64, exchange: &mut Exchange) {
    *exchanges += 1;
    exchange.settle_summary();
}

/// An exchange's message, its frame decoded by `decode` straight into the
/// box that keeps it (a frame is large: moving it costs more than
/// decoding a small one). Hide its secrets with [`hide_secrets`] once the
/// Kafka layer has read it. The box may be a spare one ([`recycle`]):
/// `decode` must replace the frame whole, as every `decode_*_into` does.
fn decoded_message(
    ts_ns: i64,
    missing_bytes: u64,
    decode: impl FnOnce(&mut DecodedFrame),
) -> Box<Message> {
    let mut message = SPARE_MESSAGES
        .with(|spare| spare.borrow_mut().pop())
        .unwrap_or_default();
    message.ts_ns = ts_ns;
    message.missing_bytes = missing_bytes;
    decode(&mut message.frame);
    message
}

thread_local! {
    /// Boxes of messages whose exchanges were handed back ([`recycle`]),
    /// for the next messages decoded on this thread. The boxes, not their
    /// contents, are what is kept: their allocations are reused.
    #[allow(clippy::vec_box)]
    static SPARE_MESSAGES: RefCell<Vec<Box<Message>>> = const { RefCell::new(Vec::new()) };
}

/// Most spare message boxes a thread keeps.
const SPARE_MESSAGES_MAX: usize = 8;

/// Hands back an exchange that its reader is done with: its message boxes
/// (rid of whatever may hold many bytes) are kept for the next messages
/// this thread decodes, and its summary's buffers for the next summary
/// gathered, which then allocate none. An exchange simply dropped is fine
/// too; at most a few boxes are kept.
pub fn recycle(exchange: Exchange) {
    let Exchange {
        request,
        response,
        summary,
        ..
    } = exchange;
    if let Some(summary) = summary {
        summary.recycle();
    }
    SPARE_MESSAGES.with(|spare| {
        let mut spare = spare.borrow_mut();
        for mut message in [request, response].into_iter().flatten() {
            if spare.len() >= SPARE_MESSAGES_MAX {
                break;
            }
            // What may hold many bytes (the capture's, a tree, JSON
            // text) goes now; the rest is small, and goes when the next
            // decode replaces the frame whole.
            let frame = &mut message.frame;
            frame.raw = Bytes::new();
            frame.trailing = Bytes::new();
            frame.body = None;
            frame.body_json = None;
            frame.violations = Vec::new();
            spare.push(message);
        }
    });
}

/// Decodes into JSON the messages of an exchange that a session with
/// [`AnalyzerOptions::json_later`] decoded for lines only (most of them
/// no further than the header), exactly as a session decoding with
/// `options` (which skims into JSON) would have decoded them, from the
/// same frame bytes, and gathers the exchange's summary again. Messages
/// the session decoded whole (the APIs whose trees it reads, and those
/// with secrets) are left as they are. This is the part of
/// `kwire read --json` that can run on other threads than the reading one.
pub fn decode_for_json(exchange: &mut Exchange, options: &DecodeOptions) {
    let mut decoded = false;
    for message in [&mut exchange.request, &mut exchange.response]
        .into_iter()
        .flatten()
    {
        let frame = &mut message.frame;
        if !frame.json_later {
            continue;
        }
        let raw = frame.raw.clone();
        match frame.direction {
            Direction::Request => frame::decode_request_into(frame, raw, options),
            Direction::Response => {
                let (key, version) = (frame.api_key, frame.api_version);
                frame::decode_response_into(frame, raw, key, version, options);
            }
        }
        decoded = true;
    }
    if decoded {
        exchange.summary = None;
        exchange.settle_summary();
    }
}

fn hide_secrets(decoded: &mut DecodedFrame, show: bool) {
    // Other APIs have no secret fields: their trees need no walk.
    if show || !is_secret_api(decoded.api_key) {
        return;
    }
    if let Some(body) = &mut decoded.body {
        crate::display::redact(body);
    }
    // The header stays (a copy: a view would keep the secret alive).
    let header = decoded.body_start.min(decoded.raw.len());
    decoded.raw = Bytes::copy_from_slice(decoded.raw.get(..header).unwrap_or_default());
}

fn merge_packets(packets: &mut PacketList, more: PacketList) {
    packets.extend(more);
    packets.sort_unstable();
    packets.dedup();
    packets.truncate(2 * MAX_PACKETS_PER_MESSAGE);
}

/// Whether a decoded response holds believable values: known error codes,
/// non-negative throttle times and strings without control characters.
fn sane(tree: &Struct) -> bool {
    tree.fields
        .iter()
        .all(|field| sane_value(field.name, &field.value))
}

fn sane_value(name: &str, value: &Value) -> bool {
    match value {
        Value::Int(code) if name == "error_code" || name.ends_with("_error_code") => {
            i16::try_from(*code).is_ok_and(|code| schema::error(code).is_some())
        }
        Value::Int(time) if name == "throttle_time_ms" => *time >= 0,
        Value::String(text) => !text.chars().any(char::is_control),
        Value::Struct(inner) => sane(inner),
        Value::Array(items) => items.iter().all(|item| sane_value(name, item)),
        _ => true,
    }
}

/// Judges whether `bytes` starts with a Kafka request: a sane size, a known
/// API key at a plausible version, a non-negative correlation id (after
/// `after`, when known: clients count upwards), a printable client id, and
/// a body that decodes (whole, or as far as the bytes go).
fn judge_request(
    bytes: &[u8],
    max_frame: usize,
    strictness: Strictness,
    after: Option<i32>,
    probe: &DecodeOptions,
) -> Verdict {
    let Some(size) = read_i32(bytes, 0) else {
        return Verdict::Wait;
    };
    // api key, version and correlation id: 8 bytes at least.
    let size = match usize::try_from(size) {
        Ok(size) if (8..=max_frame).contains(&size) => size,
        _ => return Verdict::Reject,
    };
    let Some(key) = read_i16(bytes, 4) else {
        return Verdict::Wait;
    };
    let api = schema::api(key);
    let largest_key = schema::APIS.last().map_or(0, |api| api.key);
    let key_ok = match strictness {
        Strictness::Search => api.is_some(),
        Strictness::Boundary => (0..=largest_key.saturating_add(API_KEY_SLACK)).contains(&key),
    };
    if !key_ok {
        return Verdict::Reject;
    }
    let Some(version) = read_i16(bytes, 6) else {
        return Verdict::Wait;
    };
    let newest = api.map_or(30, |api| api.request.valid.max);
    if version < 0 || version > newest.saturating_add(VERSION_SLACK) {
        return Verdict::Reject;
    }
    let Some(correlation) = read_i32(bytes, 8) else {
        return Verdict::Wait;
    };
    // Equal is allowed: some clients reuse one correlation id.
    let counts_up = after.is_none_or(|last| correlation >= last || last - correlation > 1 << 30);
    if correlation < 0 || !counts_up {
        return Verdict::Reject;
    }
    let header_version = match api {
        Some(api) if api.request.valid.contains(version) => {
            schema::request_header_version(api, version)
        }
        // A newer version than known: flexible if the newest known is.
        Some(api) if api.request.flexible.contains(api.request.valid.max) => 2,
        _ => 1,
    };
    if header_version >= 1 {
        let Some(id_len) = read_i16(bytes, 12) else {
            return Verdict::Wait;
        };
        if !(-1..=MAX_CLIENT_ID).contains(&id_len) {
            return Verdict::Reject;
        }
        // -1 is a null client id. Searching, a client id is required: an
        // empty body (ApiVersions v0) after an empty id fits too easily.
        let id_len = usize::try_from(id_len).unwrap_or(0);
        if id_len + 10 > size || (id_len == 0 && strictness == Strictness::Search) {
            return Verdict::Reject;
        }
        if id_len > 0 {
            let end = 14 + id_len;
            let Some(id) = bytes.get(14..end) else {
                return Verdict::Wait;
            };
            let printable =
                std::str::from_utf8(id).is_ok_and(|id| !id.chars().any(char::is_control));
            if !printable {
                return Verdict::Reject;
            }
        }
    }
    // At a known boundary the header is evidence enough: a body that does
    // not decode is the codec's to report, not a reason to drop the stream.
    let Some(api) = api.filter(|_| strictness == Strictness::Search) else {
        return Verdict::Accept;
    };
    // A version a little newer than kwire's tables (a newer client) is
    // judged by its body read with the newest layout, as it would be
    // decoded; one that does not fit is not evidence enough.
    let newer = version > api.request.valid.max
        && version
            <= api
                .request
                .valid
                .max
                .saturating_add(frame::NEWER_VERSION_SLACK);
    if !api.request.valid.contains(version) && !newer {
        return Verdict::Reject;
    }
    judge_decode(
        bytes,
        size + LENGTH_PREFIX,
        NewerVersion::MustFit,
        |frame| frame::decode_request(frame, probe),
    )
}

/// How [`judge_decode`] takes a version newer than kwire's tables whose
/// body does not fit the newest layout.
#[derive(Clone, Copy, PartialEq, Eq)]
enum NewerVersion {
    /// Accepted on the strength of the header (checked by the caller).
    HeaderSuffices,
    /// Rejected: nothing but the header would vouch for the frame.
    MustFit,
}

/// Decodes a candidate frame of `total` bytes at the start of `bytes`: whole
/// when it is all there, else its first `PREFIX_CHECK` bytes, which must
/// fail only for want of the rest.
fn judge_decode(
    bytes: &[u8],
    total: usize,
    newer: NewerVersion,
    decode: impl Fn(Bytes) -> DecodedFrame,
) -> Verdict {
    if bytes.len() >= total {
        // Trailing bytes are not accepted: a small body would then fit
        // anywhere. (A frame with trailing bytes before a frame found is
        // still found, by `chain_back`.)
        let decoded = decode(Bytes::copy_from_slice(&bytes[..total]));
        return match decoded.error.map(|error| error.kind) {
            None => Verdict::Accept,
            // A version newer than kwire's tables that the newest layout
            // does not fit cannot be checked: the header (checked by the
            // caller) has to do, where it may.
            Some(DecodeErrorKind::UnknownVersion { .. })
                if newer == NewerVersion::HeaderSuffices =>
            {
                Verdict::Accept
            }
            Some(_) => Verdict::Reject,
        };
    }
    if bytes.len() < PREFIX_CHECK {
        return Verdict::Wait;
    }
    // The prefix with its length prefix rewritten to match.
    let mut prefix = bytes[..PREFIX_CHECK].to_vec();
    let claimed = (PREFIX_CHECK - LENGTH_PREFIX) as i32;
    prefix[..LENGTH_PREFIX].copy_from_slice(&claimed.to_be_bytes());
    let decoded = decode(Bytes::from(prefix));
    let truncated = matches!(
        decoded.error.as_ref().map(|error| &error.kind),
        Some(DecodeErrorKind::Wire(
            WireErrorKind::Truncated { .. }
                | WireErrorKind::LengthExceeds { .. }
                | WireErrorKind::CountExceeds { .. }
        ))
    );
    if truncated {
        Verdict::Accept
    } else {
        Verdict::Reject
    }
}

/// Searches a stream's buffer for a frame start: candidates that were
/// waiting for bytes first, then positions not judged yet. Candidates that
/// need more bytes do not stop the search: a later one may be certain.
fn search(stream: &mut Stream, mut judge: impl FnMut(&[u8]) -> Verdict) -> Option<usize> {
    let earlier = std::mem::take(&mut stream.pending);
    let mut waiting = Vec::new();
    for position in earlier {
        match stream.buf.get(position..).map(&mut judge) {
            Some(Verdict::Accept) => return Some(position),
            Some(Verdict::Wait) => waiting.push(position),
            _ => {}
        }
    }
    while stream.scanned < stream.buf.len() {
        let position = stream.scanned;
        stream.scanned += 1;
        match judge(&stream.buf[position..]) {
            Verdict::Accept => {
                stream.pending = waiting;
                return Some(position);
            }
            Verdict::Wait => {
                if waiting.len() >= MAX_PENDING {
                    waiting.remove(0);
                }
                waiting.push(position);
            }
            Verdict::Reject => {}
        }
    }
    stream.pending = waiting;
    None
}

/// Whether `frame` is a response of API `key` at `version`: it decodes
/// with no error, uses every byte, and holds sane values.
fn response_fits(frame: &Bytes, key: i16, version: i16, shared: &Shared) -> bool {
    let decoded = frame::decode_response(frame.clone(), key, version, &shared.probe);
    decoded.error.is_none()
        && decoded.violations.is_empty()
        && decoded.body.as_ref().is_some_and(sane)
        && decoded.correlation_id.is_some()
}

/// Whether `frame` is the response of some API, at some version.
fn some_response_fits(frame: &Bytes, shared: &Shared) -> bool {
    schema::APIS.iter().any(|api| {
        let valid = api.response.valid;
        (valid.min..=valid.max).any(|version| response_fits(frame, api.key, version, shared))
    })
}

/// Whether `frame`, decoded as a request, leaves bytes over: a response
/// read as a request usually does (an old Produce response with
/// correlation id 2 reads as a Produce v2 request header), a real request
/// rarely (ApiVersions v0 from some clients).
fn leaves_bytes_over(frame: Bytes, shared: &Shared) -> bool {
    frame::decode_request(frame, &shared.probe)
        .violations
        .iter()
        .any(|violation| matches!(violation.kind, DecodeErrorKind::TrailingBytes(_)))
}

/// The correlation ids at `offset` (8 in a request, 4 in a response) of
/// the frames that follow each other by length from `at` in `buf`, the
/// last one possibly incomplete.
fn correlations(buf: &[u8], at: usize, offset: usize, max_frame: usize) -> Vec<i32> {
    let mut ids = Vec::new();
    let mut position = at;
    while ids.len() < MATCH_FRAMES {
        let rest = buf.get(position..).unwrap_or_default();
        let next = frame::next_frame(rest, max_frame);
        let Some(id) = read_i32(rest, offset).filter(|_| !matches!(next, Deframe::Malformed(_)))
        else {
            break;
        };
        ids.push(id);
        let Deframe::Frame(len) = next else {
            break;
        };
        position += len;
    }
    ids
}

/// Traces a frame boundary back through earlier frames whose length leads
/// exactly to it and whose header is plausible: a frame that did not decode
/// (or was too small to judge alone) still gets its place.
fn chain_back(buf: &[u8], at: usize, plausible: impl Fn(&[u8]) -> bool) -> usize {
    let mut at = at;
    for _ in 0..MAX_CHAIN {
        let start = at.saturating_sub(HUNT_WINDOW);
        let leads_here = |position: &usize| {
            let size = read_i32(buf, *position).and_then(|size| usize::try_from(size).ok());
            size.is_some_and(|size| position + LENGTH_PREFIX + size == at)
                && plausible(&buf[*position..])
        };
        match (start..at.saturating_sub(LENGTH_PREFIX))
            .rev()
            .find(leads_here)
        {
            Some(earlier) => at = earlier,
            None => break,
        }
    }
    at
}

/// Whether a response header's correlation id fits the client's: at most
/// the last one sent, and not far behind.
fn response_header_plausible(frame: &[u8], last: Option<i32>) -> bool {
    let Some(correlation) = read_i32(frame, LENGTH_PREFIX) else {
        return false;
    };
    match last {
        Some(last) => correlation <= last && correlation >= last.saturating_sub(1024).max(0),
        None => correlation >= 0,
    }
}

/// Whether the bytes after a length prefix look like a request header
/// (key, version, correlation id), without looking at the body.
fn header_plausible(header: &[u8]) -> bool {
    let (Some(key), Some(version), Some(correlation)) = (
        read_i16(header, 0),
        read_i16(header, 2),
        read_i32(header, 4),
    ) else {
        return false;
    };
    schema::api(key).is_some_and(|api| {
        (0..=api.request.valid.max.saturating_add(VERSION_SLACK)).contains(&version)
    }) && correlation >= 0
}

/// A TLS handshake record holding a ClientHello (sent by the client) or a
/// ServerHello (RFC 8446 sections 5.1 and 4) at the start of `side`'s
/// stream. Returns the client side.
fn tls_hello(bytes: &[u8], side: Side) -> Option<Side> {
    if bytes.len() < 6 || bytes[0] != 22 || bytes[1] != 3 || bytes[2] > 4 {
        return None;
    }
    match bytes[5] {
        1 => Some(side),
        2 => Some(side.other()),
        _ => None,
    }
}

/// Two consecutive TLS record headers (content type 20-24, version 3.x,
/// length within the record limit of RFC 8446 section 5.2).
fn tls_records(bytes: &[u8]) -> Verdict {
    let header = |at: usize| -> Verdict {
        let Some(head) = bytes.get(at..at + 5) else {
            return Verdict::Wait;
        };
        let length = u16::from_be_bytes([head[3], head[4]]);
        if (20..=24).contains(&head[0]) && head[1] == 3 && head[2] <= 4 && length <= 18_432 {
            Verdict::Accept
        } else {
            Verdict::Reject
        }
    };
    if header(0) != Verdict::Accept {
        return Verdict::Reject;
    }
    let length = usize::from(u16::from_be_bytes([bytes[3], bytes[4]]));
    header(5 + length)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frames_file::{self, LineKind};
    use crate::json::JsonWriter;

    const CLIENT: ([u8; 4], u16) = ([127, 0, 0, 1], 50_000);
    const BROKER: ([u8; 4], u16) = ([127, 0, 0, 1], 9092);

    /// A scripted TCP conversation between a client and a broker: every
    /// segment acknowledges all the peer sent, as a real receiver would.
    struct Wire {
        client_seq: u32,
        broker_seq: u32,
        packet: u64,
        ts_ns: i64,
        segments: Vec<TcpSegment>,
    }

    impl Wire {
        fn new(handshake: bool) -> Wire {
            let mut wire = Wire {
                client_seq: 1000,
                broker_seq: 50_000,
                packet: 0,
                ts_ns: 1_700_000_000_000_000_000,
                segments: Vec::new(),
            };
            if handshake {
                wire.push(true, Bytes::new(), true, false);
                wire.client_seq += 1;
                wire.push(false, Bytes::new(), true, true);
                wire.broker_seq += 1;
            }
            wire
        }

        fn push(&mut self, from_client: bool, payload: Bytes, syn: bool, ack: bool) {
            let (src, dst, seq, peer) = if from_client {
                (CLIENT, BROKER, self.client_seq, self.broker_seq)
            } else {
                (BROKER, CLIENT, self.broker_seq, self.client_seq)
            };
            self.segments.push(TcpSegment {
                packet: self.packet,
                ts_ns: self.ts_ns,
                src: SocketAddr::from(src),
                dst: SocketAddr::from(dst),
                seq,
                ack: ack.then_some(peer),
                syn,
                fin: false,
                rst: false,
                wire_len: payload.len() as u32,
                payload,
                snapped: false,
            });
            self.packet += 1;
            self.ts_ns += 1_000_000;
        }

        /// Sends `bytes` in segments of at most `mss` bytes.
        fn send(&mut self, from_client: bool, bytes: &[u8], mss: usize) {
            for piece in bytes.chunks(mss.max(1)) {
                let first = !(from_client && self.client_seq == 1000);
                self.push(from_client, Bytes::copy_from_slice(piece), false, first);
                self.advance(from_client, piece.len());
            }
        }

        /// Bytes the network carried but the capture did not.
        fn lose(&mut self, from_client: bool, count: usize) {
            self.advance(from_client, count);
        }

        fn advance(&mut self, from_client: bool, count: usize) {
            let seq = if from_client {
                &mut self.client_seq
            } else {
                &mut self.broker_seq
            };
            *seq = seq.wrapping_add(count as u32);
        }
    }

    struct Run {
        exchanges: Vec<Exchange>,
        losses: LossCounters,
        connections: Vec<ConnectionSummary>,
    }

    fn run_with(segments: Vec<TcpSegment>, options: AnalyzerOptions) -> Run {
        let mut analyzer = Analyzer::new(options);
        let mut exchanges = Vec::new();
        for segment in segments {
            analyzer.push_segment(segment, &mut exchanges);
        }
        analyzer.finish(&mut exchanges);
        Run {
            exchanges,
            losses: analyzer.losses(),
            connections: analyzer.connections(),
        }
    }

    fn run(segments: Vec<TcpSegment>) -> Run {
        run_with(segments, AnalyzerOptions::default())
    }

    /// The frames of a fixture connection (tests/session), requests and
    /// responses in the order the client sent them, each response after its
    /// request.
    fn fixture(file: &str) -> Vec<(bool, Bytes)> {
        fixture_lines(file)
            .into_iter()
            .map(|line| (line.kind == LineKind::Request, line.bytes))
            .collect()
    }

    fn fixture_lines(file: &str) -> Vec<frames_file::FrameLine> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/session")
            .join(file);
        let text = std::fs::read_to_string(&path).expect("fixture");
        frames_file::parse(&text).expect("fixture parses")
    }

    /// kcat against librdkafka's mock cluster: ApiVersions, Metadata,
    /// ListOffsets and Fetch; the last Fetch is unanswered.
    fn kcat_frames() -> Vec<(bool, Bytes)> {
        fixture("kcat-fetch.frames")
    }

    /// The position of the first request of API `key` in `frames`; its
    /// response follows it.
    fn first_request(frames: &[(bool, Bytes)], key: i16) -> usize {
        frames
            .iter()
            .position(|(request, bytes)| *request && read_i16(bytes, 4) == Some(key))
            .expect("such a request")
    }

    fn feed(wire: &mut Wire, frames: &[(bool, Bytes)], mss: usize) {
        for (from_client, bytes) in frames {
            wire.send(*from_client, bytes, mss);
        }
    }

    /// The frames after a handshake, whole but for frame `victim`: of it,
    /// `lost` bytes from byte `at` on never reach the capture.
    fn feed_with_hole(frames: &[(bool, Bytes)], victim: usize, at: usize, lost: usize) -> Wire {
        let mut wire = Wire::new(true);
        for (index, (from_client, bytes)) in frames.iter().enumerate() {
            if index == victim {
                wire.send(*from_client, &bytes[..at], 1460);
                wire.lose(*from_client, lost);
                wire.send(*from_client, &bytes[at + lost..], 1460);
            } else {
                wire.send(*from_client, bytes, 1460);
            }
        }
        wire
    }

    /// (API key, version, correlation id, state) of each exchange, by id.
    fn outline(exchanges: &[Exchange]) -> Vec<(i16, i16, i32, ExchangeState)> {
        let mut sorted: Vec<&Exchange> = exchanges.iter().collect();
        sorted.sort_by_key(|exchange| exchange.id);
        sorted
            .iter()
            .map(|e| (e.api_key, e.api_version, e.correlation_id, e.state))
            .collect()
    }

    fn complete_count(exchanges: &[Exchange]) -> usize {
        exchanges
            .iter()
            .filter(|exchange| exchange.state == ExchangeState::Complete)
            .count()
    }

    #[test]
    fn clean_stream_pairs_every_exchange_in_request_order() {
        let frames = kcat_frames();
        let mut wire = Wire::new(true);
        feed(&mut wire, &frames, 1460);
        let result = run(wire.segments);
        let requests = frames.iter().filter(|(request, _)| *request).count();
        let responses = frames.len() - requests;
        assert_eq!(result.exchanges.len(), requests);
        assert_eq!(complete_count(&result.exchanges), responses);
        assert_eq!(result.losses, LossCounters::default());
        // Ids follow request order; emission follows completion.
        let ids: Vec<u64> = result.exchanges.iter().map(|e| e.id).collect();
        let expected: Vec<u64> = (0..requests as u64).collect();
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, expected);
        let first = &result.exchanges[0];
        assert_eq!(first.api_name(), "ApiVersions");
        assert_eq!(first.client, SocketAddr::from(CLIENT));
        assert_eq!(first.broker, SocketAddr::from(BROKER));
        assert_eq!(first.client_id(), Some("kwire-corpus-kcat"));
        // Packets 0-1 are the handshake: the first request is packet 2 and
        // its response packet 3, one millisecond later.
        assert_eq!(first.packets.as_slice(), [2, 3]);
        assert_eq!(first.latency_ns(), Some(1_000_000));
        let connection = &result.connections[0];
        assert_eq!(connection.kind, ConnectionKind::Kafka);
        assert_eq!(connection.exchanges, requests as u64);
        assert_eq!(connection.client_ids, vec!["kwire-corpus-kcat".to_owned()]);
        let sent: usize = frames
            .iter()
            .filter(|(r, _)| *r)
            .map(|(_, b)| b.len())
            .sum();
        assert_eq!(connection.bytes_to_broker, sent as u64);
    }

    #[test]
    fn resplitting_the_streams_changes_nothing() {
        let frames = kcat_frames();
        let mut wire = Wire::new(true);
        feed(&mut wire, &frames, 1460);
        let reference = run(wire.segments);
        for mss in [1, 2, 3, 5, 7, 13, 64, 100] {
            let mut wire = Wire::new(true);
            feed(&mut wire, &frames, mss);
            let result = run(wire.segments);
            assert_eq!(
                outline(&result.exchanges),
                outline(&reference.exchanges),
                "mss {mss}"
            );
            assert_eq!(result.losses, LossCounters::default(), "mss {mss}");
            // The request time is the time of the packet with its first
            // byte, so smaller segments cannot make it later.
            let first = result.exchanges.iter().find(|e| e.id == 0).expect("first");
            assert_eq!(first.packets[0], 2, "mss {mss}");
        }
    }

    #[test]
    fn capture_starting_mid_stream_finds_the_first_boundary() {
        let frames = kcat_frames();
        let reference = outline(&{
            let mut wire = Wire::new(true);
            feed(&mut wire, &frames, 1460);
            run(wire.segments).exchanges
        });
        // Start the capture inside request `start`'s frame, `into` bytes in.
        // (Not request 0: the mock's answer to it is malformed and cannot be
        // inferred, so it would be skipped too.)
        for start in [2, 4, 8, 12] {
            for into in [1, 3, 9] {
                let mut wire = Wire::new(false);
                let mut partial = 0;
                for (index, (from_client, bytes)) in frames.iter().enumerate() {
                    match index.cmp(&start) {
                        std::cmp::Ordering::Less => wire.lose(*from_client, bytes.len()),
                        std::cmp::Ordering::Equal => {
                            let cut = into.min(bytes.len());
                            wire.lose(*from_client, cut);
                            wire.send(*from_client, &bytes[cut..], 1460);
                            partial = bytes.len() - cut;
                        }
                        std::cmp::Ordering::Greater => wire.send(*from_client, bytes, 1460),
                    }
                }
                let result = run(wire.segments);
                let at = format!("start {start} into {into}");
                // The partial request is skipped; its response stays as a
                // response without request; every later exchange is whole.
                assert_eq!(result.losses.resync_bytes, partial as u64, "{at}");
                let later: Vec<_> = outline(&result.exchanges)
                    .into_iter()
                    .filter(|entry| entry.3 != ExchangeState::RequestMissing)
                    .collect();
                let skipped = frames[..=start].iter().filter(|(r, _)| *r).count();
                assert_eq!(later, reference[skipped..].to_vec(), "{at}");
                let orphans = result
                    .exchanges
                    .iter()
                    .filter(|e| e.state == ExchangeState::RequestMissing)
                    .count();
                assert_eq!(orphans, 1, "{at}: the cut request's response");
                assert_eq!(result.connections[0].kind, ConnectionKind::Kafka, "{at}");
            }
        }
    }

    #[test]
    fn gap_inside_a_request_loses_that_frame_and_pairs_the_rest() {
        let frames = kcat_frames();
        let fetch = first_request(&frames, schema::FETCH_KEY);
        let victim = &frames[fetch].1;
        assert!(victim.len() > 60 && !frames[fetch + 1].0);
        let result = run(feed_with_hole(&frames, fetch, 40, 20).segments);
        assert_eq!(result.losses.gap_bytes, 20);
        assert_eq!(result.losses.frames_lost, 1);
        assert_eq!(
            result.losses.resync_bytes, 0,
            "the frame's length was known"
        );
        let lost: Vec<&Exchange> = result.exchanges.iter().filter(|e| e.lost).collect();
        assert_eq!(lost.len(), 1);
        let lost = lost[0];
        assert_eq!(lost.api_name(), "Fetch");
        assert_eq!(
            lost.state,
            ExchangeState::Complete,
            "its response still pairs"
        );
        let request = lost.request.as_ref().expect("request");
        assert_eq!(request.missing_bytes, (victim.len() - 40) as u64);
        assert_eq!(
            lost.request_size(),
            Some(victim.len()),
            "the size is the frame's, not the bytes kept"
        );
        assert_eq!(
            lost.client_id(),
            Some("kwire-corpus-kcat"),
            "the header was decoded"
        );
        let requests = frames.iter().filter(|(r, _)| *r).count();
        assert_eq!(result.exchanges.len(), requests);
        assert_eq!(result.connections[0].frames_lost, 1);
        assert_eq!(result.connections[0].gap_bytes, 20);
    }

    #[test]
    fn gap_inside_the_first_requests_header_skips_it_by_its_length() {
        // Before the first request's header is whole the connection is not
        // recognised as Kafka yet; the length prefix seen still tells where
        // the next frame starts.
        let frames = kcat_frames();
        let first = &frames[0].1;
        assert!(frames[0].0 && !frames[1].0 && first.len() > 40);
        let correlation = read_i32(first, 8).expect("correlation id");
        let reference = outline(&{
            let mut wire = Wire::new(true);
            feed(&mut wire, &frames, 1460);
            run(wire.segments).exchanges
        });
        let others = |outline: Vec<(i16, i16, i32, ExchangeState)>| {
            outline
                .into_iter()
                .filter(|entry| entry.2 != correlation)
                .collect::<Vec<_>>()
        };
        for at in [0, 2, 4, 6, 8, 12, 14, 20, 30] {
            // A hole inside the frame, and one that runs to its end.
            for lost in [3, first.len() - at] {
                let result = run(feed_with_hole(&frames, 0, at, lost).segments);
                let case = format!("hole of {lost} at {at}");
                assert_eq!(result.losses.gap_bytes, lost as u64, "{case}");
                assert_eq!(result.losses.frames_lost, 1, "{case}");
                assert_eq!(result.connections[0].kind, ConnectionKind::Kafka, "{case}");
                assert_eq!(result.connections[0].frames_lost, 1, "{case}");
                if at < LENGTH_PREFIX {
                    // Not even its length: the rest of it is searched past.
                    let rest = (first.len() - lost) as u64;
                    assert_eq!(result.losses.resync_bytes, rest, "{case}");
                } else {
                    assert_eq!(result.losses.resync_bytes, 0, "{case}");
                }
                let exchanges = outline(&result.exchanges);
                assert_eq!(
                    others(exchanges.clone()),
                    others(reference.clone()),
                    "{case}"
                );
                let victim: Vec<&Exchange> = result
                    .exchanges
                    .iter()
                    .filter(|e| e.correlation_id == correlation)
                    .collect();
                assert_eq!(victim.len(), 1, "{case}");
                if at < 12 {
                    // Too little of the request to pair its response.
                    assert_eq!(victim[0].state, ExchangeState::RequestMissing, "{case}");
                    continue;
                }
                assert_eq!(exchanges, reference, "{case}");
                assert!(victim[0].lost, "{case}");
                let request = victim[0].request.as_ref().expect("request");
                assert_eq!(request.missing_bytes, (first.len() - at) as u64, "{case}");
            }
        }
    }

    #[test]
    fn gap_inside_a_response_marks_its_exchange() {
        let frames = kcat_frames();
        let fetch = first_request(&frames, schema::FETCH_KEY) + 1;
        assert!(!frames[fetch].0 && frames[fetch].1.len() > 60);
        let result = run(feed_with_hole(&frames, fetch, 20, 10).segments);
        assert_eq!(result.losses.frames_lost, 1);
        assert_eq!(result.losses.gap_bytes, 10);
        let lost: Vec<&Exchange> = result.exchanges.iter().filter(|e| e.lost).collect();
        assert_eq!(lost.len(), 1);
        assert_eq!(lost[0].api_name(), "Fetch");
        let response = lost[0].response.as_ref().expect("a partial response");
        assert_eq!(response.missing_bytes, (frames[fetch].1.len() - 20) as u64);
        assert_eq!(response.frame.correlation_id, Some(lost[0].correlation_id));
        let requests = frames.iter().filter(|(r, _)| *r).count();
        assert_eq!(complete_count(&result.exchanges), frames.len() - requests);
    }

    #[test]
    fn gap_across_frames_resynchronises_on_the_next_request() {
        let frames = kcat_frames();
        assert!(frames[6].0 && !frames[7].0 && frames[8].0);
        let mut wire = Wire::new(true);
        // Lose from the middle of request 6 to the middle of request 8,
        // with the responses in between (the broker's stream is intact).
        for (index, (from_client, bytes)) in frames.iter().enumerate() {
            match index {
                6 => {
                    wire.send(true, &bytes[..10], 1460);
                    wire.lose(true, bytes.len() - 10);
                }
                8 => {
                    wire.lose(true, 10);
                    wire.send(true, &bytes[10..], 1460);
                }
                _ => wire.send(*from_client, bytes, 1460),
            }
        }
        let result = run(wire.segments);
        // Requests 6 and 8 were hit.
        assert_eq!(result.losses.frames_lost, 2);
        assert_eq!(result.losses.resync_bytes, (frames[8].1.len() - 10) as u64);
        // Request 6 is lost with too little to pair; request 8 is cut. Their
        // responses stay, without requests; everything else pairs.
        let orphans: Vec<&Exchange> = result
            .exchanges
            .iter()
            .filter(|e| e.state == ExchangeState::RequestMissing)
            .collect();
        assert_eq!(orphans.len(), 2);
        let requests = frames.iter().filter(|(r, _)| *r).count();
        assert_eq!(
            complete_count(&result.exchanges),
            frames.len() - requests - 2
        );
    }

    #[test]
    fn responses_without_requests_are_inferred() {
        let frames = kcat_frames();
        let mut wire = Wire::new(true);
        for (from_client, bytes) in &frames {
            if *from_client {
                wire.lose(true, bytes.len());
            } else {
                wire.send(false, bytes, 1460);
            }
        }
        let result = run(wire.segments);
        assert_eq!(result.connections[0].kind, ConnectionKind::Kafka);
        assert_eq!(result.connections[0].broker, SocketAddr::from(BROKER));
        let expected: Vec<(i16, i16)> = fixture_lines("kcat-fetch.frames")
            .into_iter()
            .filter(|line| line.kind == LineKind::Response)
            .map(|line| (line.api_key, line.api_version))
            .collect();
        let got: Vec<(i16, i16, bool)> = result
            .exchanges
            .iter()
            .map(|e| (e.api_key, e.api_version, e.inferred))
            .collect();
        assert_eq!(got.len(), expected.len());
        assert!(result
            .exchanges
            .iter()
            .all(|e| e.state == ExchangeState::RequestMissing));
        for ((key, version, inferred), (want_key, want_version)) in got.iter().zip(&expected) {
            match want_key {
                // The mock's malformed ApiVersions answer fits no API, and a
                // ListOffsets v2 answer fits OffsetFetch v5 as well: both
                // keep their header only.
                18 if *want_version == 3 => assert!(!inferred),
                2 => assert!(!inferred),
                _ => assert_eq!((key, version, *inferred), (want_key, want_version, true)),
            }
        }
        let orphans = result.exchanges.iter().filter(|e| !e.inferred);
        assert!(orphans
            .clone()
            .all(|e| e.api_key == -1 && e.correlation_id > 0));
        assert_eq!(result.losses.undecodable_frames, orphans.count() as u64);
        assert_eq!(result.losses.resync_bytes, 0);
    }

    fn header(correlation_id: i32) -> Struct {
        let mut header = Struct::default();
        header.push("correlation_id", Value::Int(i64::from(correlation_id)));
        header.push("client_id", Value::String("sasl-test".into()));
        header
    }

    fn request(key: i16, version: i16, correlation_id: i32, body: Struct) -> Bytes {
        Bytes::from(
            frame::encode_request(key, version, &header(correlation_id), &body).expect("encode"),
        )
    }

    fn response(key: i16, version: i16, correlation_id: i32, body: Struct) -> Bytes {
        let mut header = Struct::default();
        header.push("correlation_id", Value::Int(i64::from(correlation_id)));
        Bytes::from(frame::encode_response(key, version, &header, &body).expect("encode"))
    }

    fn body(fields: Vec<(&'static str, Value)>) -> Struct {
        let mut body = Struct::default();
        for (name, value) in fields {
            body.push(name, value);
        }
        body
    }

    fn raw_token(token: &[u8]) -> Bytes {
        let mut out = (token.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(token);
        Bytes::from(out)
    }

    /// SaslHandshake with correlation id 0 (kcat's frames start at 1).
    fn handshake(mechanism: &str, version: i16) -> Vec<(bool, Bytes)> {
        vec![
            (
                true,
                request(
                    17,
                    version,
                    0,
                    body(vec![("mechanism", Value::String(mechanism.into()))]),
                ),
            ),
            (
                false,
                response(
                    17,
                    version,
                    0,
                    body(vec![
                        ("error_code", Value::Int(0)),
                        (
                            "mechanisms",
                            Value::Array(vec![Value::String(mechanism.into())]),
                        ),
                    ]),
                ),
            ),
        ]
    }

    #[test]
    fn raw_sasl_plain_after_handshake_v0() {
        let mut frames = handshake("PLAIN", 0);
        frames.push((true, raw_token(b"\0alice\0alice-secret")));
        frames.push((false, raw_token(b"")));
        // Kafka framing resumes: kcat's ApiVersions and Metadata.
        frames.extend(kcat_frames().into_iter().take(6));
        let mut wire = Wire::new(true);
        feed(&mut wire, &frames, 1460);
        let result = run(wire.segments);
        assert_eq!(result.losses, LossCounters::default());
        let outline = outline(&result.exchanges);
        assert_eq!(outline.len(), 5);
        assert_eq!(outline[0], (17, 0, 0, ExchangeState::Complete));
        assert_eq!(outline[1], (17, 0, -1, ExchangeState::Complete));
        assert!(outline[2..]
            .iter()
            .all(|entry| entry.3 == ExchangeState::Complete));
        let raw = result
            .exchanges
            .iter()
            .find(|e| e.correlation_id == -1)
            .expect("raw");
        let sasl = raw.sasl.as_ref().expect("decoded tokens");
        assert_eq!(sasl.framing, SaslFraming::Raw);
        assert_eq!(sasl.mechanism.as_deref(), Some("PLAIN"));
        assert_eq!(
            sasl.line(),
            "PLAIN plain user=alice password=<redacted 12 bytes> -> empty"
        );
        let request = raw.request.as_ref().expect("client token");
        assert!(
            request.frame.body_bytes().is_empty(),
            "the token bytes are hidden"
        );
        assert_eq!(request.frame.size, 4 + 19);
    }

    #[test]
    fn raw_sasl_scram_takes_two_round_trips() {
        let mut frames = handshake("SCRAM-SHA-256", 0);
        let client_first = b"n,,n=alice,r=rOprNGfwEbeRWgbNEkqO";
        let server_first = b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let client_final = b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
        let server_final = b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";
        for (from_client, token) in [
            (true, &client_first[..]),
            (false, &server_first[..]),
            (true, &client_final[..]),
            (false, &server_final[..]),
        ] {
            frames.push((from_client, raw_token(token)));
        }
        frames.extend(kcat_frames().into_iter().take(2));
        let mut wire = Wire::new(true);
        feed(&mut wire, &frames, 1460);
        let result = run(wire.segments);
        let lines: Vec<String> = result
            .exchanges
            .iter()
            .filter_map(|e| e.sasl.as_deref().map(SaslExchange::line))
            .collect();
        assert_eq!(
            lines,
            vec![
                "SCRAM-SHA-256 client-first user=alice nonce=rOprNGfwEbeRWgbNEkqO -> \
                 server-first salt=W22ZaJ0SNY7soEsUEjb6gQ== iterations=4096"
                    .to_owned(),
                "SCRAM-SHA-256 client-final proof=<redacted 44 bytes> -> \
                 server-final verifier=<redacted 44 bytes>"
                    .to_owned(),
            ]
        );
        let apis: Vec<i16> = outline(&result.exchanges).iter().map(|e| e.0).collect();
        assert_eq!(apis, vec![17, 17, 17, 18]);
        assert_eq!(complete_count(&result.exchanges), 4);
        assert_eq!(result.losses, LossCounters::default());
    }

    #[test]
    fn sasl_authenticate_tokens_are_decoded_and_redacted() {
        let mut frames = handshake("PLAIN", 1);
        let token = Value::Bytes(Bytes::from_static(b"\0bob\0bob-secret"));
        frames.push((true, request(36, 1, 2, body(vec![("auth_bytes", token)]))));
        frames.push((
            false,
            response(
                36,
                1,
                2,
                body(vec![
                    ("error_code", Value::Int(0)),
                    ("auth_bytes", Value::Bytes(Bytes::new())),
                    ("session_lifetime_ms", Value::Int(3_600_000)),
                ]),
            ),
        ));
        for show_secrets in [false, true] {
            let mut wire = Wire::new(true);
            feed(&mut wire, &frames, 1460);
            let options = AnalyzerOptions {
                show_secrets,
                ..AnalyzerOptions::default()
            };
            let result = run_with(wire.segments, options);
            let authenticate = result
                .exchanges
                .iter()
                .find(|e| e.api_key == SASL_AUTHENTICATE_KEY)
                .expect("SaslAuthenticate");
            assert_eq!(authenticate.state, ExchangeState::Complete);
            let sasl = authenticate.sasl.as_ref().expect("decoded");
            assert_eq!(sasl.framing, SaslFraming::Authenticate);
            let body = authenticate
                .request
                .as_ref()
                .and_then(|m| m.frame.body.as_ref());
            let auth_bytes = body.and_then(|body| body.get("auth_bytes")).expect("field");
            if show_secrets {
                assert_eq!(
                    sasl.line(),
                    "PLAIN plain user=bob password=bob-secret -> empty"
                );
                assert!(matches!(auth_bytes, Value::Bytes(_)));
            } else {
                assert_eq!(
                    sasl.line(),
                    "PLAIN plain user=bob password=<redacted 10 bytes> -> empty"
                );
                assert_eq!(auth_bytes, &Value::String("<redacted: 15 bytes>".into()));
                let request = authenticate.request.as_ref().expect("request");
                assert!(request.frame.body_bytes().is_empty());
            }
        }
    }

    /// A TLS 1.3 ClientHello record header and the start of its body
    /// (RFC 8446 section 4.1.2), then random-looking bytes.
    fn client_hello() -> Vec<u8> {
        let mut hello = vec![
            0x16, 0x03, 0x01, 0x00, 0xf8, 0x01, 0x00, 0x00, 0xf4, 0x03, 0x03,
        ];
        hello.extend((0..245u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8));
        hello
    }

    #[test]
    fn tls_is_marked_encrypted_not_undecodable() {
        let mut wire = Wire::new(true);
        wire.send(true, &client_hello(), 1460);
        let mut server_hello = vec![
            0x16, 0x03, 0x03, 0x00, 0x7a, 0x02, 0x00, 0x00, 0x76, 0x03, 0x03,
        ];
        server_hello.extend(std::iter::repeat_n(0x5a, 0x76));
        wire.send(false, &server_hello, 1460);
        let application: Vec<u8> = [0x17, 0x03, 0x03, 0x00, 0x20]
            .into_iter()
            .chain(std::iter::repeat_n(0x99, 0x20))
            .collect();
        for _ in 0..5 {
            wire.send(true, &application, 1460);
            wire.send(false, &application, 1460);
        }
        let result = run(wire.segments);
        assert!(result.exchanges.is_empty());
        assert_eq!(result.losses, LossCounters::default());
        let connection = &result.connections[0];
        assert_eq!(connection.kind, ConnectionKind::Tls);
        assert_eq!(connection.client, SocketAddr::from(CLIENT));
        assert!(connection.bytes_to_broker > 256);
    }

    #[test]
    fn tls_joined_mid_stream_is_recognised() {
        let mut wire = Wire::new(false);
        let application: Vec<u8> = [0x17, 0x03, 0x03, 0x00, 0x40]
            .into_iter()
            .chain((0..0x40u32).map(|i| (i * 37) as u8))
            .collect();
        wire.send(true, &application[7..], 1460);
        for _ in 0..4 {
            wire.send(true, &application, 1460);
            wire.send(false, &application, 1460);
        }
        let result = run(wire.segments);
        assert_eq!(result.connections[0].kind, ConnectionKind::Tls);
        assert_eq!(result.losses.undecodable_frames, 0);
        assert_eq!(result.losses.resync_bytes, 0);
    }

    #[test]
    fn other_protocols_are_left_alone() {
        let mut wire = Wire::new(true);
        wire.send(true, b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n", 1460);
        wire.send(
            false,
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi",
            1460,
        );
        let result = run(wire.segments);
        assert!(result.exchanges.is_empty());
        assert_eq!(result.connections[0].kind, ConnectionKind::Unknown);
        assert_eq!(result.losses, LossCounters::default());
    }

    #[test]
    fn acks_zero_produce_expects_no_response() {
        // python3-kafka's acks=0 Produce v7 from the corpus.
        let produce = fixture("python-acks0.frames")[0].1.clone();
        let mut frames = vec![(true, produce.clone())];
        frames.extend(kcat_frames().into_iter().take(2));
        let mut wire = Wire::new(true);
        feed(&mut wire, &frames, 1460);
        let result = run(wire.segments);
        let outline = outline(&result.exchanges);
        assert_eq!(outline[0].0, 0);
        assert_eq!(outline[0].3, ExchangeState::NoResponseExpected);
        assert_eq!(outline[1].3, ExchangeState::Complete);
        // Emitted once a later response showed none was coming.
        assert_eq!(result.exchanges[0].api_key, 0);
        // The mock cluster answers acks=0 anyway: that pairs.
        let mut wire = Wire::new(true);
        feed(&mut wire, &fixture("python-acks0.frames"), 1460);
        let result = run(wire.segments);
        assert_eq!(result.exchanges.len(), 1);
        assert_eq!(result.exchanges[0].state, ExchangeState::Complete);
    }

    #[test]
    fn acks_zero_produce_is_handed_out_after_a_grace_time() {
        let produce = fixture("python-acks0.frames")[0].1.clone();
        let mut wire = Wire::new(true);
        wire.send(true, &produce, 1460);
        wire.ts_ns += 2 * ACKS0_GRACE_NS;
        wire.send(true, &kcat_frames()[0].1, 1460);
        let mut analyzer = Analyzer::new(AnalyzerOptions::default());
        let mut out = Vec::new();
        for segment in wire.segments {
            analyzer.push_segment(segment, &mut out);
        }
        // Before the end of the capture, with no response in sight.
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].state, ExchangeState::NoResponseExpected);
    }

    #[test]
    fn gssapi_tokens_stay_raw_until_the_client_speaks_kafka_again() {
        let mut frames = handshake("GSSAPI", 0);
        for round in 0..3u8 {
            frames.push((true, raw_token(&[0x60, 0x82, round, 0x01, 0x02, 0x03])));
            frames.push((false, raw_token(&[0x60, 0x81, round, 0x05])));
        }
        frames.extend(kcat_frames().into_iter().take(4));
        let mut wire = Wire::new(true);
        feed(&mut wire, &frames, 1460);
        let result = run(wire.segments);
        let outline = outline(&result.exchanges);
        let keys: Vec<(i16, i32)> = outline.iter().map(|entry| (entry.0, entry.2)).collect();
        assert_eq!(
            keys,
            vec![(17, 0), (17, -1), (17, -1), (17, -1), (18, 1), (18, 2)]
        );
        assert_eq!(complete_count(&result.exchanges), 6);
        let token = result.exchanges[1].sasl.as_ref().expect("token");
        assert_eq!(
            token.line(),
            "GSSAPI token <redacted 6 bytes> -> token <redacted 4 bytes>"
        );
        assert_eq!(result.losses, LossCounters::default());
    }

    #[test]
    fn port_hints_find_a_broker_that_only_answers() {
        // No SYN, no requests: only the hint says which side is the broker.
        let responses: Vec<(bool, Bytes)> = kcat_frames()
            .into_iter()
            .filter(|(request, _)| !request)
            .collect();
        let mut wire = Wire::new(false);
        wire.send(false, &responses[1].1[5..], 1460);
        for (_, bytes) in &responses[2..] {
            wire.send(false, bytes, 1460);
        }
        let hinted = AnalyzerOptions {
            port_hints: vec![BROKER.1],
            ..AnalyzerOptions::default()
        };
        let result = run_with(wire.segments.clone(), hinted);
        assert_eq!(result.connections[0].kind, ConnectionKind::Kafka);
        assert_eq!(result.connections[0].broker, SocketAddr::from(BROKER));
        assert!(result.exchanges.iter().filter(|e| e.inferred).count() >= 4);
        let unhinted = run(wire.segments);
        assert_eq!(unhinted.connections[0].kind, ConnectionKind::Unknown);
        assert!(unhinted.exchanges.is_empty());
    }

    #[test]
    fn a_broker_seen_with_its_syn_counts_as_hinted_elsewhere() {
        // The connection of `port_hints_find_a_broker_that_only_answers`,
        // after one whose SYN shows which address is the broker.
        let frames = kcat_frames();
        let mut earlier = Wire::new(true);
        feed(&mut earlier, &frames[..2], 1460);
        let mut late = Wire::new(false);
        let responses: Vec<&Bytes> = frames
            .iter()
            .filter(|(request, _)| !request)
            .map(|(_, bytes)| bytes)
            .collect();
        late.send(false, &responses[1][5..], 1460);
        for bytes in &responses[2..] {
            late.send(false, bytes, 1460);
        }
        let other_client = SocketAddr::from((CLIENT.0, CLIENT.1 + 1));
        for segment in &mut late.segments {
            segment.packet += earlier.packet;
            segment.dst = other_client;
        }
        let result = run([earlier.segments, late.segments].concat());
        let joined = &result.connections[1];
        assert_eq!(joined.kind, ConnectionKind::Kafka);
        assert_eq!(joined.broker, SocketAddr::from(BROKER));
        let inferred = result.exchanges.iter().filter(|e| e.inferred);
        assert!(inferred.filter(|e| e.client == other_client).count() >= 4);
    }

    #[test]
    fn frames_larger_than_the_buffer_bound_are_skipped_with_their_header() {
        let frames = kcat_frames();
        let mut wire = Wire::new(true);
        feed(&mut wire, &frames, 100);
        let options = AnalyzerOptions {
            max_buffered: 150,
            ..AnalyzerOptions::default()
        };
        let result = run_with(wire.segments, options);
        let big: Vec<usize> = frames
            .iter()
            .filter(|f| f.1.len() > 150)
            .map(|f| f.1.len())
            .collect();
        assert!(!big.is_empty());
        assert_eq!(result.losses.frames_too_large, big.len() as u64);
        assert_eq!(result.losses.frames_lost, 0);
        let requests = frames.iter().filter(|(r, _)| *r).count();
        assert_eq!(result.exchanges.len(), requests);
        let responses = frames.len() - requests;
        assert_eq!(complete_count(&result.exchanges), responses);
        let skipped: Vec<&Message> = result
            .exchanges
            .iter()
            .flat_map(|e| [e.request.as_deref(), e.response.as_deref()])
            .flatten()
            .filter(|message| message.missing_bytes > 0)
            .collect();
        assert_eq!(skipped.len(), big.len());
        assert!(skipped.iter().all(|m| m.frame.correlation_id.is_some()));
    }

    #[test]
    fn outstanding_requests_are_bounded() {
        let request = kcat_frames()[4].1.clone();
        let mut wire = Wire::new(true);
        let mut analyzer = Analyzer::new(AnalyzerOptions::default());
        let mut out = Vec::new();
        for segment in std::mem::take(&mut wire.segments) {
            analyzer.push_segment(segment, &mut out);
        }
        for correlation in 0..(MAX_OUTSTANDING as i32 + 10) {
            let mut bytes = request.to_vec();
            bytes[8..12].copy_from_slice(&correlation.to_be_bytes());
            wire.send(true, &bytes, 1460);
            for segment in std::mem::take(&mut wire.segments) {
                analyzer.push_segment(segment, &mut out);
            }
        }
        assert_eq!(out.len(), 10, "the oldest are handed out as unanswered");
        assert!(out
            .iter()
            .all(|e| e.state == ExchangeState::ResponseMissing));
        analyzer.finish(&mut out);
        assert_eq!(out.len(), MAX_OUTSTANDING + 10);
        assert_eq!(analyzer.shared.buffered, 0);
    }

    /// A tiny deterministic generator for the robustness tests.
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            self.0 >> 33
        }

        fn below(&mut self, bound: usize) -> usize {
            (self.next() % bound.max(1) as u64) as usize
        }
    }

    #[test]
    fn mangled_input_never_panics_and_frees_its_buffers() {
        let frames = kcat_frames();
        let mut rng = Lcg(7);
        for round in 0..300 {
            let mut wire = Wire::new(round % 2 == 0);
            for (from_client, bytes) in &frames {
                let mut bytes = bytes.to_vec();
                match rng.below(6) {
                    0 if !bytes.is_empty() => {
                        let at = rng.below(bytes.len());
                        bytes[at] = rng.next() as u8;
                    }
                    1 => {
                        let at = rng.below(bytes.len());
                        bytes.truncate(at);
                    }
                    2 => bytes.extend((0..rng.below(40)).map(|_| rng.next() as u8)),
                    _ => {}
                }
                if rng.below(8) == 0 {
                    wire.lose(*from_client, rng.below(50));
                }
                let mss = 1 + rng.below(200);
                wire.send(*from_client, &bytes, mss);
            }
            // Decoded into trees, skimmed (as `kwire read` lines are) and
            // skimmed into JSON (as `kwire read --json` is): all must read
            // the same, and the JSON must be the trees'.
            // Id, API, summary, decode error and (where there is one to
            // show) the exchange's JSON.
            type Read = (u64, i16, String, Option<String>, Option<String>);
            let mut seen: Vec<Vec<Read>> = Vec::new();
            // And headers only, with the JSON made afterwards, as
            // `kwire read --json` does on worker threads.
            for (skim, json, json_later) in [
                (false, false, false),
                (true, false, false),
                (true, true, false),
                (true, true, true),
            ] {
                let mut options = AnalyzerOptions {
                    max_frame: 1 << 16,
                    json_later,
                    ..AnalyzerOptions::default()
                };
                options.decode.skim = skim;
                options.decode.json = json;
                let later = options.decode;
                let mut analyzer = Analyzer::new(options);
                let mut out = Vec::new();
                for segment in wire.segments.clone() {
                    analyzer.push_segment(segment, &mut out);
                }
                analyzer.finish(&mut out);
                assert_eq!(analyzer.shared.buffered, 0, "round {round}");
                if json_later {
                    out.iter_mut()
                        .for_each(|exchange| decode_for_json(exchange, &later));
                }
                let read: Vec<_> = out
                    .iter()
                    .map(|exchange| {
                        let summary = exchange.summary();
                        // A skimmed body without JSON keeps no tree to show.
                        let shown = (skim == json).then(|| {
                            let mut w = JsonWriter::in_memory();
                            crate::display::write_exchange_json(&mut w, exchange, &summary, 0);
                            String::from_utf8_lossy(&w.into_bytes()).into_owned()
                        });
                        (
                            exchange.id,
                            exchange.api_key,
                            summary.line(),
                            exchange.decode_error(),
                            shown,
                        )
                    })
                    .collect();
                seen.push(read);
            }
            let unshown = |read: &Vec<Read>| {
                read.iter()
                    .map(|(id, api, line, error, _)| (*id, *api, line.clone(), error.clone()))
                    .collect::<Vec<_>>()
            };
            assert_eq!(
                unshown(&seen[0]),
                unshown(&seen[1]),
                "round {round}: skimmed and decoded differ"
            );
            assert_eq!(seen[0], seen[2], "round {round}: JSON differs");
            assert_eq!(seen[2], seen[3], "round {round}: JSON made later differs");
        }
        // Pure noise, both directions.
        for round in 0..100 {
            let mut wire = Wire::new(round % 2 == 0);
            for _ in 0..20 {
                let noise: Vec<u8> = (0..rng.below(300)).map(|_| rng.next() as u8).collect();
                wire.send(rng.below(2) == 0, &noise, 1 + rng.below(100));
            }
            let result = run(wire.segments);
            let _ = result.connections;
        }
    }

    /// Exchanges handed back ([`recycle`]) as soon as they are read give
    /// their boxes and summary buffers to the next ones, which must come
    /// out exactly as freshly made ones do, on every corpus capture.
    #[test]
    fn recycled_exchanges_leave_no_trace_in_later_ones() {
        let mut options = AnalyzerOptions::default();
        options.decode.skim = true;
        options.decode.records = RecordsMode::HeadersOnly;
        let captures = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/captures");
        let paths = crate::capture::tests::capture_files(&captures);
        assert!(paths.len() >= 10, "{paths:?}");
        for path in &paths {
            let read = |recycling: bool| {
                let mut shown = Vec::new();
                read_capture(path, options.clone(), |exchange| {
                    shown.push(format!("{exchange:?}"));
                    if recycling {
                        recycle(exchange);
                    }
                })
                .expect("the capture reads");
                shown
            };
            let fresh = read(false);
            assert!(!fresh.is_empty(), "{}", path.display());
            assert_eq!(read(true), fresh, "{}", path.display());
        }
    }
}
