//! The TUI at scale: a capture of a million exchanges (generated here from
//! the request/response pairs real clients sent in corpus/frames, with new
//! correlation ids, over 256 TCP connections) is opened as `kwire tui`
//! opens it, and the figures that matter are measured: time to the first
//! screen, time to read it all, RSS per exchange beyond the frames' bytes,
//! and the time to filter, scroll and open a detail.
//!
//! Ignored by default (it takes a minute and wants a release build):
//!
//! ```sh
//! cargo test --release --test tui_scale -- --ignored --nocapture
//! ```
//!
//! KWIRE_SCALE_EXCHANGES sets the size (default 1,000,000).

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use kwire::capture::{LinkType, PcapWriter, RawPacket};
use kwire::codec::DecodeOptions;
use kwire::frames_file::{self, LineKind};
use kwire::tui::render;
use kwire::tui::source::{spawn_file, SourceOptions};
use kwire::tui::state::{App, SCAN_STEP};
use ratatui::backend::TestBackend;
use ratatui::Terminal;

const CONNECTIONS: usize = 256;

/// Request/response pairs from the corpus.
fn templates() -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut pairs = Vec::new();
    for name in [
        "kcat-mock.frames",
        "confluent-modern-mock.frames",
        "python-mock.frames",
    ] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("corpus/frames")
            .join(name);
        let text = std::fs::read_to_string(path).expect("frames");
        let lines = frames_file::parse(&text).expect("frames file");
        for pair in lines.windows(2) {
            if pair[0].kind == LineKind::Request
                && pair[1].kind == LineKind::Response
                && pair[0].connection == pair[1].connection
                && pair[0].api_key == pair[1].api_key
                // SASL would change how the connection is framed.
                && ![17, 36].contains(&pair[0].api_key)
                && pair[0].api_version == pair[1].api_version
                && pair[0].bytes.len() >= 12
                && pair[1].bytes.len() >= 8
                // The response answers this very request.
                && pair[0].bytes[8..12] == pair[1].bytes[4..8]
            {
                pairs.push((pair[0].bytes.to_vec(), pair[1].bytes.to_vec()));
            }
        }
    }
    assert!(pairs.len() > 50);
    pairs
}

struct Conn {
    client: (Ipv4Addr, u16),
    broker: (Ipv4Addr, u16),
    client_seq: u32,
    broker_seq: u32,
    correlation: i32,
}

fn packet(
    from: (Ipv4Addr, u16),
    to: (Ipv4Addr, u16),
    seq: u32,
    ack: Option<u32>,
    syn: bool,
    payload: &[u8],
) -> Vec<u8> {
    let mut builder = etherparse::PacketBuilder::ipv4(from.0.octets(), to.0.octets(), 64)
        .tcp(from.1, to.1, seq, 65535);
    if let Some(ack) = ack {
        builder = builder.ack(ack);
    }
    if syn {
        builder = builder.syn();
    } else {
        builder = builder.psh();
    }
    let mut out = Vec::with_capacity(40 + payload.len());
    builder.write(&mut out, payload).expect("packet");
    out
}

/// Writes a raw-IP capture of `count` exchanges.
fn generate(path: &Path, count: usize) {
    let pairs = templates();
    let mut writer = PcapWriter::create(path, LinkType::RawIp, 0).expect("create");
    let mut index = 0u64;
    let mut ts = 1_700_000_000_000_000_000i64;
    let mut write = |writer: &mut PcapWriter, data: Vec<u8>, ts: i64| {
        let len = u32::try_from(data.len()).unwrap();
        writer
            .write(&RawPacket {
                index,
                ts_ns: ts,
                caplen: len,
                origlen: len,
                data: Bytes::from(data),
            })
            .expect("write");
        index += 1;
    };
    let broker = (Ipv4Addr::new(10, 0, 0, 1), 9092);
    let mut conns: Vec<Conn> = (0..CONNECTIONS)
        .map(|i| Conn {
            client: (
                Ipv4Addr::new(10, 1, (i / 200) as u8, (i % 200) as u8 + 1),
                40000 + i as u16,
            ),
            broker,
            client_seq: 1000,
            broker_seq: 5000,
            correlation: 1,
        })
        .collect();
    for conn in &mut conns {
        write(
            &mut writer,
            packet(conn.client, conn.broker, conn.client_seq, None, true, &[]),
            ts,
        );
        write(
            &mut writer,
            packet(
                conn.broker,
                conn.client,
                conn.broker_seq,
                Some(conn.client_seq + 1),
                true,
                &[],
            ),
            ts + 10,
        );
        conn.client_seq += 1;
        conn.broker_seq += 1;
        ts += 1_000;
    }
    for n in 0..count {
        let conn = &mut conns[n % CONNECTIONS];
        let (request, response) = &pairs[n % pairs.len()];
        let mut request = request.clone();
        let mut response = response.clone();
        request[8..12].copy_from_slice(&conn.correlation.to_be_bytes());
        response[4..8].copy_from_slice(&conn.correlation.to_be_bytes());
        conn.correlation = conn.correlation.wrapping_add(1);
        let data = packet(
            conn.client,
            conn.broker,
            conn.client_seq,
            Some(conn.broker_seq),
            false,
            &request,
        );
        write(&mut writer, data, ts);
        conn.client_seq = conn.client_seq.wrapping_add(request.len() as u32);
        let data = packet(
            conn.broker,
            conn.client,
            conn.broker_seq,
            Some(conn.client_seq),
            false,
            &response,
        );
        write(&mut writer, data, ts + 50_000);
        conn.broker_seq = conn.broker_seq.wrapping_add(response.len() as u32);
        ts += 100_000;
    }
    writer.finish().expect("finish");
}

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Gives freed memory back to the system so that RSS shows what is held.
fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
}

