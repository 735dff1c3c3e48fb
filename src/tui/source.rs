//! Where the TUI's exchanges come from: a capture file read on a named
//! thread (`kwire-reader`), optionally replayed at its original pace, or a
//! live interface read on one thread (`kwire-capture`) and analysed on
//! another (`kwire-analyzer`). Each hands [`Update`]s to the UI over a
//! bounded channel; the UI owns everything it receives.
//!
//! A file is never dropped from: when the UI falls behind, the reader
//! waits. A live capture cannot wait, so the capture thread hands packets
//! over with `try_send` and counts what does not fit (queue drops), next
//! to libpcap's kernel and interface drops.
//!
//! Batches are flushed soon after the first exchanges (so the first screen
//! shows them at once), then every few thousand rows or 50 ms; stats,
//! connections and groups are sent as a snapshot twice a second and at the
//! end.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::capture::live::{LiveCapture, PcapDrops};
use crate::capture::{parse_tcp, CaptureError, CaptureReader, LinkType, RawPacket};
use crate::codec::RecordsMode;
use crate::exchange::Exchange;
use crate::session::{Analyzer, AnalyzerOptions, CaptureReport};
use crate::stats::Stats;

use super::groups::Groups;
use super::index::{Batch, IndexLimits, Ingest};

/// Drops, each cause apart.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Drops {
    /// The kernel's capture buffer was full (libpcap `ps_drop`).
    pub kernel: u64,
    /// The interface or its driver dropped them (libpcap `ps_ifdrop`).
    pub interface: u64,
    /// kwire's queue between capture and analysis was full.
    pub queue: u64,
}

/// How far the source got.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    pub packets: u64,
    /// Bytes of the file read so far (records and their headers).
    pub bytes: u64,
    /// The file's size; None for live captures.
    pub total: Option<u64>,
    pub first_ns: Option<i64>,
    pub last_ns: Option<i64>,
    /// The source has nothing more to give.
    pub done: bool,
    /// What ended the source early, if anything.
    pub error: Option<String>,
    pub drops: Drops,
    pub live: bool,
}

/// Everything besides the rows, as of the moment it was taken.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub stats: Stats,
    pub report: CaptureReport,
    pub groups: Groups,
}

#[derive(Debug)]
pub enum Update {
    Batch(Batch),
    Progress(Progress),
    Snapshot(Box<Snapshot>),
}

#[derive(Clone, Debug, Default)]
pub struct SourceOptions {
    pub analyzer: AnalyzerOptions,
    pub limits: IndexLimits,
    /// Replay a file at its capture pace, this many times faster.
    pub replay: Option<f64>,
}

/// Rows in the first batch: small, so that the first screen comes at once.
const FIRST_BATCH: usize = 64;
const BATCH_ROWS: usize = 4096;
const BATCH_BYTES: usize = 1 << 20;
const BATCH_EVERY: Duration = Duration::from_millis(50);
const SNAPSHOT_EVERY: Duration = Duration::from_millis(500);
/// Packets the capture thread may queue for the analyzer.
pub const PACKET_QUEUE: usize = 16_384;
/// Updates queued for the UI.
pub const UPDATE_QUEUE: usize = 64;

/// The analysis shared by every source: packets in, updates out.
pub struct Pipeline {
    analyzer: Analyzer,
    ingest: Ingest,
    stats: Stats,
    groups: Groups,
    link: LinkType,
    out: Vec<Exchange>,
    progress: Progress,
    sent_rows: u64,
    last_batch: Instant,
    last_snapshot: Instant,
    tx: SyncSender<Update>,
}

/// The UI went away: stop.
#[derive(Debug)]
pub struct Disconnected;

impl Pipeline {
    pub fn new(
        options: &SourceOptions,
        link: LinkType,
        total: Option<u64>,
        tx: SyncSender<Update>,
    ) -> Pipeline {
        let now = Instant::now();
        // Rows need record counts and bytes, not the records: the detail
        // decodes them again when shown.
        let mut analyzer = options.analyzer.clone();
        if analyzer.decode.records == RecordsMode::Full {
            analyzer.decode.records = RecordsMode::HeadersOnly;
        }
        Pipeline {
            analyzer: Analyzer::new(analyzer),
            ingest: Ingest::new(options.limits, options.analyzer.show_secrets),
            stats: Stats::new(),
            groups: Groups::new(),
            link,
            out: Vec::new(),
            progress: Progress {
                total,
                live: total.is_none(),
                ..Progress::default()
            },
            sent_rows: 0,
            last_batch: now,
            last_snapshot: now,
            tx,
        }
    }

