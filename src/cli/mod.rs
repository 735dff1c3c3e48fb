//! Command-line parsing and dispatch to one module per subcommand.

mod decode;
mod read;

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
    /// Analyse a capture file: one line per request/response exchange.
    Read(read::Args),
}

pub fn run() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    match cli.command {
        Command::Decode(args) => decode::run(args),
        Command::Read(args) => read::run(args),
    }
}
