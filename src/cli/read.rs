//! `kwire read`: analyses a capture file (or stdin) and prints one line per
//! request/response exchange, NDJSON with `--json`, or only a statistics
//! report with `--stats`; `--filter` chooses the exchanges and `--write`
//! saves their packets to a new pcap file. This module owns the output
//! formats and the progress bar; the analysis is `kwire::session`'s.

use std::collections::HashSet;
use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use kwire::capture::{parse_tcp, CaptureError, CaptureReader, LinkType, PcapWriter, RawPacket};
use kwire::codec::DecodeOptions;
use kwire::display;
use kwire::exchange::{Exchange, ExchangeState, Summary};
use kwire::filter::{self, Filter};
use kwire::records::Limits;
use kwire::session::{Analyzer, AnalyzerOptions, CaptureReport};
use kwire::stats::{format_duration, quote_if_needed, Stats};
use serde_json::{json, Value as Json};

#[derive(clap::Args)]
pub struct Args {
    /// The capture file, pcap or pcapng; `-` reads stdin.
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
    /// Show SASL passwords, proofs and tokens instead of redacting them.
    #[arg(long)]
    show_secrets: bool,
    /// Also write the packets of the kept exchanges to OUT.pcap (needs a
    /// file: the capture is read a second time).
    #[arg(long, value_name = "OUT.pcap")]
    write: Option<PathBuf>,
    /// Keep record batches as raw bytes instead of decoding them.
    #[arg(long)]
    no_records: bool,
    /// Most bytes one record set may decompress to.
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().max_decompressed)]
    max_decompressed: usize,
    /// Never draw the progress bar.
    #[arg(long)]
    no_progress: bool,
}

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
    let options = AnalyzerOptions {
        port_hints: args.ports.clone(),
        decode: DecodeOptions {
            decode_records: !args.no_records,
            limits: Limits {
                max_decompressed: args.max_decompressed,
            },
        },
        show_secrets: args.show_secrets,
        ..AnalyzerOptions::default()
    };
    let show_progress = !args.no_progress
        && std::io::stderr().is_terminal()
        && (args.stats || !std::io::stdout().is_terminal());
    let progress = if show_progress && !stdin {
        Progress::for_file(&args.file)
    } else {
        None
    };

    // A terminal sees each line as it comes; a pipe gets full buffers.
    let interactive = std::io::stdout().is_terminal();
    let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
    let mut stats = Stats::new();
    let mut kept = args.write.as_ref().map(|_| KeptPackets::default());
    let report = analyse(&args.file, options, progress, &mut |exchange, first_ns| {
        let summary = exchange.summary();
        if !filter.matches_with(&exchange, Some(&summary)) {
            return Ok(());
        }
        if let Some(kept) = kept.as_mut() {
            kept.add(&exchange);
        }
        if args.stats {
            stats.add_with(&exchange, &summary);
        } else if args.json {
            // As an io::Error, so that main sees a broken pipe as one.
            serde_json::to_writer(&mut stdout, &exchange_json(&exchange, &summary, first_ns))
                .map_err(std::io::Error::from)?;
            stdout.write_all(b"\n")?;
        } else {
            stdout.write_all(text_line(&exchange, &summary, first_ns).as_bytes())?;
            stdout.write_all(b"\n")?;
        }
        if interactive {
            stdout.flush()?;
        }
        Ok(())
    })?;
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

/// Reads the capture through the analyzer, handing each exchange (with the
/// first packet's time) to `on_exchange`. This is `session::read_capture`
/// with a progress bar and the first packet's time, which relative times
/// are counted from.
fn analyse(
    path: &Path,
    options: AnalyzerOptions,
    mut progress: Option<Progress>,
    on_exchange: &mut dyn FnMut(Exchange, i64) -> anyhow::Result<()>,
) -> anyhow::Result<CaptureReport> {
    let mut reader = CaptureReader::open(path)?;
    let link_type = reader.link_type();
    let mut analyzer = Analyzer::new(options);
    let mut out = Vec::new();
    let mut packets = 0u64;
    let mut bytes = 0u64;
    let mut first_ns = None;
    let mut read_error = None;
    while let Some(next) = reader.next_packet() {
        match next {
            Ok(packet) => {
                packets += 1;
                bytes += u64::from(packet.caplen);
                first_ns.get_or_insert(packet.ts_ns);
                match parse_tcp(link_type, &packet) {
                    Ok(segment) => analyzer.push_segment(segment, &mut out),
                    Err(_) if packet.caplen < packet.origlen => analyzer.note_truncated(),
                    Err(reason) => analyzer.note_skipped(&reason),
                }
            }
            Err(CaptureError::Read { message, .. }) => {
                analyzer.note_truncated();
                read_error = Some(message);
            }
            Err(error) => return Err(error.into()),
        }
        let first = first_ns.unwrap_or(0);
        for exchange in out.drain(..) {
            on_exchange(exchange, first)?;
        }
        if let Some(progress) = progress.as_mut() {
            // A classic pcap file holds a 24-byte header and 16 bytes before
            // each packet; pcapng a little more, which the bar can ignore.
            progress.update(packets, 24 + bytes + 16 * packets);
        }
    }
    if let Some(progress) = progress.as_mut() {
        progress.finish();
    }
    analyzer.finish(&mut out);
    let first = first_ns.unwrap_or(0);
    for exchange in out.drain(..) {
        on_exchange(exchange, first)?;
    }
    Ok(CaptureReport {
        packets,
        bytes,
        losses: analyzer.losses(),
        connections: analyzer.connections(),
        connections_omitted: analyzer.connections_omitted(),
        link_type,
        read_error,
    })
}

