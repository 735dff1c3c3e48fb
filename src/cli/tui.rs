//! `kwire tui FILE`: browse a capture's exchanges in the terminal while it
//! is read; `--replay` plays it at its original pace (`--speed` times
//! faster), as if it were live.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::thread::JoinHandle;

use anyhow::{bail, Context};
use kwire::codec::RecordsMode;
use kwire::tui::source::{self, SourceOptions, Update, UPDATE_QUEUE};
use kwire::tui::state::App;
use kwire::tui::{self, RunOptions, Terminal, TerminalEvents};

#[derive(clap::Args)]
pub struct Args {
    /// The capture file, pcap or pcapng, plain or compressed whole with
    /// gzip or zstd.
    file: PathBuf,
    /// Play the capture at its original timing, as if live.
    #[arg(long)]
    replay: bool,
    /// With --replay: this many times faster (0.5 is half speed).
    #[arg(long, value_name = "X", default_value_t = 1.0, requires = "replay")]
    speed: f64,
    /// Start with this filter (the `kwire read --filter` language).
    #[arg(long, value_name = "EXPR")]
    filter: Option<String>,
    /// A port Kafka brokers listen on: a hint where content is ambiguous
    /// (repeatable, or comma-separated).
    #[arg(long = "port", value_name = "PORT", value_delimiter = ',')]
    ports: Vec<u16>,
    #[command(flatten)]
    decoding: super::DecodeFlags,
}

/// Checks that stdout is a terminal, as the UI needs.
pub fn need_terminal(alternative: &str) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        bail!("the TUI needs a terminal; {alternative}");
    }
    Ok(())
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if !(args.speed.is_finite() && args.speed > 0.0) {
        bail!("--speed must be a positive number, not {}", args.speed);
    }
    need_terminal("for a pipe, use `kwire read` (with --json for NDJSON)")?;
    let options = SourceOptions {
        analyzer: args
            .decoding
            .analyzer_options(args.ports, RecordsMode::Full),
        replay: args.replay.then_some(args.speed),
        ..SourceOptions::default()
    };
    let decode = options.analyzer.decode;
    let (tx, rx) = std::sync::mpsc::sync_channel(UPDATE_QUEUE);
    let stop = Arc::new(AtomicBool::new(false));
    let reader = source::spawn_file(&args.file, options, tx, Arc::clone(&stop))?;
    let name = args.file.display().to_string();
    let mut app = App::new(
        &name,
        args.replay,
        tui::color_wanted(std::env::var_os("NO_COLOR")),
        decode,
    );
    if let Some(text) = &args.filter {
        app.set_filter(text);
        if let Some(error) = &app.filter_error {
            bail!("invalid --filter: {error}");
        }
    }
    run_in_terminal(&mut app, rx, Some(args.file.clone()), &stop, reader)
}

/// Runs the UI on the terminal until the user quits, then stops the worker
/// that feeds it (a file reader or a live analyzer) and waits for it.
pub fn run_in_terminal(
    app: &mut App,
    updates: Receiver<Update>,
    export_source: Option<PathBuf>,
    stop: &AtomicBool,
    worker: JoinHandle<()>,
) -> anyhow::Result<ExitCode> {
    let result = {
        let mut terminal = Terminal::open().context("cannot set up the terminal")?;
        let run_options = RunOptions { export_source };
        tui::run(
            app,
            &updates,
            &mut terminal.terminal,
            &mut TerminalEvents,
            &run_options,
        )
    };
    stop.store(true, Ordering::Relaxed);
    // The worker may be blocked sending: dropping the receiver frees it.
    drop(updates);
    let _ = worker.join();
    result.context("terminal error")?;
    Ok(ExitCode::SUCCESS)
}
