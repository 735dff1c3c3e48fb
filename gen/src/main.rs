//! The `kwire-gen` command: regenerates kwire's protocol tables.
//!
//! ```text
//! cargo run -p kwire-gen -- [--shared DIR] [--out FILE]
//! ```
//!
//! It reads `DIR/kafka-messages/*.json` and `DIR/kafka-errors.tsv` and writes
//! `FILE`. The defaults are `<repo>/../shared` and
//! `<repo>/src/schema/generated.rs`. Commit the result; the test
//! `tests/generated_tables.rs` fails when the committed file is stale.
//! Exit codes: 0 written, 2 error.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

const USAGE: &str = "usage: kwire-gen [--shared DIR] [--out FILE]";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("kwire-gen: {error}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<(), String> {
    // The generator is a development tool run through cargo, so the repo
    // root is where this crate was built from.
    let gen_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let repo = gen_dir.parent().unwrap_or(gen_dir);
    let mut shared = repo.join("../shared");
    let mut out = repo.join("src/schema/generated.rs");

    let mut args = std::env::args_os().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .map(PathBuf::from)
                .ok_or_else(|| format!("{} needs a value; {USAGE}", arg.to_string_lossy()))
        };
        match arg.to_str() {
            Some("--shared") => shared = value()?,
            Some("--out") => out = value()?,
            Some("-h" | "--help") => {
                println!("{USAGE}");
                return Ok(());
            }
            _ => return Err(format!("unexpected argument {:?}; {USAGE}", arg)),
        }
    }

    let messages = shared.join("kafka-messages");
    if !messages.is_dir() {
        return Err(format!(
            "{} not found; pass --shared with the directory holding kafka-messages/",
            messages.display()
        ));
    }
    let text = kwire_gen::generate(&messages, &shared.join("kafka-errors.tsv"))?;
    std::fs::write(&out, text).map_err(|e| format!("cannot write {}: {e}", out.display()))?;
    eprintln!("kwire-gen: wrote {}", out.display());
    Ok(())
}
