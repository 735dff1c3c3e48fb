//! `kwire read`: analyses a capture file (or stdin) and prints one line per
//! request/response exchange, NDJSON with `--json`, or only a statistics
//! report with `--stats`; `--filter` chooses the exchanges and `--write`
//! saves their packets to a new pcap file. This module owns the output
//! formats and the progress bar; the analysis is `kwire::session`'s.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::ops::ControlFlow;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use kwire::capture::{parse_tcp, CaptureError, CaptureReader, LinkType, PcapWriter, RawPacket};
use kwire::codec::RecordsMode;
use kwire::display::{push_rfc3339_micros, write_exchange_json};
use kwire::exchange::{
    push_int, push_uint, push_uint_zero_padded, Exchange, ExchangeState, Summary,
};
use kwire::filter::{self, Filter};
use kwire::frame::ApiName;
use kwire::json::{decimal_len, JsonWriter};
use kwire::session::read_capture_with;
use kwire::stats::{write_duration, write_quoted_if_needed, Stats};

use super::json_workers::{JsonWorkers, Work, BATCH_EXCHANGES, DIRECT_BODY_MIN};

#[derive(clap::Args)]
pub struct Args {
    /// The capture file, pcap or pcapng, plain or compressed whole with
    /// gzip or zstd; `-` reads (plain) stdin.
    file: PathBuf,
    /// Print NDJSON, one object per exchange (with --stats, the report as
    /// JSON).
    #[arg(long)]
    json: bool,
    /// Keep only the exchanges matching EXPR, for example
    /// `api=Produce and topic=orders`, `error!=NONE` or `latency>50ms`.
    #[arg(long, value_name = "EXPR")]
    filter: Option<String>,
    /// Print only a statistics report once the whole capture is read,
    /// instead of the exchanges. API, error, topic and client tables count
    /// the exchanges --filter keeps; connections and losses are the whole
    /// capture's.
    #[arg(long)]
    stats: bool,
    /// A port Kafka brokers listen on: a hint where content is ambiguous
    /// (repeatable, or comma-separated).
    #[arg(long = "port", value_name = "PORT", value_delimiter = ',')]
    ports: Vec<u16>,
    /// Stop after N exchanges kept (shown, counted in --stats, or written
    /// by --write), as tshark's -c stops after N packets.
    #[arg(short = 'c', long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    count: Option<u64>,
    /// Also write the packets of the kept exchanges to OUT.pcap (needs a
    /// file: the capture is read a second time).
    #[arg(long, value_name = "OUT.pcap")]
    write: Option<PathBuf>,
    #[command(flatten)]
    decoding: super::DecodeFlags,
    /// What the time column of text lines shows: seconds since the first
    /// packet, the date and time in UTC, or seconds since the Unix epoch
    /// (as tshark's -t r, -t ud and -t e).
    #[arg(long, value_enum, default_value_t = TimeColumn::Relative)]
    time: TimeColumn,
    /// Never draw the progress bar.
    #[arg(long)]
    no_progress: bool,
    /// Threads that decode bodies into --json output, the one reading the
    /// capture included (default: the cores available, at most 4). With
    /// 1, or when stdout is a terminal, the reading thread does it all;
    /// the output is the same either way.
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// Exchanges in a batch for the --json worker threads; small batches
    /// let the tests put many out of order.
    #[arg(long, hide = true, default_value_t = BATCH_EXCHANGES)]
    json_batch: usize,
    /// Bytes of a body's JSON from which the reading thread, not a worker,
    /// writes the exchange; small values let the tests take that path.
    #[arg(long, hide = true, default_value_t = DIRECT_BODY_MIN)]
    json_direct_min: usize,
}

/// The time column of text lines, each to the microsecond.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum TimeColumn {
    /// `12.345678`: seconds since the capture's first packet.
    Relative,
    /// `2024-05-01T12:34:56.123456Z`: RFC 3339, in UTC.
    Absolute,
    /// `1714566896.123456`: seconds since the Unix epoch.
    Epoch,
}

