//! `kwire live`: sniffs Kafka on a network interface through libpcap,
//! in the TUI, or headless as NDJSON (`--json`, for scripts and tests).
//!
//! The capture is opened first, on the main thread; then every capability
//! is given up (reading an open capture needs none) before any other
//! thread starts, since capabilities are per thread. Packets are read on
//! the `kwire-capture` thread and handed over through a bounded queue;
//! what does not fit is counted as queue drops, apart from the kernel's
//! and the interface's drops that libpcap reports.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use kwire::capture::live::{drop_privileges, LiveCapture, LiveOptions};
use kwire::capture::{parse_tcp, PcapWriter};
use kwire::codec::RecordsMode;
use kwire::display::write_exchange_json;
use kwire::json::JsonWriter;
use kwire::session::Analyzer;
use kwire::tui;
use kwire::tui::source::{self, LiveCounters, SourceOptions, UPDATE_QUEUE};
use kwire::tui::state::App;

use super::tui::{need_terminal, run_in_terminal};

#[derive(clap::Args)]
pub struct Args {
    /// The interface (default: `any` on Linux, else the first that is up).
    #[arg(short = 'i', long = "interface", value_name = "IFACE")]
    interface: Option<String>,
    /// A BPF capture filter, for example `tcp port 9092` (default: `tcp`).
    /// Kafka is recognised by content on any port.
    #[arg(short = 'f', long = "bpf", value_name = "BPF")]
    bpf: Option<String>,
    /// A port Kafka brokers listen on: a hint where content is ambiguous
    /// (repeatable, or comma-separated).
    #[arg(long = "port", value_name = "PORT", value_delimiter = ',')]
    ports: Vec<u16>,
    /// Also save every captured packet to FILE (pcap); the TUI's exports
    /// read it back.
    #[arg(short = 'w', long = "write", value_name = "FILE")]
    write: Option<PathBuf>,
    /// No UI: print exchanges as NDJSON (the `kwire read --json` form).
    #[arg(long)]
    json: bool,
    /// With --json: stop after N exchanges.
    #[arg(long, value_name = "N", requires = "json")]
    count: Option<u64>,
    /// With --json: stop after SECS seconds.
    #[arg(long, value_name = "SECS", requires = "json")]
    duration: Option<f64>,
    #[command(flatten)]
    decoding: super::DecodeFlags,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if let Some(duration) = args.duration {
        if !(duration.is_finite() && duration > 0.0) {
            bail!("--duration must be a positive number of seconds, not {duration}");
        }
    }
    if !args.json {
        need_terminal("for scripts, use `kwire live --json`")?;
    }
    let capture = LiveCapture::open(&LiveOptions {
        interface: args.interface.clone(),
        bpf: args.bpf.clone(),
        snaplen: 0,
    })?;
    let mut writer = match &args.write {
        Some(path) => Some(PcapWriter::create(path, capture.link_type(), 0)?),
        None => None,
    };
    // Before any other thread starts: they inherit what is left.
    let privileges = drop_privileges();
    let interface = capture.interface().to_owned();
    let link = capture.link_type();
    eprintln!(
        "kwire: capturing on {interface} ({link}), filter {:?}; {privileges}",
        args.bpf.as_deref().unwrap_or("tcp")
    );
    let options = SourceOptions {
        analyzer: args
            .decoding
            .analyzer_options(args.ports.clone(), RecordsMode::Full),
        ..SourceOptions::default()
    };
    let counters = Arc::new(LiveCounters::default());
    let stop = Arc::new(AtomicBool::new(false));
    if let Some(mut writer) = writer.take() {
        // The saving happens on the capture thread's side of the queue:
        // wrap the capture so that every packet read is written.
        let (packets, capture_thread) =
            source::spawn_capture(capture, Arc::clone(&counters), Arc::clone(&stop))?;
        let (tx, rx) = std::sync::mpsc::sync_channel(source::PACKET_QUEUE);
        let saver = std::thread::Builder::new()
            .name("kwire-writer".to_owned())
            .spawn(move || {
                // Packets are numbered again as written: the queue may have
                // dropped some, and exports find packets by their place in
                // the file.
                let mut written = 0u64;
                let mut last_flush = Instant::now();
                loop {
                    match packets.recv_timeout(Duration::from_millis(250)) {
                        Ok(mut packet) => {
                            packet.index = written;
                            if writer.write(&packet).is_ok() {
                                written += 1;
                            }
                            if tx.send(packet).is_err() {
                                break;
                            }
                        }
                        Err(RecvTimeoutError::Timeout) => {}
                        Err(RecvTimeoutError::Disconnected) => break,
                    }
                    if last_flush.elapsed() >= Duration::from_millis(250) {
                        last_flush = Instant::now();
                        let _ = writer.flush();
                    }
                }
                let _ = writer.finish();
            })?;
        let result = consume(&args, rx, link, options, &counters, &stop, &interface);
        stop.store(true, Ordering::Relaxed);
        let _ = saver.join();
        let _ = capture_thread.join();
        return result;
    }
    let (packets, capture_thread) =
        source::spawn_capture(capture, Arc::clone(&counters), Arc::clone(&stop))?;
    let result = consume(&args, packets, link, options, &counters, &stop, &interface);
    stop.store(true, Ordering::Relaxed);
    if let Ok(Err(error)) = capture_thread.join() {
        eprintln!("kwire: {error}");
    }
    result
}