fn draw(terminal: &mut Terminal<TestBackend>, app: &mut App) -> Duration {
    let start = Instant::now();
    app.prepare();
    terminal
        .draw(|frame| render::draw(frame, app))
        .expect("draw");
    start.elapsed()
}

#[test]
#[ignore = "generates a large capture; run with --release --ignored --nocapture"]
fn a_million_exchanges() {
    let count: usize = std::env::var("KWIRE_SCALE_EXCHANGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let path: PathBuf = std::env::temp_dir().join(format!("kwire-scale-v3-{count}.pcap"));
    if !path.exists() {
        let start = Instant::now();
        generate(&path, count);
        eprintln!("generated {} in {:?}", path.display(), start.elapsed());
    }
    let file_size = std::fs::metadata(&path).expect("capture").len();
    trim();
    let base = rss_bytes();

    let start = Instant::now();
    let (tx, rx) = std::sync::mpsc::sync_channel(kwire::tui::source::UPDATE_QUEUE);
    let reader = spawn_file(
        &path,
        SourceOptions::default(),
        tx,
        Arc::new(AtomicBool::new(false)),
    )
    .expect("open");
    let mut app = App::new("scale", false, true, DecodeOptions::default());
    app.resize(160, 50);
    let mut terminal = Terminal::new(TestBackend::new(160, 50)).expect("terminal");
    let mut first_screen = None;
    for update in &rx {
        app.apply(update);
        if first_screen.is_none() && !app.store.is_empty() {
            app.advance(SCAN_STEP);
            draw(&mut terminal, &mut app);
            first_screen = Some(start.elapsed());
        }
    }
    reader.join().expect("reader");
    let loaded = start.elapsed();
    let scan = Instant::now();
    app.settle();
    let scanned = scan.elapsed();
    assert_eq!(app.store.len(), count, "every exchange is indexed");
    drop(rx);
    trim();
    let rss = rss_bytes();
    let raw = app.store.raw_bytes();
    let per_exchange = (rss.saturating_sub(base).saturating_sub(raw)) as f64 / count as f64;

    // Filtering a million rows, as the UI does it.
    let filter = Instant::now();
    app.set_filter("api=Produce and topic~kcat");
    app.settle();
    let filtered = filter.elapsed();
    let matched = app.listing.rows.len();
    let filter_errors = Instant::now();
    app.set_filter("error!=NONE or latency>100ms");
    app.settle();
    let filtered_errors = filter_errors.elapsed();
    app.set_filter("");
    app.settle();

    // Scrolling: End, then 200 pages up, drawing each.
    let key = |code| KeyEvent::new(code, KeyModifiers::NONE);
    app.key(key(KeyCode::End));
    let mut worst = Duration::ZERO;
    let scroll = Instant::now();
    for _ in 0..200 {
        app.key(key(KeyCode::PageUp));
        worst = worst.max(draw(&mut terminal, &mut app));
    }
    let per_page = scroll.elapsed() / 200;
    // Opening a detail (decode on selection).
    app.key(key(KeyCode::Enter));
    let detail = draw(&mut terminal, &mut app);

    let first = first_screen.expect("a first screen");
    eprintln!("--- kwire tui at scale ---");
    eprintln!("exchanges               {count}");
    eprintln!("capture file            {:.1} MB", file_size as f64 / 1e6);
    eprintln!(
        "first screen            {:.1} ms",
        first.as_secs_f64() * 1e3
    );
    eprintln!("whole file read         {:.2} s", loaded.as_secs_f64());
    eprintln!(
        "final scan              {:.1} ms",
        scanned.as_secs_f64() * 1e3
    );
    eprintln!(
        "RSS growth              {:.1} MB",
        rss.saturating_sub(base) as f64 / 1e6
    );
    eprintln!("raw frame bytes kept    {:.1} MB", raw as f64 / 1e6);
    eprintln!("RSS per exchange beyond the raw bytes: {per_exchange:.0} bytes");
    eprintln!(
        "filter api=Produce and topic~kcat: {:.0} ms ({matched} match)",
        filtered.as_secs_f64() * 1e3
    );
    eprintln!(
        "filter error!=NONE or latency>100ms: {:.0} ms",
        filtered_errors.as_secs_f64() * 1e3
    );
    eprintln!(
        "page up + draw          {:.2} ms average, {:.2} ms worst",
        per_page.as_secs_f64() * 1e3,
        worst.as_secs_f64() * 1e3
    );
    eprintln!(
        "open a detail + draw    {:.2} ms",
        detail.as_secs_f64() * 1e3
    );
    assert!(
        first < Duration::from_millis(200),
        "first screen after {first:?}"
    );
    assert!(per_exchange < 300.0, "{per_exchange} bytes per exchange");
}
