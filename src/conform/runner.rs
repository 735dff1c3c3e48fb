//! Running cases against brokers.
//!
//! The runner asks each broker for its API versions once, decides per case
//! whether it can run (or is skipped, with the reason), picks versions
//! (negotiated against every broker of the run, so that the differential
//! mode sends the same requests to both), plays the steps on named
//! connections, routes to leaders and coordinators it learns from Metadata
//! and FindCoordinator responses (asking for them itself when a step needs
//! one it has not seen), and after every case checks that the broker still
//! answers ApiVersions on a new connection.
//!
//! Everything is bounded: each case by its timeout, each response by the
//! I/O timeout, each retry loop by its count, each wait by its length.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::Value as Json;

use super::diff::{self, Divergence};
use super::glob;
use super::matcher::{Matcher, Mismatch};
use super::suite::{
    Awaits, Case, Level, RawExpect, RawStep, Requirement, Route, SaslStep, SendStep, StepKind,
    Suite, VersionPolicy,
};
use super::vars::{self, Vars};
use crate::client::sasl::{self, SaslConfig};
use crate::client::{self, Advertised, ClientError, ConnectOptions, Connection, Reaction};
use crate::codec::message_from_json;
use crate::display::to_json;
use crate::frame::{self, DecodedFrame};
use crate::schema::{self, ApiSpec, Versions};

/// A broker of the run, with what it advertised.
#[derive(Debug, Clone)]
pub struct Broker {
    /// How reports name it: `A`, `B`, or what the caller chose.
    pub label: String,
    /// The bootstrap address used for every `bootstrap` route.
    pub bootstrap: String,
    /// What the connections run over: `plaintext` or `TLS` (with notes),
    /// from [`ConnectOptions::transport`].
    pub transport: String,
    pub advertised: Advertised,
}

impl Broker {
    /// Connects to the first reachable address of a comma-separated
    /// bootstrap list and reads its ApiVersions. Every connection of the
    /// run uses the same `options`, TLS included.
    pub fn probe(
        label: &str,
        bootstrap: &str,
        options: &ConnectOptions,
    ) -> Result<Broker, ClientError> {
        let mut last_error = None;
        for addr in bootstrap
            .split(',')
            .map(str::trim)
            .filter(|addr| !addr.is_empty())
        {
            match client::api_versions(addr, options) {
                Ok(advertised) => {
                    return Ok(Broker {
                        label: label.to_owned(),
                        bootstrap: addr.to_owned(),
                        transport: options.transport(),
                        advertised,
                    })
                }
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error.unwrap_or_else(|| ClientError::Resolve {
            addr: bootstrap.to_owned(),
            reason: "no address given".to_owned(),
        }))
    }
}

/// How a run behaves, beyond the suites.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub connect: ConnectOptions,
    pub sasl: Option<SaslConfig>,
    /// Variables every case starts with (`--var`, `run`, SASL names).
    pub vars: Vars,
    /// `--case` globs; empty runs everything.
    pub case_globs: Vec<String>,
    /// Extra mask paths for the differential mode (`--mask`).
    pub masks: Vec<String>,
    /// Check after every case that the broker still answers ApiVersions.
    pub alive_check: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Pass,
    Fail,
    Skip,
    /// The case could not be run as written (a request that does not
    /// build after substitution, an undefined variable): a suite bug.
    Error,
}

impl Outcome {
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
            Outcome::Skip => "skip",
            Outcome::Error => "error",
        }
    }
}

/// Why a case failed: the step, what was sent, and what differed.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Failure {
    /// Index of the failing step; None for the check after the case.
    pub step: Option<usize>,
    /// `send ApiVersions v4 on main to 127.0.0.1:9092`.
    pub step_label: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<Json>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response: Option<Json>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mismatches: Vec<Mismatch>,
}

/// One step as it happened, for the differential mode and failure reports.
#[derive(Clone, Debug, serde::Serialize)]
pub struct StepRecord {
    pub index: usize,
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<i16>,
    /// `response`, `closed`, `silence`, `sent`, `waited`.
    pub outcome: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<Json>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response: Option<Json>,
    pub attempts: u32,
}

/// The result of one case at one version on one broker.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CaseResult {
    pub suite: String,
    pub file: String,
    pub id: String,
    pub title: String,
    pub spec: String,
    pub level: Level,
    /// The version of a `"version": "each"` case.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<i16>,
    pub broker: String,
    pub outcome: Outcome,
    pub duration_ms: u64,
    /// Why it was skipped, or what the error was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    /// Every step, kept for failed cases only.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub transcript: Vec<StepRecord>,
}

impl CaseResult {
    /// `handshake.api-versions.each@3`: the id baselines use.
    pub fn key(&self) -> String {
        match self.version {
            Some(version) => format!("{}@{version}", self.id),
            None => self.id.clone(),
        }
    }
}

/// Hears about the run as it goes, for live terminal output.
pub trait Progress {
    fn suite_started(&mut self, _suite: &Suite) {}
    fn case_finished(&mut self, _result: &CaseResult) {}
}

/// Progress that ignores everything.
pub struct Quiet;
impl Progress for Quiet {}

/// Everything a run produced.
#[derive(Debug, Default)]
pub struct RunOutput {
    pub results: Vec<CaseResult>,
    pub divergences: Vec<Divergence>,
}

pub struct Runner<'a> {
    pub suites: &'a [Suite],
    pub brokers: &'a [Broker],
    pub options: &'a RunOptions,
}