/// One exchange as a line: id, seconds since the first packet, client ->
/// broker, API and version, correlation id, latency, request/response
/// sizes, client id, flags for what is unusual, and the summary (or the
/// SASL step), then a decode error if any:
///
/// ```text
///    16   0.108818       127.0.0.1:54542 -> 127.0.0.1:46775       Produce v7           #4         63us      382B/63B  kwire-corpus-kcat  kcat-snappy[0] 8 records 314 B
/// ```
fn text_line(exchange: &Exchange, summary: &Summary, first_ns: i64) -> String {
    let relative = exchange.ts_ns() - first_ns;
    let time = format!(
        "{}.{:06}",
        relative.div_euclid(1_000_000_000),
        relative.rem_euclid(1_000_000_000) / 1_000
    );
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
    for flag in flags(exchange) {
        line.push_str(" [");
        line.push_str(flag);
        line.push(']');
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
    line
}

/// Marks for what is unusual about an exchange.
fn flags(exchange: &Exchange) -> Vec<&'static str> {
    let mut flags = Vec::new();
    match exchange.state {
        ExchangeState::Complete => {}
        ExchangeState::NoResponseExpected => flags.push("acks=0"),
        ExchangeState::ResponseMissing => flags.push("no response"),
        ExchangeState::RequestMissing => flags.push("request missing"),
    }
    if exchange.inferred {
        flags.push("inferred");
    }
    if exchange.lost {
        flags.push("lost bytes");
    }
    flags
}

fn state_name(state: ExchangeState) -> &'static str {
    match state {
        ExchangeState::Complete => "complete",
        ExchangeState::NoResponseExpected => "no_response",
        ExchangeState::ResponseMissing => "response_missing",
        ExchangeState::RequestMissing => "request_missing",
    }
}

/// One exchange as a JSON object (one NDJSON line).
fn exchange_json(exchange: &Exchange, summary: &Summary, first_ns: i64) -> Json {
    let ts_ns = exchange.ts_ns();
    let body = |message: &Option<kwire::exchange::Message>| {
        message
            .as_ref()
            .and_then(|message| message.frame.body.as_ref())
            .map_or(Json::Null, display::to_json)
    };
    let side_error = |message: &Option<kwire::exchange::Message>| {
        message
            .as_ref()
            .and_then(|message| message.frame.error.as_ref())
            .map_or(Json::Null, |error| {
                json!({
                    "message": error.to_string(),
                    "path": error.path.to_string(),
                    "offset": error.offset,
                })
            })
    };
    let missing = |message: &Option<kwire::exchange::Message>| {
        message.as_ref().map_or(0, |message| message.missing_bytes)
    };
    let topics: serde_json::Map<String, Json> = summary
        .topics
        .iter()
        .map(|(topic, partitions)| (topic.clone(), json!(partitions)))
        .collect();
    json!({
        "id": exchange.id,
        "ts": rfc3339(ts_ns),
        "ts_ns": ts_ns,
        "time": (ts_ns - first_ns) as f64 / 1e9,
        "connection": exchange.connection,
        "client": exchange.client.to_string(),
        "broker": exchange.broker.to_string(),
        "client_id": exchange.client_id(),
        "api_key": exchange.api_key,
        "api_name": exchange.api_name(),
        "api_version": exchange.api_version,
        "correlation_id": exchange.correlation_id,
        "state": state_name(exchange.state),
        "inferred": exchange.inferred,
        "lost": exchange.lost,
        "latency_us": exchange.latency_ns().map(|ns| ns as f64 / 1e3),
        "sizes": {
            "request": exchange.request_size(),
            "response": exchange.response_size(),
            "request_missing_bytes": missing(&exchange.request),
            "response_missing_bytes": missing(&exchange.response),
        },
        "errors": summary.error_names(),
        "summary": {
            "line": summary.line(),
            "topics": topics,
            "records": summary.record_count(),
            "record_bytes": summary.record_bytes(),
        },
        "sasl": exchange.sasl,
        "decode_errors": {
            "request": side_error(&exchange.request),
            "response": side_error(&exchange.response),
        },
        "request": body(&exchange.request),
        "response": body(&exchange.response),
    })
}

/// `2024-05-01T12:34:56.123456789Z`: RFC 3339 in UTC with nanoseconds.
fn rfc3339(ts_ns: i64) -> String {
    let seconds = ts_ns.div_euclid(1_000_000_000);
    let nanos = ts_ns.rem_euclid(1_000_000_000);
    let days = seconds.div_euclid(86_400);
    let of_day = seconds.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days (proleptic Gregorian calendar).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        of_day / 3_600,
        of_day % 3_600 / 60,
        of_day % 60
    )
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

/// Packets between two looks at the clock.
const PROGRESS_EVERY: u64 = 1024;
const BAR_WIDTH: u64 = 30;

impl Progress {
    fn for_file(path: &Path) -> Option<Progress> {
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
