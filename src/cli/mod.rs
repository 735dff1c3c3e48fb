//! Command-line parsing and dispatch to one module per subcommand.

mod conform;
mod decode;
mod json_workers;
mod live;
mod read;
mod tui;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use kwire::codec::{DecodeOptions, RecordsMode};
use kwire::records::Limits;
use kwire::session::AnalyzerOptions;

/// kwire: a Kafka wire-protocol analyzer and conformance tester.
#[derive(Parser)]
#[command(name = "kwire", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Decode one Kafka frame (4-byte length prefix included).
    Decode(decode::Args),
    /// Run conformance suites against a broker: exit 0 pass, 1 fail, 2 error.
    Conform(Box<conform::Args>),
    /// Analyse a capture file: one line per request/response exchange.
    Read(read::Args),
    /// Browse a capture file's exchanges in a terminal UI.
    Tui(tui::Args),
    /// Sniff Kafka live from a network interface (TUI, or NDJSON with --json).
    Live(live::Args),
}

/// How frames are decoded and shown: the flags `read`, `decode`, `tui` and
/// `live` share.
#[derive(clap::Args)]
pub struct DecodeFlags {
    /// Show SASL passwords, proofs and tokens instead of redacting them.
    #[arg(long)]
    pub show_secrets: bool,
    /// Keep record batches as raw bytes instead of decoding them.
    #[arg(long)]
    pub no_records: bool,
    /// Most bytes one record set may decompress to.
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().max_decompressed)]
    pub max_decompressed: usize,
}

impl DecodeFlags {
    /// Decode options; record batches go as far as `records` unless
    /// --no-records keeps them raw.
    pub fn decode_options(&self, records: RecordsMode) -> DecodeOptions {
        DecodeOptions {
            records: if self.no_records {
                RecordsMode::Raw
            } else {
                records
            },
            limits: Limits {
                max_decompressed: self.max_decompressed,
            },
            skim: false,
            json: false,
            header_only: false,
        }
    }

    /// Analyzer options for a capture with these flags and port hints.
    pub fn analyzer_options(&self, ports: Vec<u16>, records: RecordsMode) -> AnalyzerOptions {
        AnalyzerOptions {
            port_hints: ports,
            decode: self.decode_options(records),
            show_secrets: self.show_secrets,
            ..AnalyzerOptions::default()
        }
    }
}

pub fn run() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    match cli.command {
        Command::Decode(args) => decode::run(args),
        Command::Conform(args) => conform::run(*args),
        Command::Read(args) => read::run(args),
        Command::Tui(args) => tui::run(args),
        Command::Live(args) => live::run(args),
    }
}
