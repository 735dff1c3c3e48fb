//! `kwire conform`: runs conformance suites against a broker (and, with
//! `--against`, a second one), prints a live report, writes the requested
//! report files, and exits 0 (gate passed), 1 (a gating case failed) or 2
//! (error: bad suite, broker unreachable, a case that cannot run). Without
//! `--bootstrap` it starts librdkafka's mock cluster in-process
//! ([`kwire::conform::embedded`]) and says so. With `--tls` every
//! connection of the run (to both brokers) goes over TLS with the same
//! settings.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use kwire::client::pcap::PcapTap;
use kwire::client::sasl::{Mechanism, SaslConfig};
use kwire::client::tls::{TlsConfig, TlsOptions};
use kwire::client::{ClientError, ConnectOptions};
use kwire::conform::embedded::EmbeddedBroker;
use kwire::conform::report::{self, Report, Style, Terminal};
use kwire::conform::{self, Baseline, Broker, RunOptions, Runner};
use serde_json::Value as Json;

#[derive(clap::Args)]
pub struct Args {
    /// The broker to test, HOST:PORT (a comma-separated list is tried in
    /// order). Without it, kwire starts an embedded broker: librdkafka's
    /// mock cluster, loaded from librdkafka.so.1 (Debian: librdkafka1).
    #[arg(long, value_name = "HOST:PORT")]
    bootstrap: Option<String>,
    /// Brokers in the embedded mock cluster (without --bootstrap).
    #[arg(long, value_name = "N", default_value_t = kwire::conform::embedded::DEFAULT_BROKERS,
          value_parser = clap::value_parser!(u16).range(1..=16))]
    embedded_brokers: u16,
    /// A second broker: run every case on both and report where their
    /// responses differ (after masking run-dependent fields).
    #[arg(long, value_name = "HOST:PORT")]
    against: Option<String>,
    /// A suite file or a directory of them (repeatable). Default: suites/.
    #[arg(long, value_name = "PATH")]
    suite: Vec<PathBuf>,
    /// Run only cases whose id matches this glob (repeatable), e.g. `produce.*`.
    #[arg(long = "case", value_name = "ID-GLOB")]
    cases: Vec<String>,
    /// List the selected cases (after validating the suites) and exit.
    #[arg(long)]
    list: bool,
    /// SHOULD failures fail the gate too.
    #[arg(long)]
    strict: bool,
    /// Known failures: the gate fails only on failures not listed here.
    #[arg(long, value_name = "FILE")]
    baseline: Option<PathBuf>,
    /// Write this run's failures as a baseline file.
    #[arg(long, value_name = "FILE")]
    write_baseline: Option<PathBuf>,
    /// Write the full results as JSON.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write JUnit XML (one testcase per case and version).
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Write a Markdown report card.
    #[arg(long, value_name = "FILE")]
    markdown: Option<PathBuf>,
    /// Record all traffic of the run as a pcap file.
    #[arg(long, value_name = "FILE.pcap")]
    record: Option<PathBuf>,
    /// A variable for the suites, NAME=VALUE (JSON if it parses, else text).
    #[arg(long = "var", value_name = "NAME=VALUE")]
    vars: Vec<String>,
    /// An extra mask path for the differential mode (repeatable).
    #[arg(long = "mask", value_name = "PATH-GLOB")]
    masks: Vec<String>,
    /// SASL mechanism for every connection: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.
    #[arg(long, value_name = "MECHANISM", requires = "sasl_username")]
    sasl_mechanism: Option<String>,
    #[arg(long, value_name = "NAME")]
    sasl_username: Option<String>,
    /// The SASL password; the environment variable KWIRE_SASL_PASSWORD
    /// is used when this is not given (it keeps the password out of `ps`).
    #[arg(long, value_name = "PASSWORD")]
    sasl_password: Option<String>,
    /// Connect over TLS: every connection of the run, to --bootstrap,
    /// to the brokers its responses name, and to --against, with the
    /// same settings. The broker's certificate is checked against the
    /// system's CA certificates unless --tls-ca is given. With --record,
    /// the decrypted Kafka bytes are recorded.
    #[arg(long)]
    tls: bool,
    /// A PEM file of CA certificates to trust instead of the system's.
    #[arg(long, value_name = "FILE", requires = "tls")]
    tls_ca: Option<PathBuf>,
    /// The name the broker's certificate must carry (also sent as SNI),
    /// for every connection; default: the host of each address.
    #[arg(long, value_name = "NAME", requires = "tls")]
    tls_server_name: Option<String>,
    /// A client certificate chain (PEM) for mutual TLS; needs --tls-key.
    #[arg(long, value_name = "FILE", requires_all = ["tls", "tls_key"])]
    tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, value_name = "FILE", requires_all = ["tls", "tls_cert"])]
    tls_key: Option<PathBuf>,
    /// Do not verify the broker's certificate (encryption without
    /// authentication: for test brokers only; the report says so).
    #[arg(long, requires = "tls", conflicts_with_all = ["tls_ca", "tls_server_name"])]
    tls_insecure: bool,
    /// How long to wait for each response, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 10_000)]
    timeout_ms: u64,
    /// How long to wait for a TCP connection (and then for the TLS
    /// handshake), in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 5_000)]
    connect_timeout_ms: u64,
    /// Skip the check, after every case, that the broker still answers.
    #[arg(long)]
    no_alive_check: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let tls = tls_config(&args)?;
    let paths = suite_paths(&args.suite)?;
    let suites = conform::load(&paths).map_err(|errors| anyhow::anyhow!("{errors}"))?;
    let baseline = match &args.baseline {
        Some(path) => Some(Baseline::load(path).map_err(anyhow::Error::msg)?),
        None => None,
    };
    let mut options = RunOptions {
        connect: ConnectOptions {
            connect_timeout: Duration::from_millis(args.connect_timeout_ms),
            io_timeout: Duration::from_millis(args.timeout_ms),
            tls,
            ..ConnectOptions::default()
        },
        sasl: sasl_config(&args)?,
        vars: serde_json::Map::new(),
        case_globs: args.cases.clone(),
        masks: args.masks.clone(),
        alive_check: !args.no_alive_check,
    };
    options
        .vars
        .insert("run".to_owned(), Json::String(conform::run_token()));
    if let Some(sasl) = &options.sasl {
        options
            .vars
            .insert("sasl_mechanism".to_owned(), sasl.mechanism.name().into());
        options
            .vars
            .insert("sasl_username".to_owned(), sasl.username.clone().into());
        options
            .vars
            .insert("sasl_password".to_owned(), sasl.password.clone().into());
    }
    for assignment in &args.vars {
        let (name, value) = assignment
            .split_once('=')
            .with_context(|| format!("--var {assignment:?}: write NAME=VALUE"))?;
        let value = serde_json::from_str(value).unwrap_or_else(|_| Json::String(value.to_owned()));
        options.vars.insert(name.to_owned(), value);
    }

    if args.list {
        let probe = Runner {
            suites: &suites,
            brokers: &[],
            options: &options,
        };
        for suite in &suites {
            for case in suite.cases.iter().filter(|case| probe.selected(case)) {
                println!("{:<48} {:<6} {}", case.id, case.level.name(), case.title);
            }
        }
        return Ok(ExitCode::SUCCESS);
    }

    // Kept alive until the run is over: dropping it stops the cluster.
    let embedded = match args.bootstrap {
        Some(_) => None,
        None if args.tls => {
            bail!("the embedded broker speaks plaintext only: --tls needs --bootstrap HOST:PORT")
        }
        None => Some(EmbeddedBroker::start(args.embedded_brokers)?),
    };
    if args.tls_insecure {
        eprintln!("{INSECURE_WARNING}");
    }
    let bootstrap = match (&args.bootstrap, &embedded) {
        (Some(bootstrap), _) => bootstrap.clone(),
        (None, Some(embedded)) => embedded.bootstrap().to_owned(),
        (None, None) => bail!("no broker: pass --bootstrap HOST:PORT"),
    };
    let bootstrap = bootstrap.as_str();
    let tap = match &args.record {
        Some(path) => {
            Some(Arc::new(PcapTap::create(path).with_context(|| {
                format!("cannot record to {}", path.display())
            })?))
        }
        None => None,
    };
    if let Some(tap) = &tap {
        options.connect.tap = Some(tap.clone() as Arc<dyn kwire::client::Tap>);
    }
    let mut brokers = vec![probe("A", bootstrap, &options.connect)?];
    if let Some(against) = args.against.as_deref() {
        brokers.push(probe("B", against, &options.connect)?);
    }

    let style = Style::detect();
    let selected: usize = suites
        .iter()
        .map(|suite| {
            suite
                .cases
                .iter()
                .filter(|case| {
                    Runner {
                        suites: &suites,
                        brokers: &brokers,
                        options: &options,
                    }
                    .selected(case)
                })
                .count()
        })
        .sum();
    if selected == 0 {
        bail!("no case matches --case {}", args.cases.join(" "));
    }
    println!(
        "kwire conform: {selected} cases from {} suite files",
        suites.len()
    );
    for broker in &brokers {
        let origin = match (&embedded, broker.label.as_str()) {
            (Some(embedded), "A") => format!(
                "embedded {}, started because no --bootstrap was given",
                embedded.description()
            ),
            (None, "A") => "external broker given with --bootstrap".to_owned(),
            _ => "external broker given with --against".to_owned(),
        };
        println!(
            "broker {}: {} ({}; {origin}; {} APIs advertised)",
            broker.label,
            broker.bootstrap,
            broker.transport,
            broker.advertised.len()
        );
    }
    let started = Instant::now();
    let runner = Runner {
        suites: &suites,
        brokers: &brokers,
        options: &options,
    };
    let mut terminal = Terminal {
        out: std::io::stdout(),
        style,
        strict: args.strict,
        brokers: brokers.len(),
        baseline: baseline.clone(),
    };
    let output = runner.run(&mut terminal);
    let verdict = conform::verdict(
        &output.results,
        &output.divergences,
        args.strict,
        baseline.as_ref(),
    );
    let report = Report {
        brokers: &brokers,
        suites: &suites,
        results: &output.results,
        divergences: &output.divergences,
        verdict: &verdict,
        strict: args.strict,
        baseline: baseline.as_ref(),
        duration: started.elapsed(),
    };
    report::write_summary(&mut std::io::stdout().lock(), style, &report)?;
    if args.tls_insecure {
        eprintln!("{INSECURE_WARNING}");
    }
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report::json(&report))?;
        write_file(path, &(text + "\n"))?;
    }
    if let Some(path) = &args.junit {
        write_file(path, &report::junit(&report))?;
    }
    if let Some(path) = &args.markdown {
        write_file(path, &report::markdown(&report))?;
    }
    if let Some(path) = &args.write_baseline {
        let json = Baseline::from_run(&output.results, &output.divergences, brokers.len() == 1);
        write_file(path, &(serde_json::to_string_pretty(&json)? + "\n"))?;
    }
    if let Some(tap) = &tap {
        let packets = tap
            .finish()
            .map_err(|error| anyhow::anyhow!("recording failed: {error}"))?;
        if let Some(path) = &args.record {
            println!("recorded {packets} packets to {}", path.display());
        }
    }
    Ok(ExitCode::from(verdict.exit_code))
}