    pub fn push(&mut self, packet: &RawPacket) -> Result<(), Disconnected> {
        self.progress.packets += 1;
        // A classic pcap record has a 16-byte header.
        self.progress.bytes += 16 + u64::from(packet.caplen);
        self.progress.first_ns.get_or_insert(packet.ts_ns);
        self.progress.last_ns = Some(packet.ts_ns);
        match parse_tcp(self.link, packet) {
            Ok(segment) => self.analyzer.push_segment(segment, &mut self.out),
            Err(_) if packet.caplen < packet.origlen => self.analyzer.note_truncated(),
            Err(reason) => self.analyzer.note_skipped(&reason),
        }
        self.take_exchanges();
        self.tick()
    }

    fn take_exchanges(&mut self) {
        for exchange in self.out.drain(..) {
            let summary = exchange.summary();
            self.stats.add_with(&exchange, &summary);
            self.groups.add(&exchange);
            self.ingest.add(&exchange, &summary);
        }
    }

    pub fn note_read_error(&mut self, message: String) {
        self.analyzer.note_truncated();
        self.progress.error = Some(message);
    }

    pub fn set_drops(&mut self, drops: Drops) {
        self.progress.drops = drops;
    }

    /// Sends what is due: a batch when big or old enough, a snapshot twice
    /// a second.
    pub fn tick(&mut self) -> Result<(), Disconnected> {
        let now = Instant::now();
        let pending = self.ingest.pending();
        let due = (self.sent_rows == 0 && pending >= FIRST_BATCH)
            || pending >= BATCH_ROWS
            || self.ingest.pending_bytes() >= BATCH_BYTES
            || now.duration_since(self.last_batch) >= BATCH_EVERY;
        if due {
            self.flush(now)?;
        }
        if now.duration_since(self.last_snapshot) >= SNAPSHOT_EVERY {
            self.snapshot(now)?;
        }
        Ok(())
    }

    fn flush(&mut self, now: Instant) -> Result<(), Disconnected> {
        self.last_batch = now;
        if self.ingest.pending() > 0 {
            let batch = self.ingest.take();
            self.sent_rows += batch.rows.len() as u64;
            self.send(Update::Batch(batch))?;
        }
        self.send(Update::Progress(self.progress.clone()))
    }

    fn report(&self) -> CaptureReport {
        CaptureReport {
            packets: self.progress.packets,
            bytes: self.progress.bytes,
            losses: self.analyzer.losses(),
            connections: self.analyzer.connections(),
            connections_omitted: self.analyzer.connections_omitted(),
            link_type: self.link,
            read_error: self.progress.error.clone(),
            first_ts_ns: self.progress.first_ns,
        }
    }

    fn snapshot(&mut self, now: Instant) -> Result<(), Disconnected> {
        self.last_snapshot = now;
        let snapshot = Snapshot {
            stats: self.stats.clone(),
            report: self.report(),
            groups: self.groups.clone(),
        };
        self.send(Update::Snapshot(Box::new(snapshot)))
    }

    fn send(&self, update: Update) -> Result<(), Disconnected> {
        self.tx.send(update).map_err(|_| Disconnected)
    }

    /// Ends the source: the analyzer flushes what it holds, and the last
    /// batch, progress and snapshot go out.
    pub fn finish(mut self) {
        self.analyzer.finish(&mut self.out);
        self.take_exchanges();
        self.progress.done = true;
        let now = Instant::now();
        let _ = self.flush(now).and_then(|()| self.snapshot(now));
    }
}