/// Most threads --json decodes on by default, the reading thread included.
const DEFAULT_MAX_THREADS: usize = 4;

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let filter = match &args.filter {
        None => Filter::all(),
        Some(text) => filter::parse(text).map_err(|error| {
            let caret = " ".repeat(text.get(..error.position).map_or(0, |s| s.chars().count()));
            anyhow::anyhow!("invalid --filter: {error}\n  {text}\n  {caret}^")
        })?,
    };
    let stdin = args.file.as_os_str() == "-";
    if let Some(out) = &args.write {
        if stdin {
            bail!(
                "--write reads the capture twice and cannot with stdin: \
                 save the capture to a file and give its path"
            );
        }
        if same_file(&args.file, out) {
            bail!(
                "--write {} would overwrite the capture being read",
                out.display()
            );
        }
    }
    // Lines and statistics need record counts and sizes, which batch
    // headers give; only --json shows the records.
    let records = if args.json && !args.stats {
        RecordsMode::Full
    } else {
        RecordsMode::HeadersOnly
    };
    let mut options = args.decoding.analyzer_options(args.ports.clone(), records);
    // Lines, statistics and filters need only what an exchange is about:
    // bodies are skimmed instead of decoded into trees, and NDJSON is
    // written as they are skimmed.
    options.decode.skim = true;
    options.decode.json = args.json && !args.stats;
    let show_progress = !args.no_progress
        && std::io::stderr().is_terminal()
        && (args.stats || !std::io::stdout().is_terminal());
    let mut progress = if show_progress && !stdin {
        Progress::for_file(&args.file)
    } else {
        None
    };

    // A terminal sees each line as it comes; a pipe gets full buffers.
    let interactive = std::io::stdout().is_terminal();
    // NDJSON for a pipe is decoded on worker threads and the reading
    // thread: the session then reads headers only, and the bodies are
    // decoded in batches as it would have.
    let threads = args.threads.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, |n| n.get().min(DEFAULT_MAX_THREADS))
    });
    // The workers filter, so only the reading thread can count what is
    // kept.
    let on_workers = options.decode.json && !interactive && threads > 1 && args.count.is_none();
    options.json_later = on_workers;
    let json_decode = options.decode;
    let mut stdout = std::io::BufWriter::with_capacity(OUTPUT_BUFFER, unbuffered_stdout());
    // NDJSON goes through the JSON writer's own buffer, straight to the
    // descriptor (only --json without --stats writes there).
    let mut json_stdout = unbuffered_stdout();
    let mut json = JsonWriter::to_stream(&mut *json_stdout);
    let mut stats = Stats::new();
    let mut kept = args.write.as_ref().map(|_| KeptPackets::default());
    let mut keep = |exchange: &Exchange| {
        if let Some(kept) = kept.as_mut() {
            kept.add(exchange);
        }
    };
    // Text lines, gathered here up to a buffer's worth (a terminal gets
    // each as it comes) and then written in one go: no second copy into
    // the writer's buffer.
    let mut lines = String::new();
    let mut addresses = AddrCache::new();
    let work = Work {
        decode: &json_decode,
        filter: &filter,
        direct_body_min: args.json_direct_min,
    };
    let (report, failed) = std::thread::scope(|scope| {
        let mut workers =
            on_workers.then(|| JsonWorkers::start(scope, threads - 1, args.json_batch, work));
        // Exchanges still to keep before --count stops the read.
        let mut left = args.count;
        let mut on_exchange =
            |exchange: Exchange, first_ns: i64| -> std::io::Result<ControlFlow<()>> {
                if let Some(workers) = workers.as_mut() {
                    workers.push(exchange, first_ns, &mut json, &mut keep)?;
                    return Ok(ControlFlow::Continue(()));
                }
                let summary = exchange.summary();
                if filter.matches_with(&exchange, Some(&summary)) {
                    if let Some(left) = left.as_mut() {
                        *left = left.saturating_sub(1);
                    }
                    keep(&exchange);
                    if args.stats {
                        stats.add_with(&exchange, &summary);
                    } else if args.json {
                        // The writer's errors are io::Errors, so main sees a
                        // broken pipe as one.
                        write_exchange_json(&mut json, &exchange, &summary, first_ns);
                        json.end_line()?;
                        if interactive {
                            json.flush()?;
                        }
                    } else {
                        let time = Time {
                            column: args.time,
                            first_ns,
                        };
                        write_text_line(&mut lines, &mut addresses, &exchange, &summary, time);
                        lines.push('\n');
                        if interactive || lines.len() >= OUTPUT_BUFFER {
                            stdout.write_all(lines.as_bytes())?;
                            lines.clear();
                        }
                        if interactive {
                            stdout.flush()?;
                        }
                    }
                }
                // Done with, shown or not: its buffers serve the exchanges
                // still to come.
                drop(summary);
                kwire::session::recycle(exchange);
                Ok(match left {
                    Some(0) => ControlFlow::Break(()),
                    _ => ControlFlow::Continue(()),
                })
            };
        let mut failed = None;
        let report = read_capture_with(
            &args.file,
            options,
            |read| {
                if let Some(progress) = progress.as_mut() {
                    // A classic pcap file holds a 24-byte header and 16
                    // bytes before each packet; pcapng a little more, which
                    // the bar can ignore.
                    progress.update(read.packets, 24 + read.bytes + 16 * read.packets);
                }
            },
            |exchange, read| match on_exchange(exchange, read.first_ts_ns.unwrap_or(0)) {
                Ok(flow) => flow,
                Err(error) => {
                    failed = Some(error);
                    ControlFlow::Break(())
                }
            },
        );
        if let (Some(workers), None) = (workers.take(), &failed) {
            failed = workers.finish(&mut json, &mut keep).err();
        }
        (report, failed)
    });
    // The lines gathered so far go out even when the capture then failed,
    // as they would have line by line; not after a failed write.
    let written = match failed {
        None => stdout.write_all(lines.as_bytes()),
        Some(_) => Ok(()),
    };
    let report = report?;
    if let Some(progress) = progress.as_mut() {
        progress.finish();
    }
    if let Some(error) = failed {
        return Err(error.into());
    }
    written?;
    if args.stats {
        if args.json {
            serde_json::to_writer_pretty(&mut stdout, &stats.to_json(&report))
                .map_err(std::io::Error::from)?;
            stdout.write_all(b"\n")?;
        } else {
            stdout.write_all(stats.render_text(&report).as_bytes())?;
        }
    }
    stdout.flush()?;
    json.flush()?;
    if let Some(error) = &report.read_error {
        eprintln!(
            "kwire: warning: {}: the capture ends early ({error}); what came before was analysed",
            args.file.display()
        );
    }
    if let (Some(out), Some(kept)) = (&args.write, &kept) {
        write_packets(&args.file, out, kept)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// One exchange as a line: id, seconds since the first packet, client ->
/// broker, API and version, correlation id, latency, request/response
/// sizes, client id, flags for what is unusual, and the summary (or the
/// SASL step), then a decode error if any:
///
/// ```text
///    16   0.108818       127.0.0.1:54542 -> 127.0.0.1:46775       Produce v7           #4         63us      382B/63B  kwire-corpus-kcat  kcat-snappy[0] 8 records 314 B
/// ```
fn write_text_line(
    out: &mut String,
    addresses: &mut AddrCache,
    exchange: &Exchange,
    summary: &Summary,
    time: Time,
) {
    // Numbers and addresses are written by hand: through the formatting
    // machinery, a line's dozen of them cost more than decoding a frame.
    push_spaces(out, 5_usize.saturating_sub(decimal_len(exchange.id)));
    push_uint(out, exchange.id);
    out.push(' ');
    // Seconds since an origin, or a date: one call each, kept inline.
    let origin = match time.column {
        TimeColumn::Relative => Some(time.first_ns),
        TimeColumn::Epoch => Some(0),
        TimeColumn::Absolute => None,
    };
    match origin {
        Some(origin) => push_seconds(out, exchange.ts_ns().saturating_sub(origin)),
        None => push_rfc3339_micros(out, exchange.ts_ns()),
    }
    out.push(' ');
    addresses.push(out, exchange.client, exchange.broker);
    out.push(' ');
    pad_right(out, 20, |out| {
        // A known API's name as `ApiName` shows it, without the formatting
        // machinery.
        match kwire::schema::api(exchange.api_key) {
            Some(api) => out.push_str(api.name),
            None => {
                let _ = write!(out, "{}", ApiName(exchange.api_key));
            }
        }
        out.push_str(" v");
        push_int(out, i64::from(exchange.api_version));
    });
    out.push_str(" #");
    pad_right(out, 6, |out| {
        push_int(out, i64::from(exchange.correlation_id))
    });
    out.push(' ');
    pad_left(out, 7, |out| match exchange.latency_ns() {
        Some(ns) => write_duration(out, ns),
        None => out.push('-'),
    });
    out.push(' ');
    pad_left(out, 13, |out| {
        let size = |out: &mut String, size: Option<usize>| match size {
            Some(n) => {
                push_uint(out, u64::try_from(n).unwrap_or(u64::MAX));
                out.push('B');
            }
            None => out.push('-'),
        };
        size(out, exchange.request_size());
        out.push('/');
        size(out, exchange.response_size());
    });
    out.push_str("  ");
    match exchange.client_id() {
        Some(client_id) => write_quoted_if_needed(out, client_id),
        None => out.push('-'),
    }
    for flag in flags(exchange, summary) {
        out.push_str(" [");
        out.push_str(flag);
        out.push(']');
    }
    let before = out.len();
    out.push_str("  ");
    match &exchange.sasl {
        Some(sasl) => out.push_str(&sasl.line()),
        None => summary.write_line(out),
    }
    if out.len() == before + 2 {
        out.truncate(before);
    }
    if let Some(error) = exchange.decode_error() {
        out.push_str("  decode error: ");
        out.push_str(&error);
    }
    let mut violations = [&exchange.request, &exchange.response]
        .into_iter()
        .flatten()
        .flat_map(|message| &message.frame.violations);
    if let Some(first) = violations.next() {
        let _ = write!(out, "  violation: {first}");
        let more = violations.count();
        if more > 0 {
            let _ = write!(out, " (+{more} more)");
        }
    }
}

/// How a line's time column is written.
#[derive(Clone, Copy, Debug)]
struct Time {
    column: TimeColumn,
    /// When the capture's first packet was taken, for relative times.
    first_ns: i64,
}

/// Appends `ns` as seconds to the microsecond, `{:>10}` wide: `12.345678`.
fn push_seconds(out: &mut String, ns: i64) {
    let (seconds, micros) = (
        ns.div_euclid(1_000_000_000),
        ns.rem_euclid(1_000_000_000) / 1_000,
    );
    let seconds_len = usize::from(seconds < 0) + decimal_len(seconds.unsigned_abs());
    push_spaces(out, 10_usize.saturating_sub(seconds_len + 7));
    push_int(out, seconds);
    out.push('.');
    // rem_euclid is never negative.
    push_uint_zero_padded(out, micros.unsigned_abs(), 6);
}

/// The columns `text` takes: its length when ASCII, as nearly all is.
fn columns(text: &str) -> usize {
    if text.is_ascii() {
        text.len()
    } else {
        text.chars().count()
    }
}

/// Appends an address as `{addr}` would: IPv4 by hand, IPv6 (with its
/// compression rules) through `Display`.
fn push_addr(out: &mut String, addr: SocketAddr) {
    match addr {
        SocketAddr::V4(v4) => {
            for (index, octet) in v4.ip().octets().into_iter().enumerate() {
                if index > 0 {
                    out.push('.');
                }
                push_uint(out, u64::from(octet));
            }
            out.push(':');
            push_uint(out, u64::from(v4.port()));
        }
        SocketAddr::V6(_) => {
            let _ = write!(out, "{addr}");
        }
    }
}

/// A connection's `client -> broker` columns as text, formatted once for
/// all the lines of the connection. Direct-mapped on the client's port
/// (which differs per connection), so that memory stays bounded however
/// many connections a capture has; a collision only costs a formatting.
struct AddrCache {
    slots: Vec<Option<(SocketAddr, SocketAddr, String)>>,
}

/// Slots in an [`AddrCache`]: plenty for the connections live at once.
const ADDR_SLOTS: usize = 256;

impl AddrCache {
    fn new() -> AddrCache {
        AddrCache {
            slots: vec![None; ADDR_SLOTS],
        }
    }

    /// Appends `{client:>21} -> {broker:<21}`.
    fn push(&mut self, out: &mut String, client: SocketAddr, broker: SocketAddr) {
        let write = |out: &mut String| {
            pad_left(out, 21, |out| push_addr(out, client));
            out.push_str(" -> ");
            pad_right(out, 21, |out| push_addr(out, broker));
        };
        let Some(slot) = self.slots.get_mut(usize::from(client.port()) % ADDR_SLOTS) else {
            return write(out);
        };
        match slot {
            Some((cached_client, cached_broker, text))
                if *cached_client == client && *cached_broker == broker =>
            {
                out.push_str(text)
            }
            _ => {
                let mut text = String::new();
                write(&mut text);
                out.push_str(&text);
                *slot = Some((client, broker, text));
            }
        }
    }
}

/// Appends what `write` writes right-aligned in `width` columns, as
/// `{:>width}` would.
fn pad_left(out: &mut String, width: usize, write: impl FnOnce(&mut String)) {
    let start = out.len();
    write(out);
    let mut missing = width.saturating_sub(columns(&out[start..]));
    while missing > 0 {
        let spaces = SPACES.get(..missing).unwrap_or(SPACES);
        out.insert_str(start, spaces);
        missing -= spaces.len();
    }
}

const SPACES: &str = "                                ";

/// Appends `count` spaces: before a field whose width is known before it
/// is written, so that padding it moves nothing.
fn push_spaces(out: &mut String, count: usize) {
    let mut missing = count;
    while missing > 0 {
        let spaces = SPACES.get(..missing).unwrap_or(SPACES);
        out.push_str(spaces);
        missing -= spaces.len();
    }
}

/// Appends what `write` writes left-aligned in `width` columns, as
/// `{:<width}` would.
fn pad_right(out: &mut String, width: usize, write: impl FnOnce(&mut String)) {
    let start = out.len();
    write(out);
    let missing = width.saturating_sub(columns(&out[start..]));
    push_spaces(out, missing);
}

/// Marks for what is unusual about an exchange.
fn flags(exchange: &Exchange, summary: &Summary) -> impl Iterator<Item = &'static str> {
    let state = match exchange.state {
        ExchangeState::Complete => None,
        ExchangeState::NoResponseExpected => Some("acks=0"),
        ExchangeState::ResponseMissing => Some("no response"),
        ExchangeState::RequestMissing => Some("request missing"),
    };
    let inferred = exchange.inferred.then_some("inferred");
    let lost = exchange.lost.then_some("lost bytes");
    let newer = kwire::schema::api(exchange.api_key)
        .is_some_and(|api| exchange.api_version > api.request.valid.max);
    let newer = newer.then_some("newer than definitions");
    let bad_crc = (summary.bad_crc_batches() > 0).then_some("bad CRC");
    [state, inferred, lost, newer, bad_crc]
        .into_iter()
        .flatten()
}