/// Said before and after a `--tls-insecure` run.
const INSECURE_WARNING: &str = "kwire: WARNING: --tls-insecure: the brokers' certificates \
     were NOT verified; anyone on the path could read and change this run's traffic";

fn probe(label: &str, bootstrap: &str, options: &ConnectOptions) -> anyhow::Result<Broker> {
    match Broker::probe(label, bootstrap, options) {
        Ok(broker) => Ok(broker),
        // The reason says what went wrong and what to do.
        Err(ClientError::Tls { addr, reason }) => bail!("broker {label} at {addr}: TLS: {reason}"),
        // A TLS listener that gets a plaintext request may just close.
        Err(error) if error.is_closed() && options.tls.is_none() => bail!(
            "cannot reach broker {label} at {bootstrap}: {error} before answering ApiVersions \
             (if it is a TLS listener, add --tls)"
        ),
        Err(error @ (ClientError::Connect { .. } | ClientError::Resolve { .. })) => bail!(
            "cannot reach broker {label} at {bootstrap}: is it running and listening there? {error}"
        ),
        // It answered, but not as a Kafka broker should.
        Err(error) => bail!(
            "broker {label} at {bootstrap} did not answer ApiVersions as a Kafka broker: {error}"
        ),
    }
}

/// The TLS settings of `--tls` and its options.
fn tls_config(args: &Args) -> anyhow::Result<Option<TlsConfig>> {
    if !args.tls {
        return Ok(None);
    }
    let options = TlsOptions {
        ca: args.tls_ca.clone(),
        server_name: args.tls_server_name.clone(),
        cert: args.tls_cert.clone(),
        key: args.tls_key.clone(),
        insecure: args.tls_insecure,
    };
    Ok(Some(TlsConfig::new(&options).context("--tls")?))
}

