//! `kwire decode`: decodes one frame from a file, stdin or `--hex`, as a
//! request or, with `--response API_KEY:VERSION`, as a response.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use bytes::Bytes;
use kwire::codec::DecodeOptions;
use kwire::display;
use kwire::frame;
use kwire::records::Limits;
use kwire::schema;
use kwire::value::parse_hex;

#[derive(clap::Args)]
pub struct Args {
    /// A file holding the raw frame; `-` or nothing reads stdin.
    file: Option<PathBuf>,
    /// The frame as hex (whitespace allowed) instead of a file.
    #[arg(long, conflicts_with = "file")]
    hex: Option<String>,
    /// Decode as the response to API_KEY:VERSION, e.g. `0:9` or `Produce:9`.
    #[arg(long, value_name = "API_KEY:VERSION")]
    response: Option<String>,
    /// Print JSON instead of the indented tree.
    #[arg(long)]
    json: bool,
    /// Show SASL tokens and other credentials instead of redacting them.
    #[arg(long)]
    show_secrets: bool,
    /// Keep record batches as raw bytes instead of decoding them.
    #[arg(long)]
    no_records: bool,
    /// Most bytes one record set may decompress to.
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().max_decompressed)]
    max_decompressed: usize,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let bytes = read_input(&args)?;
    let options = DecodeOptions {
        decode_records: !args.no_records,
        limits: Limits {
            max_decompressed: args.max_decompressed,
        },
    };
    let mut decoded = match &args.response {
        None => frame::decode_request(bytes, &options),
        Some(spec) => {
            let (api_key, version) = parse_api_version(spec)?;
            frame::decode_response(bytes, api_key, version, &options)
        }
    };
    if !args.show_secrets {
        display::redact(&mut decoded.header);
        if let Some(body) = decoded.body.as_mut() {
            display::redact(body);
        }
    }
    let mut stdout = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut stdout, &display::frame_json(&decoded))?;
        writeln!(stdout)?;
    } else {
        stdout.write_all(display::frame_text(&decoded).as_bytes())?;
    }
    stdout.flush()?;
    if let Some(error) = &decoded.error {
        eprintln!("kwire: decode error: {error}");
        return Ok(ExitCode::from(2));
    }
    Ok(ExitCode::SUCCESS)
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
