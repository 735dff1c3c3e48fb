//! The `kwire` command: parses the command line, runs one subcommand, and
//! maps the outcome to an exit code (0 ok, 1 a check failed, 2 error).

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    match cli::run() {
        Ok(code) => code,
        Err(error) => {
            if is_broken_pipe(&error) {
                return ExitCode::SUCCESS;
            }
            eprintln!("kwire: {error:#}");
            ExitCode::from(2)
        }
    }
}

/// A closed pipe (`kwire ... | head`) is a normal way to stop reading.
fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