/// What `--write` keeps: the packets of the kept exchanges, and the
/// connections they travelled on.
#[derive(Default)]
struct KeptPackets {
    packets: PacketSet,
    /// (client, broker) of every kept exchange: one entry per connection.
    connections: HashSet<(SocketAddr, SocketAddr)>,
}

impl KeptPackets {
    fn add(&mut self, exchange: &Exchange) {
        exchange
            .packets
            .iter()
            .for_each(|packet| self.packets.insert(*packet));
        self.connections.insert((exchange.client, exchange.broker));
    }

    /// Whether a packet goes to the output: it carried a kept exchange, or
    /// it opens or closes (SYN, FIN, RST without payload) a connection that
    /// carried one, so that readers of the output see who the client is and
    /// where each connection starts and ends.
    fn keeps(&self, link: LinkType, packet: &RawPacket) -> bool {
        if self.packets.contains(packet.index) {
            return true;
        }
        let Ok(segment) = parse_tcp(link, packet) else {
            return false;
        };
        (segment.syn || segment.fin || segment.rst)
            && segment.payload.is_empty()
            && (self.connections.contains(&(segment.src, segment.dst))
                || self.connections.contains(&(segment.dst, segment.src)))
    }
}

/// Packet numbers, one bit each: a multi-GB capture of millions of packets
/// needs a few hundred KB.
#[derive(Default)]
struct PacketSet {
    words: Vec<u64>,
}