impl Runner<'_> {
    /// Whether a case is chosen by the `--case` globs.
    pub fn selected(&self, case: &Case) -> bool {
        self.options.case_globs.is_empty()
            || self
                .options
                .case_globs
                .iter()
                .any(|pattern| glob::matches(pattern, &case.id))
    }

    /// Runs every selected case of every suite on every broker.
    pub fn run(&self, progress: &mut dyn Progress) -> RunOutput {
        let mut output = RunOutput::default();
        for suite in self.suites {
            let cases: Vec<&Case> = suite
                .cases
                .iter()
                .filter(|case| self.selected(case))
                .collect();
            if cases.is_empty() {
                continue;
            }
            progress.suite_started(suite);
            for case in cases {
                self.run_case(suite, case, progress, &mut output);
            }
        }
        output
    }

    fn run_case(
        &self,
        suite: &Suite,
        case: &Case,
        progress: &mut dyn Progress,
        output: &mut RunOutput,
    ) {
        let plan = match self.plan(suite, case) {
            Ok(plan) => plan,
            Err(reason) => {
                for broker in self.brokers {
                    let result = self.finished(
                        suite,
                        case,
                        None,
                        broker,
                        Outcome::Skip,
                        Some(reason.clone()),
                        None,
                        Vec::new(),
                        Duration::ZERO,
                    );
                    progress.case_finished(&result);
                    output.results.push(result);
                }
                return;
            }
        };
        let versions: Vec<Option<i16>> = match plan.each {
            Some(range) => (range.min..=range.max).map(Some).collect(),
            None => vec![None],
        };
        for version in versions {
            let mut per_broker = Vec::with_capacity(self.brokers.len());
            for broker in self.brokers {
                let mut result = CaseRun::new(self, suite, case, broker, &plan, version).run();
                progress.case_finished(&result);
                let transcript = std::mem::take(&mut result.transcript);
                if result.outcome != Outcome::Pass {
                    result.transcript = transcript.clone();
                }
                per_broker.push((result, transcript));
            }
            if let [(a, a_steps), (b, b_steps)] = per_broker.as_slice() {
                let masks = self.masks(suite, case);
                output
                    .divergences
                    .extend(diff::compare(a, a_steps, b, b_steps, &masks));
            }
            output
                .results
                .extend(per_broker.into_iter().map(|(result, _)| result));
        }
    }

    /// The mask list for a case: defaults, `--mask`, the suite's, the case's.
    pub fn masks(&self, suite: &Suite, case: &Case) -> Vec<String> {
        diff::DEFAULT_MASKS
            .iter()
            .map(|mask| (*mask).to_owned())
            .chain(self.options.masks.iter().cloned())
            .chain(suite.masks.iter().cloned())
            .chain(case.masks.iter().cloned())
            .collect()
    }

    /// The versions of `api` that kwire and every broker support, within
    /// `bounds`; or why there are none.
    fn common_versions(&self, api: &ApiSpec, bounds: Versions) -> Result<Versions, String> {
        let mut range = Versions::new(
            api.request.valid.min.max(bounds.min),
            api.request.valid.max.min(bounds.max),
        );
        for broker in self.brokers {
            let Some(advertised) = broker.advertised.get(&api.key) else {
                return Err(format!(
                    "broker {} ({}) does not advertise {}",
                    broker.label, broker.bootstrap, api.name
                ));
            };
            range = Versions::new(range.min.max(advertised.min), range.max.min(advertised.max));
            if range.is_empty() {
                return Err(format!(
                    "no {} version in common: kwire v{}-{}, broker {} v{}-{}{}",
                    api.name,
                    api.request.valid.min,
                    api.request.valid.max,
                    broker.label,
                    advertised.min,
                    advertised.max,
                    if bounds == Versions::ALL {
                        String::new()
                    } else {
                        format!(", case needs v{}-{}", bounds.min, bounds.max)
                    }
                ));
            }
        }
        Ok(range)
    }

    /// Decides whether a case can run, and at which versions.
    fn plan(&self, suite: &Suite, case: &Case) -> Result<Plan, String> {
        let mut bounds: HashMap<i16, Versions> = HashMap::new();
        let mut known_vars = self.options.vars.clone();
        known_vars.extend(suite.vars.clone());
        known_vars.extend(case.vars.clone());
        for requirement in &case.requires {
            match requirement {
                Requirement::Var { name, matcher } => {
                    let Some(value) = known_vars.get(name) else {
                        if name.starts_with("sasl_") {
                            return Err(format!(
                                "needs a SASL listener and the run's SASL options (`{name}` comes from \
                                 --sasl-mechanism, --sasl-username and --sasl-password)"
                            ));
                        }
                        return Err(format!(
                            "needs the variable `{name}` (give it with --var {name}=VALUE)"
                        ));
                    };
                    if let Some(json) = matcher {
                        let matcher = Matcher::parse(json, "requires.match")?;
                        if !matcher.is_match(Some(value), &known_vars) {
                            return Err(format!(
                                "needs `{name}` to match {} (it is {})",
                                super::matcher::show(json),
                                super::matcher::show(value)
                            ));
                        }
                    }
                }
                Requirement::Api {
                    api,
                    min_version,
                    max_version,
                } => {
                    let wanted =
                        Versions::new(min_version.unwrap_or(0), max_version.unwrap_or(i16::MAX));
                    let entry = bounds.entry(api.key).or_insert(Versions::ALL);
                    *entry = Versions::new(entry.min.max(wanted.min), entry.max.min(wanted.max));
                    self.common_versions(api, *entry)?;
                }
            }
        }
        let bound = |api: &ApiSpec| bounds.get(&api.key).copied().unwrap_or(Versions::ALL);
        let mut ranges = HashMap::new();
        for step in &case.steps {
            let StepKind::Send(send) = &step.kind else {
                continue;
            };
            let api = send.api;
            if send.if_advertised {
                // Played on each broker that advertises it (at the version
                // all share when they all do): never a reason to skip.
                if let Ok(range) = self.common_versions(api, bound(api)) {
                    ranges.entry(api.key).or_insert(range);
                }
                continue;
            }
            match send.version {
                VersionPolicy::Max | VersionPolicy::Min | VersionPolicy::Each => {
                    ranges.insert(api.key, self.common_versions(api, bound(api))?);
                }
                VersionPolicy::Exact(version) => {
                    if version > api.request.valid.max && !send.send_unadvertised {
                        return Err(format!(
                            "kwire knows {} up to v{}, the case sends v{version}",
                            api.name, api.request.valid.max
                        ));
                    }
                    if !send.send_unadvertised {
                        for broker in self.brokers {
                            let advertised = broker.advertised.get(&api.key);
                            if !advertised.is_some_and(|range| range.contains(version)) {
                                return Err(format!(
                                    "broker {} does not advertise {} v{version}{}",
                                    broker.label,
                                    api.name,
                                    advertised.map_or_else(String::new, |range| format!(
                                        " (it advertises v{}-{})",
                                        range.min, range.max
                                    ))
                                ));
                            }
                        }
                    }
                }
                VersionPolicy::AboveMax(_) | VersionPolicy::BelowMin(_) => {
                    for broker in self.brokers {
                        if !broker.advertised.contains_key(&api.key) {
                            return Err(format!(
                                "broker {} does not advertise {}, so it has no maximum to go past",
                                broker.label, api.name
                            ));
                        }
                    }
                }
            }
        }
        let each = case.each_api.and_then(|api| ranges.get(&api.key).copied());
        Ok(Plan {
            ranges,
            each,
            bounds,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn finished(
        &self,
        suite: &Suite,
        case: &Case,
        version: Option<i16>,
        broker: &Broker,
        outcome: Outcome,
        reason: Option<String>,
        failure: Option<Failure>,
        transcript: Vec<StepRecord>,
        duration: Duration,
    ) -> CaseResult {
        CaseResult {
            suite: suite.name.clone(),
            file: suite.file.display().to_string(),
            id: case.id.clone(),
            title: case.title.clone(),
            spec: case.spec.clone(),
            level: case.level,
            version,
            broker: broker.label.clone(),
            outcome,
            duration_ms: u64::try_from(duration.as_millis()).unwrap_or(u64::MAX),
            reason,
            failure,
            transcript,
        }
    }
}

/// What `plan` decided for a case.
struct Plan {
    /// Common version range per API key, for max/min/each policies.
    ranges: HashMap<i16, Versions>,
    /// The versions an "each" case runs through.
    each: Option<Versions>,
    /// The case's version bounds per API key, from `requires`.
    bounds: HashMap<i16, Versions>,
}

/// Why a case stopped early.
enum Stop {
    Fail(Box<Failure>),
    Error(String),
}

/// A request sent with `"deferred": true`, waiting for its `receive` step.
struct Deferred<'r> {
    send: &'r SendStep,
    /// The step that sent it, for messages.
    index: usize,
    version: i16,
    request: Json,
    key: (String, String),
    sent_at: Instant,
}

/// Longest string a transcript shows of a request; the rest is counted.
const MAX_RECORDED_STRING: usize = 1024;

/// A request for the transcript and reports: strings longer than
/// [`MAX_RECORDED_STRING`] (a megabyte of record values) are cut.
fn abbreviate(json: &Json) -> Json {
    match json {
        Json::String(text) if text.len() > MAX_RECORDED_STRING => {
            let cut: String = text.chars().take(64).collect();
            Json::String(format!("{cut}… ({} bytes)", text.len()))
        }
        Json::Array(items) => Json::Array(items.iter().map(abbreviate).collect()),
        Json::Object(object) => Json::Object(
            object
                .iter()
                .map(|(key, value)| (key.clone(), abbreviate(value)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// How long a lookup of a leader or coordinator keeps asking.
const LOOKUP_ATTEMPTS: u32 = 20;
const LOOKUP_BACKOFF: Duration = Duration::from_millis(250);
/// The internal connection that lookups use.
const LOOKUP_CONNECTION: &str = "_lookup";

/// The state of one case being played on one broker.
struct CaseRun<'r> {
    runner: &'r Runner<'r>,
    suite: &'r Suite,
    case: &'r Case,
    broker: &'r Broker,
    plan: &'r Plan,
    version: Option<i16>,
    vars: Vars,
    /// Open connections by (name, address).
    connections: HashMap<(String, String), Connection>,
    /// Broker addresses by node id, from Metadata and FindCoordinator.
    nodes: HashMap<i64, String>,
    leaders: HashMap<(String, i64), i64>,
    coordinators: HashMap<(i8, String), i64>,
    transcript: Vec<StepRecord>,
    /// Deferred sends waiting for their `receive` step, oldest first.
    deferred: Vec<Deferred<'r>>,
    started: Instant,
    deadline: Instant,
    /// The step being played, for failures raised deep inside.
    step: usize,
    step_label: String,
}

impl<'r> CaseRun<'r> {
    fn new(
        runner: &'r Runner<'r>,
        suite: &'r Suite,
        case: &'r Case,
        broker: &'r Broker,
        plan: &'r Plan,
        version: Option<i16>,
    ) -> CaseRun<'r> {
        let started = Instant::now();
        CaseRun {
            runner,
            suite,
            case,
            broker,
            plan,
            version,
            vars: Vars::new(),
            connections: HashMap::new(),
            nodes: HashMap::new(),
            leaders: HashMap::new(),
            coordinators: HashMap::new(),
            transcript: Vec::new(),
            deferred: Vec::new(),
            started,
            deadline: started + case.timeout,
            step: 0,
            step_label: String::new(),
        }
    }

    fn run(mut self) -> CaseResult {
        let mut outcome = match self.setup_vars().and_then(|()| self.play()) {
            Ok(()) => (Outcome::Pass, None, None),
            Err(Stop::Fail(failure)) => (Outcome::Fail, None, Some(*failure)),
            Err(Stop::Error(message)) => (
                Outcome::Error,
                Some(format!(
                    "step {} ({}): {message}",
                    self.step, self.step_label
                )),
                None,
            ),
        };
        self.connections.clear();
        if self.runner.options.alive_check {
            if let Err(message) = self.alive() {
                if outcome.0 != Outcome::Fail {
                    outcome = (
                        Outcome::Fail,
                        outcome.1,
                        Some(Failure {
                            step: None,
                            step_label: "after the case: ApiVersions v0 on a new connection"
                                .to_owned(),
                            message: format!("the broker stopped serving: {message}"),
                            request: None,
                            response: None,
                            mismatches: Vec::new(),
                        }),
                    );
                } else if let Some(failure) = outcome.2.as_mut() {
                    failure.message.push_str(&format!(
                        "; afterwards the broker stopped serving: {message}"
                    ));
                }
            }
        }
        let duration = self.started.elapsed();
        let transcript = std::mem::take(&mut self.transcript);
        self.runner.finished(
            self.suite,
            self.case,
            self.version,
            self.broker,
            outcome.0,
            outcome.1,
            outcome.2,
            transcript,
            duration,
        )
    }

    /// Run variables, then the suite's and the case's (which may refer to
    /// the earlier ones).
    fn setup_vars(&mut self) -> Result<(), Stop> {
        self.step_label = "variables".to_owned();
        self.vars = self.runner.options.vars.clone();
        self.vars
            .insert("case".to_owned(), Json::String(self.case.id.clone()));
        self.vars
            .insert("broker".to_owned(), Json::String(self.broker.label.clone()));
        if let Some(version) = self.version {
            self.vars.insert("version".to_owned(), Json::from(version));
        }
        for (name, value) in self.suite.vars.iter().chain(&self.case.vars) {
            let value = vars::substitute(value, &self.vars)
                .and_then(|value| vars::generate(&value))
                .map_err(|error| Stop::Error(format!("vars.{name}: {error}")))?;
            self.vars.insert(name.clone(), value);
        }
        Ok(())
    }

    fn play(&mut self) -> Result<(), Stop> {
        for (index, step) in self.case.steps.iter().enumerate() {
            self.step = index;
            self.step_label = step.kind.name().to_owned();
            self.check_deadline()?;
            match &step.kind {
                StepKind::Send(send) => self.send(index, send)?,
                StepKind::Raw(raw) => self.raw(index, raw)?,
                StepKind::Wait(duration) => {
                    self.step_label = format!("wait {} ms", duration.as_millis());
                    std::thread::sleep((*duration).min(self.remaining()));
                    self.record(index, "wait", None, None, "waited", None, None, 1);
                }
                StepKind::Close(name) => {
                    self.step_label = format!("close {name}");
                    self.connections
                        .retain(|(connection, _), _| connection != name);
                    self.record(index, "close", None, None, "closed", None, None, 1);
                }
                StepKind::Receive(name) => self.receive(index, name)?,
                StepKind::Sasl(step) => self.sasl(index, step)?,
            }
        }
        Ok(())
    }

    fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    fn check_deadline(&self) -> Result<(), Stop> {
        if Instant::now() >= self.deadline {
            return Err(self.fail(
                format!(
                    "the case ran out of time ({} ms)",
                    self.case.timeout.as_millis()
                ),
                None,
                None,
                Vec::new(),
            ));
        }
        Ok(())
    }

    fn fail(
        &self,
        message: String,
        request: Option<Json>,
        response: Option<Json>,
        mismatches: Vec<Mismatch>,
    ) -> Stop {
        Stop::Fail(Box::new(Failure {
            step: Some(self.step),
            step_label: self.step_label.clone(),
            message,
            request: request.as_ref().map(abbreviate),
            response,
            mismatches,
        }))
    }

    #[allow(clippy::too_many_arguments)]
    fn record(
        &mut self,
        index: usize,
        kind: &'static str,
        api: Option<&'static str>,
        version: Option<i16>,
        outcome: &str,
        request: Option<Json>,
        response: Option<Json>,
        attempts: u32,
    ) {
        self.transcript.push(StepRecord {
            index,
            kind,
            api,
            version,
            outcome: outcome.to_owned(),
            request: request.as_ref().map(abbreviate),
            response,
            attempts,
        });
    }

    /// The versions of an `if_advertised` step's API that kwire and this
    /// broker support, within the case's bounds: such a step is played on
    /// each broker that has the API, even when the other does not.
    fn own_range(&self, api: &ApiSpec) -> Option<Versions> {
        let advertised = self.broker.advertised.get(&api.key)?;
        let bounds = self
            .plan
            .bounds
            .get(&api.key)
            .copied()
            .unwrap_or(Versions::ALL);
        let known = api.request.valid;
        let range = Versions::new(
            known.min.max(advertised.min).max(bounds.min),
            known.max.min(advertised.max).min(bounds.max),
        );
        (!range.is_empty()).then_some(range)
    }

    /// The version range a send step chooses from: the one planned for
    /// every broker, or this broker's own for an `if_advertised` step.
    fn step_range(&self, send: &SendStep) -> Option<Versions> {
        let planned = self.plan.ranges.get(&send.api.key).copied();
        if send.if_advertised {
            return planned.or_else(|| self.own_range(send.api));
        }
        planned
    }

    /// The header version and body version a send step uses on this broker.
    fn versions(&self, send: &SendStep) -> Result<(i16, i16), Stop> {
        let api = send.api;
        let known = api.request.valid;
        let range = self.step_range(send);
        let advertised = self.broker.advertised.get(&api.key).copied();
        let missing = || Stop::Error(format!("no version of {} was planned", api.name));
        let version = match send.version {
            VersionPolicy::Max => range.ok_or_else(missing)?.max,
            VersionPolicy::Min => range.ok_or_else(missing)?.min,
            VersionPolicy::Each => match self.version {
                Some(version) if self.case.each_api.is_some_and(|each| each.key == api.key) => {
                    version
                }
                _ => range.ok_or_else(missing)?.max,
            },
            VersionPolicy::Exact(version) => version,
            VersionPolicy::AboveMax(offset) => {
                advertised.ok_or_else(missing)?.max.saturating_add(offset)
            }
            VersionPolicy::BelowMin(offset) => {
                advertised.ok_or_else(missing)?.min.saturating_sub(offset)
            }
        };
        Ok((version, version.clamp(known.min, known.max)))
    }

    fn send(&mut self, index: usize, send: &'r SendStep) -> Result<(), Stop> {
        let api = send.api;
        let advertised = match send.version {
            VersionPolicy::Exact(version) => self
                .broker
                .advertised
                .get(&api.key)
                .is_some_and(|range| range.contains(version)),
            _ => self.step_range(send).is_some(),
        };
        if send.if_advertised && !advertised {
            self.step_label = format!("send {} (if advertised)", api.name);
            self.record(
                index,
                "send",
                Some(api.name),
                None,
                &format!("{}: skipped", diff::NOT_ADVERTISED),
                None,
                None,
                0,
            );
            return Ok(());
        }
        let (version, body_version) = self.versions(send)?;
        self.step_label = format!(
            "send {} v{version} on {} to {}",
            api.name, send.connection, send.to
        );
        let addr = self.route(&send.to)?;
        self.step_label = format!(
            "send {} v{version} on {} to {} ({addr})",
            api.name, send.connection, send.to
        );
        let timeout = send
            .timeout
            .unwrap_or(self.runner.options.connect.io_timeout);
        let attempts = send.retry.as_ref().map_or(1, |retry| retry.max + 1);
        let key = (send.connection.clone(), addr.clone());
        for attempt in 1..=attempts {
            self.check_deadline()?;
            let last = attempt == attempts;
            // Built for every attempt: a retried response's captures may
            // change it (KIP-394 hands out the member id in the
            // MEMBER_ID_REQUIRED answer that a JoinGroup retry must carry).
            let request = vars::substitute(&send.request, &self.vars).map_err(Stop::Error)?;
            let body = message_from_json(api.request, body_version, &request).map_err(|error| {
                Stop::Error(format!(
                    "the request does not build at v{body_version}: {error}"
                ))
            })?;
            self.connection(&send.connection, &addr)?;
            let wait = timeout.min(self.remaining());
            let Some(connection) = self.connections.get_mut(&key) else {
                return Err(Stop::Error("the connection vanished".to_owned()));
            };
            let expect_response = matches!(send.awaits, Awaits::Response | Awaits::Later);
            let sent_at = Instant::now();
            if let Err(error) =
                connection.send_versioned(api.key, version, body_version, &body, expect_response)
            {
                let closed = error.is_closed();
                if closed {
                    self.connections.remove(&key);
                }
                return Err(self.fail(
                    format!("cannot send: {error}"),
                    Some(request),
                    None,
                    Vec::new(),
                ));
            }
            match send.awaits {
                Awaits::NoResponse => {
                    self.record(
                        index,
                        "send",
                        Some(api.name),
                        Some(version),
                        "sent",
                        Some(request),
                        None,
                        attempt,
                    );
                    return Ok(());
                }
                Awaits::Later => {
                    self.record(
                        index,
                        "send",
                        Some(api.name),
                        Some(version),
                        "sent (deferred)",
                        Some(request.clone()),
                        None,
                        attempt,
                    );
                    self.deferred.push(Deferred {
                        send,
                        index,
                        version,
                        request,
                        key,
                        sent_at,
                    });
                    return Ok(());
                }
                Awaits::Close => {
                    let reaction = connection.wait_for_reaction(wait);
                    return self.expect_close(index, api, version, request, reaction, wait);
                }
                Awaits::Response => {}
            }
            let received = connection.receive_within(wait);
            let elapsed = sent_at.elapsed();
            let frame = match received {
                Ok(frame) => frame,
                Err(error) => {
                    if error.is_closed() {
                        self.connections.remove(&key);
                    }
                    return Err(self.receive_failure(error, request));
                }
            };
            let (body_json, header_json) = match response_json(&frame) {
                Ok(json) => json,
                Err(message) => {
                    let partial = frame.body.as_ref().map(to_json);
                    return Err(self.fail(message, Some(request), partial, Vec::new()));
                }
            };
            self.learn(api, &request, &body_json);
            if let Some(retry) = &send.retry {
                let retriable = select(&body_json, &retry.at)
                    .into_iter()
                    .filter_map(Json::as_i64)
                    .any(|code| retry.on.iter().any(|&on| i64::from(on) == code));
                if retriable && !last {
                    self.capture_present(send, &body_json);
                    std::thread::sleep(retry.backoff.min(self.remaining()));
                    continue;
                }
            }
            let mismatches = self.evaluate(send, &body_json, &header_json, elapsed)?;
            if !mismatches.is_empty()
                && !last
                && send.retry.as_ref().is_some_and(|retry| retry.until_expect)
            {
                if let Some(retry) = &send.retry {
                    std::thread::sleep(retry.backoff.min(self.remaining()));
                }
                continue;
            }
            return self.conclude(
                index, send, version, request, body_json, mismatches, attempt,
            );
        }
        Err(Stop::Error("retry loop ended without a result".to_owned()))
    }

    /// Takes the captures a retried response has, before the retry.
    fn capture_present(&mut self, send: &SendStep, body: &Json) {
        for capture in &send.capture {
            if let Some(value) = select(body, &capture.path).into_iter().next() {
                self.vars.insert(capture.var.clone(), value.clone());
            }
        }
    }

    /// A `receive` step: reads the response to the oldest deferred send on
    /// the connection and checks it as that send step says.
    fn receive(&mut self, index: usize, name: &str) -> Result<(), Stop> {
        let Some(position) = self
            .deferred
            .iter()
            .position(|deferred| deferred.key.0 == name)
        else {
            return Err(Stop::Error(format!(
                "no deferred request on connection {name} waits for a response"
            )));
        };
        let deferred = self.deferred.remove(position);
        let send = deferred.send;
        let api = send.api;
        self.step_label = format!(
            "receive {} v{} on {} ({}), sent by step {}",
            api.name, deferred.version, name, deferred.key.1, deferred.index
        );
        let timeout = send
            .timeout
            .unwrap_or(self.runner.options.connect.io_timeout)
            .min(self.remaining());
        let Some(connection) = self.connections.get_mut(&deferred.key) else {
            return Err(self.fail(
                format!("connection {name} was closed before its response was read"),
                Some(deferred.request),
                None,
                Vec::new(),
            ));
        };
        let received = connection.receive_within(timeout);
        let elapsed = deferred.sent_at.elapsed();
        let frame = match received {
            Ok(frame) => frame,
            Err(error) => {
                if error.is_closed() {
                    self.connections.remove(&deferred.key);
                }
                return Err(self.receive_failure(error, deferred.request));
            }
        };
        let (body_json, header_json) = match response_json(&frame) {
            Ok(json) => json,
            Err(message) => {
                let partial = frame.body.as_ref().map(to_json);
                return Err(self.fail(message, Some(deferred.request), partial, Vec::new()));
            }
        };
        self.learn(api, &deferred.request, &body_json);
        let mismatches = self.evaluate(send, &body_json, &header_json, elapsed)?;
        self.conclude(
            index,
            send,
            deferred.version,
            deferred.request,
            body_json,
            mismatches,
            1,
        )
    }

    /// Checks a response body, header and timing against a send step.
    fn evaluate(
        &self,
        send: &SendStep,
        body: &Json,
        header: &Json,
        elapsed: Duration,
    ) -> Result<Vec<Mismatch>, Stop> {
        let mut mismatches = Vec::new();
        if let Some(expect) = &send.expect {
            mismatches.extend(self.check(expect, body, "")?);
        }
        if let Some(expect) = &send.expect_header {
            mismatches.extend(self.check(expect, header, "header")?);
        }
        if let Some(expect) = &send.expect_duration {
            let millis = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
            let mut found = self.check(expect, &Json::from(millis), "")?;
            for mismatch in &mut found {
                mismatch.path = "(response time, ms)".to_owned();
            }
            mismatches.extend(found);
        }
        Ok(mismatches)
    }

    /// Records a checked response, and fails the step or captures its
    /// variables.
    #[allow(clippy::too_many_arguments)]
    fn conclude(
        &mut self,
        index: usize,
        send: &SendStep,
        version: i16,
        request: Json,
        body_json: Json,
        mismatches: Vec<Mismatch>,
        attempt: u32,
    ) -> Result<(), Stop> {
        let api = send.api;
        self.record(
            index,
            "send",
            Some(api.name),
            Some(version),
            "response",
            Some(request.clone()),
            Some(body_json.clone()),
            attempt,
        );
        if !mismatches.is_empty() {
            let count = mismatches.len();
            return Err(self.fail(
                format!(
                    "the response differs from the expectation in {count} place{}{}",
                    if count == 1 { "" } else { "s" },
                    if attempt > 1 {
                        format!(" (after {attempt} attempts)")
                    } else {
                        String::new()
                    }
                ),
                Some(request),
                Some(body_json),
                mismatches,
            ));
        }
        for capture in &send.capture {
            let value = match select(&body_json, &capture.path).into_iter().next() {
                Some(value) => value.clone(),
                None => match &capture.default {
                    Some(default) => default.clone(),
                    None => {
                        return Err(self.fail(
                            format!(
                                "capture {}: the response has nothing at {}",
                                capture.var, capture.path
                            ),
                            Some(request),
                            Some(body_json),
                            Vec::new(),
                        ))
                    }
                },
            };
            self.vars.insert(capture.var.clone(), value);
        }
        Ok(())
    }

    fn expect_close(
        &mut self,
        index: usize,
        api: &'static ApiSpec,
        version: i16,
        request: Json,
        reaction: Result<Reaction, ClientError>,
        waited: Duration,
    ) -> Result<(), Stop> {
        match reaction {
            Ok(Reaction::Closed) => {
                self.connections.retain(|_, connection| !connection.is_closed());
                self.record(index, "send", Some(api.name), Some(version), "closed", Some(request), None, 1);
                Ok(())
            }
            Ok(Reaction::Frame(frame)) => {
                let decoded = frame::decode_response(frame, api.key, version, &Default::default());
                let response = decoded.body.as_ref().map(to_json);
                Err(self.fail(
                    "expected the broker to close the connection; it answered".to_owned(),
                    Some(request),
                    response,
                    Vec::new(),
                ))
            }
            Ok(Reaction::Silence) => Err(self.fail(
                format!(
                    "expected the broker to close the connection; it kept it open for {} ms without answering",
                    waited.as_millis()
                ),
                Some(request),
                None,
                Vec::new(),
            )),
            Err(error) => Err(self.fail(format!("while waiting for a close: {error}"), Some(request), None, Vec::new())),
        }
    }

    fn receive_failure(&self, error: ClientError, request: Json) -> Stop {
        match error {
            ClientError::CorrelationMismatch {
                expected,
                actual,
                answers_no_response,
                frame,
            } => {
                let response = frame.body.as_ref().map(to_json);
                let message = if answers_no_response {
                    "the broker answered a request sent expecting no response (protocol guide, \
                     Produce API: with acks=0 the server sends no response)"
                } else {
                    "the response carries another request's correlation id (protocol guide: \
                     responses come in request order)"
                };
                self.fail(
                    message.to_owned(),
                    Some(request),
                    response,
                    vec![Mismatch {
                        path: "header.correlation_id".to_owned(),
                        expected: expected.to_string(),
                        actual: actual.map_or_else(|| "(absent)".to_owned(), |id| id.to_string()),
                    }],
                )
            }
            ClientError::Closed { .. } => self.fail(
                format!("{error} instead of answering"),
                Some(request),
                None,
                Vec::new(),
            ),
            other => self.fail(other.to_string(), Some(request), None, Vec::new()),
        }
    }

    /// Substitutes, parses and checks a matcher.
    fn check(&self, expect: &Json, actual: &Json, prefix: &str) -> Result<Vec<Mismatch>, Stop> {
        let expect = vars::substitute(expect, &self.vars).map_err(Stop::Error)?;
        let matcher = Matcher::parse(&expect, "expect").map_err(Stop::Error)?;
        let mut mismatches = matcher.mismatches(actual, &self.vars);
        if !prefix.is_empty() {
            for mismatch in &mut mismatches {
                mismatch.path = if mismatch.path.is_empty() {
                    prefix.to_owned()
                } else {
                    format!("{prefix}.{}", mismatch.path)
                };
            }
        }
        Ok(mismatches)
    }

    fn raw(&mut self, index: usize, raw: &RawStep) -> Result<(), Stop> {
        let addr = self.route(&raw.to)?;
        self.step_label = format!(
            "raw {} bytes on {} to {} ({addr}), expecting {}",
            raw.bytes.len(),
            raw.connection,
            raw.to,
            raw.expect.name()
        );
        let key = (raw.connection.clone(), addr.clone());
        self.connection(&raw.connection, &addr)?;
        let wait = raw.timeout.min(self.remaining());
        let Some(connection) = self.connections.get_mut(&key) else {
            return Err(Stop::Error("the connection vanished".to_owned()));
        };
        let shown = Json::String(crate::value::hex(&raw.bytes));
        let mut sent = connection.send_raw(&raw.bytes);
        if sent.is_ok() && raw.shutdown_write {
            sent = connection.shutdown_write();
        }
        let reaction = match sent {
            Ok(()) => connection.wait_for_reaction(wait),
            // A broker may close while the bytes are still going out.
            Err(error) if error.is_closed() => Ok(Reaction::Closed),
            Err(error) => Err(error),
        };
        let reaction = match reaction {
            Ok(reaction) => reaction,
            Err(error) => return Err(self.fail(error.to_string(), Some(shown), None, Vec::new())),
        };
        let (outcome, response) = match &reaction {
            Reaction::Closed => ("closed", None),
            Reaction::Silence => ("silence", None),
            Reaction::Frame(frame) => (
                "response",
                Some(decode_raw_answer(&raw.bytes, frame.clone())),
            ),
        };
        if outcome == "closed" {
            self.connections.remove(&key);
        }
        self.record(
            index,
            "raw",
            None,
            None,
            outcome,
            Some(shown.clone()),
            response.clone(),
            1,
        );
        let wanted = match raw.expect {
            RawExpect::Close => outcome == "closed",
            RawExpect::ErrorResponse => outcome == "response",
            RawExpect::CloseOrError => outcome != "silence",
            RawExpect::Silence => outcome == "silence",
        };
        if !wanted {
            let what = match outcome {
                "closed" => "the broker closed the connection".to_owned(),
                "silence" => format!(
                    "the broker neither answered nor closed within {} ms",
                    wait.as_millis()
                ),
                _ => "the broker answered".to_owned(),
            };
            return Err(self.fail(
                format!("expected {}; {what}", raw.expect.name()),
                Some(shown),
                response,
                Vec::new(),
            ));
        }
        if let Some(response) = &response {
            if raw.expect != RawExpect::Silence {
                // An answer to bad input must say it is an error.
                if let Some(code) = response.get("error_code").and_then(Json::as_i64) {
                    if code == 0 && raw.matcher.is_none() {
                        return Err(self.fail(
                            "the broker answered malformed input with error_code NONE".to_owned(),
                            Some(shown),
                            Some(response.clone()),
                            Vec::new(),
                        ));
                    }
                }
            }
            if let Some(expect) = &raw.matcher {
                let mismatches = self.check(expect, response, "")?;
                if !mismatches.is_empty() {
                    return Err(self.fail(
                        "the answer differs from the expectation".to_owned(),
                        Some(shown),
                        Some(response.clone()),
                        mismatches,
                    ));
                }
            }
        }
        Ok(())
    }

    /// The SaslAuthenticate version kwire uses with this broker: its
    /// highest, at most 2.
    fn sasl_authenticate_version(&self) -> Result<i16, Stop> {
        self.broker
            .advertised
            .get(&schema::SASL_AUTHENTICATE_KEY)
            .map(|range| range.max.min(2))
            .ok_or_else(|| {
                self.fail(
                    "SASL was asked for, but the broker does not advertise SaslAuthenticate"
                        .to_owned(),
                    None,
                    None,
                    Vec::new(),
                )
            })
    }

    /// A `sasl` step: the run's mechanism on a connection of a case that
    /// does not authenticate by itself, with the step's credentials. The
    /// password never reaches the transcript or the reports.
    fn sasl(&mut self, index: usize, step: &SaslStep) -> Result<(), Stop> {
        let Some(run_config) = &self.runner.options.sasl else {
            return Err(Stop::Error(
                "a sasl step needs the run's SASL options (--sasl-mechanism, --sasl-username, --sasl-password)"
                    .to_owned(),
            ));
        };
        let text = |run: &CaseRun, given: &Option<String>, default: &str| match given {
            Some(text) => vars::substitute_text(text, &run.vars).map_err(Stop::Error),
            None => Ok(default.to_owned()),
        };
        let config = SaslConfig {
            mechanism: run_config.mechanism,
            username: text(self, &step.username, &run_config.username)?,
            password: text(self, &step.password, &run_config.password)?,
        };
        let addr = self.broker.bootstrap.clone();
        self.step_label = format!(
            "sasl {} as {:?} on {} to bootstrap ({addr})",
            config.mechanism.name(),
            config.username,
            step.connection
        );
        self.connection(&step.connection, &addr)?;
        let version = self.sasl_authenticate_version()?;
        let key = (step.connection.clone(), addr);
        let exchange = match self.connections.get_mut(&key) {
            Some(connection) => sasl::exchange(connection, &config, version),
            None => return Err(Stop::Error("the connection was not opened".to_owned())),
        };
        let exchange = exchange.map_err(|error| {
            self.fail(
                format!("the SASL exchange broke off: {error}"),
                None,
                None,
                Vec::new(),
            )
        })?;
        let (api, response_version, response) = match &exchange.last {
            Some(last) => ("SaslAuthenticate", version, to_json(last)),
            None => ("SaslHandshake", 1, to_json(&exchange.handshake)),
        };
        let summary = match &exchange.outcome {
            Ok(()) => "authenticated".to_owned(),
            Err(reason) => format!("not authenticated: {reason}"),
        };
        self.record(
            index,
            "sasl",
            Some(api),
            Some(response_version),
            &summary,
            None,
            Some(response.clone()),
            1,
        );
        match (&step.expect, &exchange.last) {
            (Some(expect), Some(_)) => {
                let mismatches = self.check(expect, &response, "")?;
                if !mismatches.is_empty() {
                    return Err(self.fail(
                        format!("the last SaslAuthenticate answer differs from the expectation ({summary})"),
                        None,
                        Some(response),
                        mismatches,
                    ));
                }
                Ok(())
            }
            _ => match exchange.outcome {
                Ok(()) => Ok(()),
                Err(reason) => Err(self.fail(
                    format!("the SASL exchange did not complete: {reason}"),
                    None,
                    Some(response),
                    Vec::new(),
                )),
            },
        }
    }

    /// Opens (and authenticates) the named connection to `addr` unless it
    /// is already open.
    fn connection(&mut self, name: &str, addr: &str) -> Result<(), Stop> {
        let key = (name.to_owned(), addr.to_owned());
        if self
            .connections
            .get(&key)
            .is_some_and(|connection| !connection.is_closed())
        {
            return Ok(());
        }
        let mut connection = Connection::connect(addr, self.runner.options.connect.clone())
            .map_err(|error| self.fail(error.to_string(), None, None, Vec::new()))?;
        if let (Some(config), true) = (&self.runner.options.sasl, self.case.authenticate) {
            let version = self.sasl_authenticate_version()?;
            sasl::authenticate(&mut connection, config, version).map_err(|error| {
                self.fail(
                    format!("authentication failed: {error}"),
                    None,
                    None,
                    Vec::new(),
                )
            })?;
        }
        self.connections.insert(key, connection);
        Ok(())
    }

    /// The address a route leads to, looking leaders and coordinators up
    /// when no earlier response named them.
    fn route(&mut self, route: &Route) -> Result<String, Stop> {
        let text =
            |run: &CaseRun, arg: &str| vars::substitute_text(arg, &run.vars).map_err(Stop::Error);
        match route {
            Route::Bootstrap => Ok(self.broker.bootstrap.clone()),
            Route::Node(id) => {
                let id = parse_int(&text(self, id)?)?;
                self.node_addr(id)
            }
            Route::Leader { topic, partition } => {
                let topic = text(self, topic)?;
                let partition = parse_int(&text(self, partition)?)?;
                let key = (topic.clone(), partition);
                if !self.leaders.contains_key(&key) {
                    self.lookup_leader(&topic, partition)?;
                }
                match self.leaders.get(&key).copied() {
                    Some(leader) => self.node_addr(leader),
                    None => Err(self.fail(
                        format!("Metadata names no leader for {topic} partition {partition}"),
                        None,
                        None,
                        Vec::new(),
                    )),
                }
            }
            Route::Coordinator { key, key_type } => {
                let key = text(self, key)?;
                let entry = (*key_type, key.clone());
                if !self.coordinators.contains_key(&entry) {
                    self.lookup_coordinator(&key, *key_type)?;
                }
                match self.coordinators.get(&entry).copied() {
                    Some(node) => self.node_addr(node),
                    None => Err(self.fail(
                        format!("FindCoordinator names no coordinator for {key}"),
                        None,
                        None,
                        Vec::new(),
                    )),
                }
            }
        }
    }

    fn node_addr(&mut self, id: i64) -> Result<String, Stop> {
        if !self.nodes.contains_key(&id) {
            self.lookup_metadata(None)?;
        }
        self.nodes.get(&id).cloned().ok_or_else(|| {
            self.fail(
                format!("node {id} is not among the brokers Metadata lists"),
                None,
                None,
                Vec::new(),
            )
        })
    }

    /// Asks for the leader of a partition until the broker names one.
    fn lookup_leader(&mut self, topic: &str, partition: i64) -> Result<(), Stop> {
        for _ in 0..LOOKUP_ATTEMPTS {
            self.lookup_metadata(Some(topic))?;
            if self
                .leaders
                .get(&(topic.to_owned(), partition))
                .is_some_and(|leader| *leader >= 0)
            {
                return Ok(());
            }
            if self.remaining() < LOOKUP_BACKOFF {
                break;
            }
            std::thread::sleep(LOOKUP_BACKOFF);
        }
        Ok(())
    }

    fn lookup_metadata(&mut self, topic: Option<&str>) -> Result<(), Stop> {
        let api = schema::api(3).ok_or_else(|| Stop::Error("Metadata is unknown".to_owned()))?;
        let request = match topic {
            Some(topic) => {
                serde_json::json!({"topics": [{"name": topic}], "allow_auto_topic_creation": false})
            }
            None => serde_json::json!({"topics": []}),
        };
        self.lookup(api, request)
    }

    fn lookup_coordinator(&mut self, key: &str, key_type: i8) -> Result<(), Stop> {
        let api =
            schema::api(10).ok_or_else(|| Stop::Error("FindCoordinator is unknown".to_owned()))?;
        let request =
            serde_json::json!({"key": key, "key_type": key_type, "coordinator_keys": [key]});
        for _ in 0..LOOKUP_ATTEMPTS {
            self.lookup(api, request.clone())?;
            if self.coordinators.contains_key(&(key_type, key.to_owned()))
                || self.remaining() < LOOKUP_BACKOFF
            {
                return Ok(());
            }
            std::thread::sleep(LOOKUP_BACKOFF);
        }
        Ok(())
    }

    /// Sends a lookup request at the highest common version on the
    /// internal connection, and learns from the answer.
    fn lookup(&mut self, api: &'static ApiSpec, request: Json) -> Result<(), Stop> {
        let range = self
            .runner
            .common_versions(api, Versions::ALL)
            .map_err(|reason| {
                self.fail(format!("cannot route: {reason}"), None, None, Vec::new())
            })?;
        let body = message_from_json(api.request, range.max, &request)
            .map_err(|error| Stop::Error(format!("lookup request: {error}")))?;
        let bootstrap = self.broker.bootstrap.clone();
        self.connection(LOOKUP_CONNECTION, &bootstrap)?;
        let key = (LOOKUP_CONNECTION.to_owned(), bootstrap);
        let Some(connection) = self.connections.get_mut(&key) else {
            return Err(Stop::Error("the lookup connection vanished".to_owned()));
        };
        let answer = connection.request(api.key, range.max, &body);
        match answer {
            Ok(frame) => {
                if let Ok((body_json, _)) = response_json(&frame) {
                    self.learn(api, &request, &body_json);
                }
                Ok(())
            }
            Err(error) => {
                self.connections.remove(&key);
                Err(self.fail(
                    format!("{} lookup for routing failed: {error}", api.name),
                    Some(request),
                    None,
                    Vec::new(),
                ))
            }
        }
    }

    /// Remembers brokers, leaders and coordinators that a response names.
    fn learn(&mut self, api: &ApiSpec, request: &Json, body: &Json) {
        let items = |json: &Json, key: &str| {
            json.get(key)
                .and_then(Json::as_array)
                .cloned()
                .unwrap_or_default()
        };
        let int = |json: &Json, key: &str| json.get(key).and_then(Json::as_i64);
        let address = |json: &Json| {
            let host = json.get("host").and_then(Json::as_str)?;
            let port = json.get("port").and_then(Json::as_i64)?;
            Some(if host.contains(':') {
                format!("[{host}]:{port}")
            } else {
                format!("{host}:{port}")
            })
        };
        match api.name {
            "Metadata" | "DescribeCluster" => {
                for broker in items(body, "brokers") {
                    let id = int(&broker, "node_id").or_else(|| int(&broker, "broker_id"));
                    if let (Some(id), Some(addr)) = (id, address(&broker)) {
                        self.nodes.insert(id, addr);
                    }
                }
                for topic in items(body, "topics") {
                    let Some(name) = topic.get("name").and_then(Json::as_str) else {
                        continue;
                    };
                    for partition in items(&topic, "partitions") {
                        if let (Some(index), Some(leader)) = (
                            int(&partition, "partition_index"),
                            int(&partition, "leader_id"),
                        ) {
                            if leader >= 0 {
                                self.leaders.insert((name.to_owned(), index), leader);
                            }
                        }
                    }
                }
            }
            "FindCoordinator" => {
                let key_type = request
                    .get("key_type")
                    .and_then(Json::as_i64)
                    .and_then(|key_type| i8::try_from(key_type).ok())
                    .unwrap_or(0);
                let mut found = Vec::new();
                if let Some(coordinators) = body.get("coordinators").and_then(Json::as_array) {
                    for coordinator in coordinators {
                        if let Some(key) = coordinator.get("key").and_then(Json::as_str) {
                            found.push((key.to_owned(), coordinator.clone()));
                        }
                    }
                } else if let Some(key) = request.get("key").and_then(Json::as_str) {
                    found.push((key.to_owned(), body.clone()));
                }
                for (key, entry) in found {
                    if int(&entry, "error_code") != Some(0) {
                        continue;
                    }
                    if let (Some(id), Some(addr)) = (int(&entry, "node_id"), address(&entry)) {
                        self.nodes.insert(id, addr);
                        self.coordinators.insert((key_type, key), id);
                    }
                }
            }
            _ => {}
        }
    }

    /// After the case: does the broker still answer on a new connection?
    fn alive(&self) -> Result<(), String> {
        let mut connection =
            Connection::connect(&self.broker.bootstrap, self.runner.options.connect.clone())
                .map_err(|error| error.to_string())?;
        let body = client::api_versions_body(0).map_err(|error| error.to_string())?;
        let frame = connection
            .request(schema::API_VERSIONS_KEY, 0, &body)
            .map_err(|error| error.to_string())?;
        match frame.body.as_ref().and_then(|body| body.int("error_code")) {
            Some(0) => Ok(()),
            Some(code) => Err(format!("ApiVersions v0 answered error {code}")),
            None => Err("the ApiVersions v0 response does not decode".to_owned()),
        }
    }
}

fn parse_int(text: &str) -> Result<i64, Stop> {
    text.trim()
        .parse()
        .map_err(|_| Stop::Error(format!("{text:?} is not an integer")))
}

/// The body and header of a response as JSON, or why it cannot be used.
fn response_json(frame: &DecodedFrame) -> Result<(Json, Json), String> {
    if let Some(error) = &frame.error {
        return Err(format!("the response does not decode: {error}"));
    }
    let body = frame
        .body
        .as_ref()
        .ok_or_else(|| format!("the {} response has no body", frame.context()))?;
    Ok((to_json(body), to_json(&frame.header)))
}

/// Decodes an answer to raw bytes as a response to the API and version the
/// bytes claimed (a length, then api_key and api_version), when they did;
/// otherwise shows it as hex.
fn decode_raw_answer(sent: &[u8], frame: bytes::Bytes) -> Json {
    let claimed = match (sent.get(4..6), sent.get(6..8)) {
        (Some(key), Some(version)) => Some((
            i16::from_be_bytes([key[0], key[1]]),
            i16::from_be_bytes([version[0], version[1]]),
        )),
        _ => None,
    };
    if let Some((api_key, version)) = claimed {
        if let Some(api) = schema::api(api_key) {
            let body_version = version.clamp(api.response.valid.min, api.response.valid.max);
            let decoded =
                frame::decode_response(frame.clone(), api_key, body_version, &Default::default());
            if decoded.error.is_none() {
                if let Some(body) = &decoded.body {
                    return to_json(body);
                }
            }
        }
    }
    serde_json::json!({ "raw_hex": crate::value::hex(&frame) })
}

/// The values at a dotted path; a `*` segment takes every array element.
pub fn select<'j>(json: &'j Json, path: &str) -> Vec<&'j Json> {
    let mut current = vec![json];
    for segment in path.split('.') {
        let mut next = Vec::new();
        for value in current {
            match value {
                Json::Object(object) => next.extend(object.get(segment)),
                Json::Array(items) if segment == "*" => next.extend(items.iter()),
                Json::Array(items) => next.extend(
                    segment
                        .parse::<usize>()
                        .ok()
                        .and_then(|index| items.get(index)),
                ),
                _ => {}
            }
        }
        current = next;
    }
    current
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn select_follows_fields_indexes_and_stars() {
        let body = json!({"topics": [
            {"partitions": [{"error_code": 0}, {"error_code": 5}]},
            {"partitions": [{"error_code": 3}]}
        ]});
        let codes: Vec<i64> = select(&body, "topics.*.partitions.*.error_code")
            .into_iter()
            .filter_map(Json::as_i64)
            .collect();
        assert_eq!(codes, vec![0, 5, 3]);
        assert_eq!(
            select(&body, "topics.1.partitions.0.error_code"),
            vec![&json!(3)]
        );
        assert!(select(&body, "topics.2").is_empty());
        assert!(select(&body, "nope.x").is_empty());
    }

    #[test]
    fn raw_answers_decode_as_the_claimed_api() {
        // ApiVersions v0 response: correlation id 7, error 35, no api keys.
        let frame = bytes::Bytes::from_static(&[0, 0, 0, 10, 0, 0, 0, 7, 0, 35, 0, 0, 0, 0]);
        let sent = [0, 0, 0, 8, 0, 18, 0, 0, 0, 0, 0, 7];
        assert_eq!(
            decode_raw_answer(&sent, frame.clone()),
            json!({"error_code": 35, "api_keys": []})
        );
        assert!(decode_raw_answer(&[0, 0], frame).get("raw_hex").is_some());
    }
}
