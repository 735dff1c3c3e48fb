//! Command-line parsing and dispatch to one module per subcommand.

mod conform;
mod decode;
mod live;
mod read;
mod tui;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
    Conform(conform::Args),
    /// Analyse a capture file: one line per request/response exchange.
    Read(read::Args),
    /// Browse a capture file's exchanges in a terminal UI.
    Tui(tui::Args),
    /// Sniff Kafka live from a network interface (TUI, or NDJSON with --json).
    Live(live::Args),
}

pub fn run() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    match cli.command {
        Command::Decode(args) => decode::run(args),
        Command::Conform(args) => conform::run(args),
        Command::Read(args) => read::run(args),
        Command::Tui(args) => tui::run(args),
        Command::Live(args) => live::run(args),
    }
}