fn consume(
    args: &Args,
    packets: std::sync::mpsc::Receiver<kwire::capture::RawPacket>,
    link: kwire::capture::LinkType,
    options: SourceOptions,
    counters: &Arc<LiveCounters>,
    stop: &Arc<AtomicBool>,
    interface: &str,
) -> anyhow::Result<ExitCode> {
    if args.json {
        return headless(args, &packets, link, options, counters);
    }
    let decode = options.analyzer.decode;
    let (tx, rx) = std::sync::mpsc::sync_channel(UPDATE_QUEUE);
    let analyzer = source::spawn_live_analyzer(
        packets,
        link,
        options,
        Arc::clone(counters),
        tx,
        Arc::clone(stop),
    )?;
    let mut app = App::new(
        &format!("live: {interface}"),
        true,
        tui::color_wanted(std::env::var_os("NO_COLOR")),
        decode,
    );
    run_in_terminal(&mut app, rx, args.write.clone(), stop, analyzer)
}

/// Prints exchanges as NDJSON until `--count` or `--duration`.
fn headless(
    args: &Args,
    packets: &std::sync::mpsc::Receiver<kwire::capture::RawPacket>,
    link: kwire::capture::LinkType,
    options: SourceOptions,
    counters: &LiveCounters,
) -> anyhow::Result<ExitCode> {
    let deadline = args
        .duration
        .map(|s| Instant::now() + Duration::from_secs_f64(s));
    // As `kwire read --json`: bodies written as JSON while skimmed.
    let mut analyzer_options = options.analyzer;
    analyzer_options.decode.skim = true;
    analyzer_options.decode.json = true;
    let mut analyzer = Analyzer::new(analyzer_options);
    let mut out = Vec::new();
    let mut stdout = std::io::stdout().lock();
    let mut printed = 0u64;
    let mut first_ns = None;
    let mut seen = 0u64;
    let limit = args.count.unwrap_or(u64::MAX);
    let mut print =
        |exchanges: &mut Vec<kwire::exchange::Exchange>, first: i64| -> anyhow::Result<bool> {
            for exchange in exchanges.drain(..) {
                if printed >= limit {
                    return Ok(true);
                }
                let summary = exchange.summary();
                let mut line = JsonWriter::in_memory();
                write_exchange_json(&mut line, &exchange, &summary, first);
                let mut line = line.into_bytes();
                line.push(b'\n');
                stdout.write_all(&line)?;
                stdout.flush()?;
                printed += 1;
            }
            Ok(printed >= limit)
        };
    loop {
        let wait = match deadline {
            Some(deadline) => {
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                (deadline - now).min(Duration::from_millis(100))
            }
            None => Duration::from_millis(100),
        };
        match packets.recv_timeout(wait) {
            Ok(packet) => {
                seen += 1;
                first_ns.get_or_insert(packet.ts_ns);
                match parse_tcp(link, &packet) {
                    Ok(segment) => analyzer.push_segment(segment, &mut out),
                    Err(_) if packet.caplen < packet.origlen => analyzer.note_truncated(),
                    Err(reason) => analyzer.note_skipped(&reason),
                }
                if print(&mut out, first_ns.unwrap_or(0))? {
                    break;
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    // The capture is over: what is still open is handed out as it is
    // (print stops at the limit by itself).
    analyzer.finish(&mut out);
    print(&mut out, first_ns.unwrap_or(0))?;
    let drops = counters.drops();
    eprintln!(
        "kwire: {seen} packets, {printed} exchanges; drops: kernel {}, interface {}, queue {}",
        drops.kernel, drops.interface, drops.queue
    );
    Ok(ExitCode::SUCCESS)
}