/// The suite paths: as given, or `suites/` here, or the source tree's.
fn suite_paths(given: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    if !given.is_empty() {
        return Ok(given.to_vec());
    }
    let here = PathBuf::from("suites");
    if here.is_dir() {
        return Ok(vec![here]);
    }
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("suites");
    if source.is_dir() {
        return Ok(vec![source]);
    }
    bail!("no suites: pass --suite PATH (a suite file or a directory of them)")
}

fn sasl_config(args: &Args) -> anyhow::Result<Option<SaslConfig>> {
    let Some(name) = &args.sasl_mechanism else {
        if args.sasl_username.is_some() {
            bail!("--sasl-username needs --sasl-mechanism (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)");
        }
        return Ok(None);
    };
    let mechanism = Mechanism::parse(name).with_context(|| {
        format!(
            "--sasl-mechanism {name:?} is not supported: use PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"
        )
    })?;
    Ok(Some(SaslConfig {
        mechanism,
        username: args.sasl_username.clone().unwrap_or_default(),
        password: match &args.sasl_password {
            Some(password) => password.clone(),
            None => std::env::var("KWIRE_SASL_PASSWORD").with_context(|| {
                "--sasl-mechanism needs --sasl-password or KWIRE_SASL_PASSWORD".to_owned()
            })?,
        },
    }))
}

fn write_file(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}
