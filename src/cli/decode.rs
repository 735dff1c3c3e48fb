//! `kwire decode`: decodes one frame from a file, stdin or `--hex`, as a
//! request or, with `--response API_KEY:VERSION`, as a response; or every
//! frame of a corpus `.frames` file with `--frames`.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use bytes::Bytes;
use kwire::codec::{DecodeOptions, RecordsMode};
use kwire::display;
use kwire::frame::{self, DecodedFrame};
use kwire::frames_file;
use kwire::schema;
use kwire::value::parse_hex;

#[derive(clap::Args)]
pub struct Args {
    /// A file holding the raw frame; `-` or nothing reads stdin.
    file: Option<PathBuf>,
    /// The frame as hex (whitespace allowed) instead of a file.
    #[arg(long, conflicts_with = "file")]
    hex: Option<String>,
    /// FILE is a corpus `.frames` file: decode every frame in it.
    #[arg(long, requires = "file", conflicts_with = "response")]
    frames: bool,
    /// Decode as the response to API_KEY:VERSION, e.g. `0:9` or `Produce:9`.
    #[arg(long, value_name = "API_KEY:VERSION")]
    response: Option<String>,
    /// Print JSON instead of the indented tree.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    decoding: super::DecodeFlags,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let options = args.decoding.decode_options(RecordsMode::Full);
    let mut stdout = std::io::stdout().lock();
    let mut failed = 0;
    if args.frames {
        failed = print_frames_file(&args, &options, &mut stdout)?;
    } else {
        let bytes = read_input(&args)?;
        let decoded = match &args.response {
            None => frame::decode_request(bytes, &options),
            Some(spec) => {
                let (api_key, version) = parse_api_version(spec)?;
                frame::decode_response(bytes, api_key, version, &options)
            }
        };
        for violation in &decoded.violations {
            eprintln!("kwire: protocol violation: {violation}");
        }
        if let Some(error) = &decoded.error {
            eprintln!("kwire: decode error: {error}");
            failed += 1;
        }
        print_frame(&args, decoded, &mut stdout)?;
    }
    stdout.flush()?;
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

/// Decodes every frame of a `.frames` file; returns how many failed.
fn print_frames_file(
    args: &Args,
    options: &DecodeOptions,
    out: &mut impl Write,
) -> anyhow::Result<usize> {
    let path = args.file.as_deref().context("--frames needs a file")?;
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let frames = frames_file::parse(&text)
        .map_err(|error| anyhow::anyhow!("{}: {error}", path.display()))?;
    let mut failed = 0;
    for line in frames {
        let Some(decoded) = line.decode(options) else {
            if !args.json {
                writeln!(
                    out,
                    "# line {}: {} raw SASL bytes\n",
                    line.line,
                    line.bytes.len()
                )?;
            }
            continue;
        };
        for violation in &decoded.violations {
            eprintln!(
                "kwire: {}:{}: protocol violation: {violation}",
                path.display(),
                line.line
            );
        }
        if let Some(error) = &decoded.error {
            eprintln!("kwire: {}:{}: {error}", path.display(), line.line);
            failed += 1;
        }
        if !args.json {
            writeln!(out, "# line {}, connection {}", line.line, line.connection)?;
        }
        print_frame(args, decoded, out)?;
        if !args.json {
            writeln!(out)?;
        }
    }
    Ok(failed)
}

fn print_frame(args: &Args, mut decoded: DecodedFrame, out: &mut impl Write) -> anyhow::Result<()> {
    if !args.decoding.show_secrets {
        display::redact(&mut decoded.header);
        if let Some(body) = decoded.body.as_mut() {
            display::redact(body);
        }
    }
    if args.json && args.frames {
        serde_json::to_writer(&mut *out, &display::frame_json(&decoded))?;
        writeln!(out)?;
    } else if args.json {
        serde_json::to_writer_pretty(&mut *out, &display::frame_json(&decoded))?;
        writeln!(out)?;
    } else {
        out.write_all(display::frame_text(&decoded).as_bytes())?;
    }
    Ok(())
}

fn read_input(args: &Args) -> anyhow::Result<Bytes> {
    if let Some(text) = &args.hex {
        let bytes = parse_hex(text).map_err(|error| anyhow::anyhow!("--hex: {error}"))?;
        return Ok(Bytes::from(bytes));
    }
    let mut bytes = Vec::new();
    match &args.file {
        Some(path) if path.as_os_str() != "-" => {
            bytes =
                std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        }
        _ => {
            std::io::stdin()
                .read_to_end(&mut bytes)
                .context("cannot read stdin")?;
        }
    }
    if bytes.is_empty() {
        bail!("no frame to decode: the input is empty");
    }
    Ok(Bytes::from(bytes))
}

/// Parses `0:9` or `Produce:9`.
fn parse_api_version(spec: &str) -> anyhow::Result<(i16, i16)> {
    let Some((api, version)) = spec.split_once(':') else {
        bail!("--response takes API_KEY:VERSION, for example 0:9 or Produce:9");
    };
    let api_key = match api.parse::<i16>() {
        Ok(key) => key,
        Err(_) => match schema::api_by_name(api) {
            Some(api) => api.key,
            None => bail!("--response: unknown API {api:?}"),
        },
    };
    let version = version
        .parse::<i16>()
        .with_context(|| format!("--response: invalid version {version:?}"))?;
    Ok((api_key, version))
}