/// Reads a capture file on the `kwire-reader` thread.
pub fn spawn_file(
    path: &Path,
    options: SourceOptions,
    tx: SyncSender<Update>,
    stop: Arc<AtomicBool>,
) -> Result<JoinHandle<()>, CaptureError> {
    let reader = CaptureReader::open(path)?;
    // A compressed file's size says nothing of how far the read is.
    let total = std::fs::metadata(path)
        .ok()
        .map(|m| m.len())
        .filter(|n| *n > 0 && crate::capture::compression_of(path).is_none());
    let handle = std::thread::Builder::new()
        .name("kwire-reader".to_owned())
        .spawn(move || read_file(reader, options, total, tx, &stop))
        .map_err(|source| CaptureError::Open {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(handle)
}

fn read_file(
    mut reader: CaptureReader,
    options: SourceOptions,
    total: Option<u64>,
    tx: SyncSender<Update>,
    stop: &AtomicBool,
) {
    let mut pipeline = Pipeline::new(&options, reader.link_type(), total, tx);
    pipeline.progress.bytes = 24;
    let mut pace = options.replay.map(Pace::new);
    pipeline.progress.live = pace.is_some();
    while let Some(next) = reader.next_packet() {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        match next {
            Ok(packet) => {
                if let Some(pace) = pace.as_mut() {
                    if pace.wait(packet.ts_ns, stop, &mut pipeline).is_err() {
                        return;
                    }
                }
                if pipeline.push(&packet).is_err() {
                    return;
                }
            }
            Err(error) => pipeline.note_read_error(error.to_string()),
        }
    }
    pipeline.finish();
}

/// Replay pacing: a packet is handed on when as much time has passed since
/// the first one, divided by the speed, as passed in the capture.
struct Pace {
    speed: f64,
    start: Instant,
    first_ns: Option<i64>,
}

impl Pace {
    fn new(speed: f64) -> Pace {
        Pace {
            speed: if speed.is_finite() && speed > 0.0 {
                speed
            } else {
                1.0
            },
            start: Instant::now(),
            first_ns: None,
        }
    }

    fn wait(
        &mut self,
        ts_ns: i64,
        stop: &AtomicBool,
        pipeline: &mut Pipeline,
    ) -> Result<(), Disconnected> {
        let first = *self.first_ns.get_or_insert(ts_ns);
        let offset = (ts_ns.saturating_sub(first)).max(0) as f64 / self.speed;
        let due = self.start + Duration::from_secs_f64(offset / 1e9);
        // Sleep in short steps, flushing, so that the UI stays current and
        // a stop request is seen.
        loop {
            let now = Instant::now();
            if now >= due || stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            pipeline.tick()?;
            std::thread::sleep((due - now).min(Duration::from_millis(20)));
        }
    }
}

/// Counters the capture thread shares with the analyzer thread.
#[derive(Debug, Default)]
pub struct LiveCounters {
    pub kernel: AtomicU64,
    pub interface: AtomicU64,
    pub queue: AtomicU64,
}

impl LiveCounters {
    pub fn drops(&self) -> Drops {
        Drops {
            kernel: self.kernel.load(Ordering::Relaxed),
            interface: self.interface.load(Ordering::Relaxed),
            queue: self.queue.load(Ordering::Relaxed),
        }
    }

    fn set_pcap(&self, drops: PcapDrops) {
        self.kernel.store(drops.kernel, Ordering::Relaxed);
        self.interface.store(drops.interface, Ordering::Relaxed);
    }
}

/// The capture thread's handle: its result is the read error that ended it.
pub type CaptureThread = JoinHandle<Result<(), String>>;

/// Reads a live capture on the `kwire-capture` thread: packets go to the
/// returned receiver with `try_send`; what does not fit is counted in
/// `counters.queue`. A read error ends the thread, and is its result.
pub fn spawn_capture(
    mut capture: LiveCapture,
    counters: Arc<LiveCounters>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<(Receiver<RawPacket>, CaptureThread)> {
    let (tx, rx) = std::sync::mpsc::sync_channel(PACKET_QUEUE);
    let handle = std::thread::Builder::new()
        .name("kwire-capture".to_owned())
        .spawn(move || {
            let mut last_stats = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                let packet = capture.next_packet().map_err(|e| e.to_string())?;
                if let Some(packet) = packet {
                    match tx.try_send(packet) {
                        Ok(()) => {}
                        Err(TrySendError::Full(_)) => {
                            counters.queue.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(TrySendError::Disconnected(_)) => return Ok(()),
                    }
                }
                if last_stats.elapsed() >= Duration::from_millis(250) {
                    last_stats = Instant::now();
                    counters.set_pcap(capture.drops());
                }
            }
            counters.set_pcap(capture.drops());
            Ok(())
        })?;
    Ok((rx, handle))
}

/// Analyses live packets on the `kwire-analyzer` thread.
pub fn spawn_live_analyzer(
    packets: Receiver<RawPacket>,
    link: LinkType,
    options: SourceOptions,
    counters: Arc<LiveCounters>,
    tx: SyncSender<Update>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("kwire-analyzer".to_owned())
        .spawn(move || {
            let mut pipeline = Pipeline::new(&options, link, None, tx);
            loop {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                pipeline.set_drops(counters.drops());
                let result = match packets.recv_timeout(Duration::from_millis(50)) {
                    Ok(packet) => pipeline.push(&packet),
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => pipeline.tick(),
                    Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
                };
                if result.is_err() {
                    return;
                }
            }
            pipeline.finish();
        })
}