impl PacketSet {
    fn insert(&mut self, packet: u64) {
        let Ok(word) = usize::try_from(packet / 64) else {
            return;
        };
        if self.words.len() <= word {
            self.words.resize(word + 1, 0);
        }
        if let Some(bits) = self.words.get_mut(word) {
            *bits |= 1 << (packet % 64);
        }
    }

    fn contains(&self, packet: u64) -> bool {
        usize::try_from(packet / 64)
            .ok()
            .and_then(|word| self.words.get(word))
            .is_some_and(|bits| bits & (1 << (packet % 64)) != 0)
    }
}

/// The second pass of `--write`: copies the kept packets, in file order.
fn write_packets(input: &Path, out: &Path, kept: &KeptPackets) -> anyhow::Result<()> {
    let mut reader = CaptureReader::open(input)?;
    let link = reader.link_type();
    let mut writer = PcapWriter::create(out, link, 0)?;
    while let Some(next) = reader.next_packet() {
        match next {
            Ok(packet) if kept.keeps(link, &packet) => writer.write(&packet)?,
            Ok(_) => {}
            // Already reported by the first pass.
            Err(CaptureError::Read { .. }) => break,
            Err(error) => return Err(error.into()),
        }
    }
    writer
        .finish()
        .with_context(|| format!("cannot finish {}", out.display()))?;
    Ok(())
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// A progress bar on stderr: bytes read out of the file's size, drawn at
/// most ten times a second, and only once a read has taken half a second.
struct Progress {
    total: u64,
    started: Instant,
    last_draw: Option<Instant>,
}

/// Standard output without std's line buffering, which scans every block
/// written for its last newline: a duplicate of the descriptor, for the
/// caller to buffer. Std's handle when the descriptor cannot be duplicated.
fn unbuffered_stdout() -> Box<dyn Write> {
    match std::io::stdout().as_fd().try_clone_to_owned() {
        Ok(fd) => Box::new(std::fs::File::from(fd)),
        Err(_) => Box::new(std::io::stdout().lock()),
    }
}

/// Bytes of output buffered before a write to stdout.
const OUTPUT_BUFFER: usize = 256 * 1024;

/// Packets between two looks at the clock.
const PROGRESS_EVERY: u64 = 1024;
const BAR_WIDTH: u64 = 30;

impl Progress {
    /// A bar for a plain file; a compressed one's size says nothing of
    /// how far the read is.
    fn for_file(path: &Path) -> Option<Progress> {
        if kwire::capture::compression_of(path).is_some() {
            return None;
        }
        let metadata = std::fs::metadata(path).ok()?;
        (metadata.is_file() && metadata.len() > 0).then(|| Progress {
            total: metadata.len(),
            started: Instant::now(),
            last_draw: None,
        })
    }

    fn update(&mut self, packets: u64, done: u64) {
        if packets % PROGRESS_EVERY != 0 {
            return;
        }
        let now = Instant::now();
        if now.duration_since(self.started) < Duration::from_millis(500) {
            return;
        }
        if self
            .last_draw
            .is_some_and(|last| now.duration_since(last) < Duration::from_millis(100))
        {
            return;
        }
        self.last_draw = Some(now);
        let done = done.min(self.total);
        let filled = done * BAR_WIDTH / self.total;
        let bar: String = (0..BAR_WIDTH)
            .map(|i| if i < filled { '#' } else { '-' })
            .collect();
        let mb = |bytes: u64| bytes as f64 / 1e6;
        eprint!(
            "\r[{bar}] {:>3}% {:.1} / {:.1} MB",
            done * 100 / self.total,
            mb(done),
            mb(self.total)
        );
    }

    fn finish(&mut self) {
        if self.last_draw.is_some() {
            // Erase the bar.
            eprint!("\r\x1b[K");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kwire::display::rfc3339;
    use kwire::stats::{format_duration, quote_if_needed};

    /// The line as `format!` writes it: what `write_text_line` must match.
    fn reference_line(exchange: &Exchange, summary: &Summary, time: Time) -> String {
        let seconds = |since: i64| {
            let ns = exchange.ts_ns() - since;
            format!(
                "{}.{:06}",
                ns.div_euclid(1_000_000_000),
                ns.rem_euclid(1_000_000_000) / 1_000
            )
        };
        let time = match time.column {
            TimeColumn::Relative => seconds(time.first_ns),
            TimeColumn::Epoch => seconds(0),
            TimeColumn::Absolute => {
                let full = rfc3339(exchange.ts_ns());
                format!("{}Z", &full[..full.len() - 4])
            }
        };
        let api = format!("{} v{}", exchange.api_name(), exchange.api_version);
        let latency = exchange
            .latency_ns()
            .map_or_else(|| "-".to_owned(), format_duration);
        let size = |size: Option<usize>| size.map_or_else(|| "-".to_owned(), |n| format!("{n}B"));
        let sizes = format!(
            "{}/{}",
            size(exchange.request_size()),
            size(exchange.response_size())
        );
        let client_id = exchange
            .client_id()
            .map_or_else(|| "-".to_owned(), quote_if_needed);
        let mut line = format!(
            "{:>5} {time:>10} {:>21} -> {:<21} {api:<20} #{:<6} {latency:>7} {sizes:>13}  {client_id}",
            exchange.id,
            exchange.client.to_string(),
            exchange.broker.to_string(),
            exchange.correlation_id,
        );
        for flag in flags(exchange, summary) {
            line.push_str(&format!(" [{flag}]"));
        }
        let about = match &exchange.sasl {
            Some(sasl) => sasl.line(),
            None => summary.line(),
        };
        if !about.is_empty() {
            line.push_str("  ");
            line.push_str(&about);
        }
        if let Some(error) = exchange.decode_error() {
            line.push_str("  decode error: ");
            line.push_str(&error);
        }
        let violations: Vec<String> = [&exchange.request, &exchange.response]
            .into_iter()
            .flatten()
            .flat_map(|message| message.frame.violations.iter().map(ToString::to_string))
            .collect();
        match violations.len() {
            0 => {}
            1 => line.push_str(&format!("  violation: {}", violations[0])),
            n => line.push_str(&format!("  violation: {} (+{} more)", violations[0], n - 1)),
        }
        line
    }

    #[test]
    fn text_lines_match_the_formatted_reference() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/captures");
        let mut paths: Vec<_> = std::fs::read_dir(&dir)
            .expect("corpus/captures")
            .filter_map(|entry| entry.ok().map(|entry| entry.path()))
            .filter(|path| path.extension().is_some_and(|ext| ext == "pcap"))
            .collect();
        paths.sort();
        let v6: SocketAddr = "[fe80::1:2]:9092".parse().expect("address");
        let mut checked = 0;
        let mut addresses = AddrCache::new();
        for path in paths {
            let mut exchanges = Vec::new();
            kwire::session::read_capture(
                &path,
                kwire::session::AnalyzerOptions::default(),
                |exchange| exchanges.push(exchange),
            )
            .expect("capture");
            for (n, mut exchange) in exchanges.into_iter().enumerate() {
                // Odd values the corpus does not have: IPv6, wide ids,
                // times before the first packet, negative correlation ids.
                let first_ns = match n % 4 {
                    0 => 0,
                    1 => exchange.ts_ns() + 1_500_000_000,
                    2 => exchange.ts_ns() - 7,
                    _ => exchange.ts_ns() - 123_456_789_012,
                };
                if n % 3 == 1 {
                    exchange.client = v6;
                    exchange.id += 1 << 40;
                    exchange.correlation_id = -exchange.correlation_id - 1;
                }
                let summary = exchange.summary();
                let columns = [
                    TimeColumn::Relative,
                    TimeColumn::Absolute,
                    TimeColumn::Epoch,
                ];
                for column in columns {
                    let time = Time { column, first_ns };
                    let mut line = String::new();
                    write_text_line(&mut line, &mut addresses, &exchange, &summary, time);
                    assert_eq!(line, reference_line(&exchange, &summary, time));
                }
                checked += 1;
            }
        }
        assert!(checked > 100, "only {checked} lines checked");
    }

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            rfc3339(1_709_251_199_123_456_789),
            "2024-02-29T23:59:59.123456789Z"
        );
        assert_eq!(
            rfc3339(951_782_400_000_000_000),
            "2000-02-29T00:00:00.000000000Z"
        );
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59.999999999Z");
        let micros = |ts_ns: i64| {
            let mut out = String::new();
            push_rfc3339_micros(&mut out, ts_ns);
            out
        };
        assert_eq!(micros(-1), "1969-12-31T23:59:59.999999Z");
        assert_eq!(
            micros(1_709_251_199_123_456_789),
            "2024-02-29T23:59:59.123456Z"
        );
        assert_eq!(micros(i64::MAX), "2262-04-11T23:47:16.854775Z");
        assert_eq!(micros(i64::MIN), "1677-09-21T00:12:43.145224Z");
    }

    #[test]
    fn packet_set() {
        let mut set = PacketSet::default();
        for packet in [0, 63, 64, 1000] {
            set.insert(packet);
        }
        assert!(set.contains(0) && set.contains(63) && set.contains(64) && set.contains(1000));
        assert!(!set.contains(1) && !set.contains(999) && !set.contains(100_000));
    }
}
