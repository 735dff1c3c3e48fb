//! Suite files: reading them, and validating everything that can be checked
//! before a broker is contacted.
//!
//! A suite is a JSON file (the format is documented in `conform/mod.rs`).
//! Loading checks the whole file up front: unknown keys and step kinds,
//! unknown API and error names, requests that do not build with the
//! official field names, matchers that do not parse or name fields the
//! response does not have, routes, hex. Every problem is reported with the
//! file, the case id and the field path, so a broken suite fails before the
//! first byte is sent.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Map, Value as Json};

use super::matcher::Matcher;
use super::vars::{self, Vars};
use crate::codec::message_from_json;
use crate::schema::{self, ApiSpec, FieldType, StructSpec};
use crate::value::parse_hex;

/// A problem in a suite file, with its place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SuiteError {
    pub file: PathBuf,
    /// The id of the case, when the problem is inside one (or its index
    /// when the id itself is missing).
    pub case: Option<String>,
    /// The JSON path of the field, like `steps[2].expect.error_code`.
    pub field: String,
    pub message: String,
}

impl fmt::Display for SuiteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.file.display())?;
        if let Some(case) = &self.case {
            write!(f, "case {case}: ")?;
        }
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for SuiteError {}

/// Several problems, all found in one pass.
#[derive(Debug)]
pub struct SuiteErrors(pub Vec<SuiteError>);

impl fmt::Display for SuiteErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.0.len();
        write!(
            f,
            "{count} problem{} in the suites:",
            if count == 1 { "" } else { "s" }
        )?;
        for error in &self.0 {
            write!(f, "\n  {error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SuiteErrors {}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum Level {
    #[serde(rename = "MUST")]
    Must,
    #[serde(rename = "SHOULD")]
    Should,
    #[serde(rename = "INFO")]
    Info,
}

impl Level {
    pub fn name(self) -> &'static str {
        match self {
            Level::Must => "MUST",
            Level::Should => "SHOULD",
            Level::Info => "INFO",
        }
    }
}

#[derive(Debug)]
pub struct Suite {
    pub name: String,
    pub title: String,
    pub file: PathBuf,
    pub vars: Vars,
    /// Extra mask paths for the differential mode.
    pub masks: Vec<String>,
    pub cases: Vec<Case>,
}

#[derive(Debug)]
pub struct Case {
    pub id: String,
    pub title: String,
    pub spec: String,
    pub level: Level,
    pub requires: Vec<Requirement>,
    pub vars: Vars,
    pub masks: Vec<String>,
    /// Whether connections authenticate with the run's SASL options
    /// before the case uses them (false for cases that test SASL itself).
    pub authenticate: bool,
    /// Bound on the whole case.
    pub timeout: Duration,
    pub steps: Vec<Step>,
    /// The API whose versions a `"version": "each"` step runs through.
    pub each_api: Option<&'static ApiSpec>,
}

#[derive(Debug)]
pub enum Requirement {
    Api {
        api: &'static ApiSpec,
        min_version: Option<i16>,
        max_version: Option<i16>,
    },
    /// A variable that must be defined; with `match`, its value must also
    /// match (`{"var": "sasl_mechanism", "match": "PLAIN"}`).
    Var { name: String, matcher: Option<Json> },
}

#[derive(Debug)]
pub struct Step {
    pub note: Option<String>,
    pub kind: StepKind,
}

#[derive(Debug)]
pub enum StepKind {
    Send(Box<SendStep>),
    Raw(Box<RawStep>),
    Wait(Duration),
    Close(String),
    /// Reads the response to the oldest deferred send on a connection.
    Receive(String),
    /// Runs the run's SASL mechanism on a connection (KIP-152).
    Sasl(Box<SaslStep>),
}

/// A `sasl` step: the run's mechanism, with the run's credentials unless
/// `username` or `password` replace them (a wrong password, for the cases
/// about failed logins). Without `expect` the exchange must complete;
/// with it, `expect` is matched against the last SaslAuthenticate
/// response (the first that carried an error, or the final one).
#[derive(Debug)]
pub struct SaslStep {
    pub connection: String,
    pub username: Option<String>,
    pub password: Option<String>,
    pub expect: Option<Json>,
}

impl StepKind {
    pub fn name(&self) -> &'static str {
        match self {
            StepKind::Send(_) => "send",
            StepKind::Raw(_) => "raw",
            StepKind::Wait(_) => "wait",
            StepKind::Close(_) => "close",
            StepKind::Receive(_) => "receive",
            StepKind::Sasl(_) => "sasl",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VersionPolicy {
    /// The highest version both kwire and the broker(s) support.
    Max,
    /// The lowest version both support.
    Min,
    /// Every version both support, one result each.
    Each,
    Exact(i16),
    /// The broker's maximum plus this much: always sent.
    AboveMax(i16),
    /// The broker's minimum minus this much: always sent.
    BelowMin(i16),
}

/// What a send step waits for after sending.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Awaits {
    Response,
    /// Nothing (Produce acks=0): the request is not queued.
    NoResponse,
    /// The broker closes the connection.
    Close,
    /// A later `receive` step on the same connection reads the response
    /// and checks `expect` and `capture` (for requests the broker holds,
    /// like a JoinGroup waiting for the other members).
    Later,
}

#[derive(Debug)]
pub struct SendStep {
    pub api: &'static ApiSpec,
    pub version: VersionPolicy,
    /// Send an explicit version even when the broker does not advertise it.
    pub send_unadvertised: bool,
    pub request: Json,
    pub connection: String,
    pub to: Route,
    pub expect: Option<Json>,
    pub expect_header: Option<Json>,
    pub capture: Vec<Capture>,
    pub retry: Option<Retry>,
    pub awaits: Awaits,
    pub timeout: Option<Duration>,
    /// A matcher over how long the response took, in milliseconds
    /// (`{"$range": [400, 5000]}` for a long poll).
    pub expect_duration: Option<Json>,
    /// Skip this step, not the case, when the broker does not advertise
    /// the API (a CreateTopics that only some brokers need).
    pub if_advertised: bool,
}

/// `"capture": {"var": "path"}` or `{"var": {"path": "...", "default": V}}`.
#[derive(Debug)]
pub struct Capture {
    pub var: String,
    /// Dotted path in the response body; `*` takes the first element.
    pub path: String,
    /// The value when the path is absent (a field of other versions);
    /// without one, a missing value fails the step.
    pub default: Option<Json>,
}

#[derive(Debug)]
pub struct Retry {
    pub on: Vec<i16>,
    /// Where the error code is: a dotted path, `*` for any array index.
    pub at: String,
    pub max: u32,
    pub backoff: Duration,
    /// Also retry while the expectation does not match.
    pub until_expect: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RawExpect {
    Close,
    ErrorResponse,
    CloseOrError,
    Silence,
}

impl RawExpect {
    pub fn name(self) -> &'static str {
        match self {
            RawExpect::Close => "close",
            RawExpect::ErrorResponse => "error_response",
            RawExpect::CloseOrError => "close_or_error",
            RawExpect::Silence => "silence",
        }
    }
}

#[derive(Debug)]
pub struct RawStep {
    pub bytes: Vec<u8>,
    pub connection: String,
    pub to: Route,
    pub shutdown_write: bool,
    pub expect: RawExpect,
    pub timeout: Duration,
    /// Matched against the decoded response, when one comes.
    pub matcher: Option<Json>,
}

/// Where a step's connection goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    Bootstrap,
    /// The leader of a partition, from Metadata.
    Leader {
        topic: String,
        partition: String,
    },
    /// A group (0) or transaction (1) coordinator, from FindCoordinator.
    Coordinator {
        key: String,
        key_type: i8,
    },
    /// A broker by node id, from Metadata.
    Node(String),
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Route::Bootstrap => f.write_str("bootstrap"),
            Route::Leader { topic, partition } => write!(f, "leader({topic}, {partition})"),
            Route::Coordinator { key, key_type: 1 } => write!(f, "txn_coordinator({key})"),
            Route::Coordinator { key, .. } => write!(f, "coordinator({key})"),
            Route::Node(id) => write!(f, "node({id})"),
        }
    }
}

/// Most one wait may last; a case has its own overall bound too.
pub const MAX_WAIT: Duration = Duration::from_secs(60);
pub const MAX_TIMEOUT: Duration = Duration::from_secs(300);
pub const DEFAULT_CASE_TIMEOUT: Duration = Duration::from_secs(60);
pub const DEFAULT_RAW_TIMEOUT: Duration = Duration::from_secs(5);
pub const MAX_RETRIES: u32 = 100;

/// Loads suites from files and directories (every `*.json` directly
/// inside, in name order), validating all of them. Case ids must be unique
/// across everything loaded.
pub fn load(paths: &[PathBuf]) -> Result<Vec<Suite>, SuiteErrors> {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for path in paths {
        if path.is_dir() {
            match suite_files(path) {
                Ok(found) if found.is_empty() => {
                    errors.push(file_error(path, "no *.json suite in this directory"))
                }
                Ok(found) => files.extend(found),
                Err(error) => errors.push(file_error(path, &format!("cannot list: {error}"))),
            }
        } else {
            files.push(path.clone());
        }
    }
    let mut suites = Vec::new();
    for file in files {
        match std::fs::read_to_string(&file) {
            Ok(text) => match parse_suite(&file, &text) {
                Ok(suite) => suites.push(suite),
                Err(found) => errors.extend(found),
            },
            Err(error) => errors.push(file_error(&file, &format!("cannot read: {error}"))),
        }
    }
    let mut seen: HashSet<&str> = HashSet::new();
    let mut suite_names: HashSet<&str> = HashSet::new();
    for suite in &suites {
        if !suite_names.insert(&suite.name) {
            errors.push(SuiteError {
                file: suite.file.clone(),
                case: None,
                field: "suite".to_owned(),
                message: format!("another file already defines suite {:?}", suite.name),
            });
        }
        for case in &suite.cases {
            if !seen.insert(&case.id) {
                errors.push(SuiteError {
                    file: suite.file.clone(),
                    case: Some(case.id.clone()),
                    field: "id".to_owned(),
                    message: "this case id is already used".to_owned(),
                });
            }
        }
    }
    if errors.is_empty() {
        Ok(suites)
    } else {
        Err(SuiteErrors(errors))
    }
}

/// The `*.json` files directly inside `dir`, sorted.
pub fn suite_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.is_file() && path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    Ok(files)
}

fn file_error(file: &Path, message: &str) -> SuiteError {
    SuiteError {
        file: file.to_path_buf(),
        case: None,
        field: String::new(),
        message: message.to_owned(),
    }
}

/// A problem at a field, before the file and case are attached.
#[derive(Debug)]
struct Located {
    field: String,
    message: String,
}

type Checked<T> = Result<T, Located>;

fn at(field: &str, message: impl Into<String>) -> Located {
    Located {
        field: field.to_owned(),
        message: message.into(),
    }
}

/// Parses and validates one suite file's text.
pub fn parse_suite(file: &Path, text: &str) -> Result<Suite, Vec<SuiteError>> {
    let located = |case: Option<String>, error: Located| SuiteError {
        file: file.to_path_buf(),
        case,
        field: error.field,
        message: error.message,
    };
    let json: Json = serde_json::from_str(text)
        .map_err(|error| vec![file_error(file, &format!("not valid JSON: {error}"))])?;
    let top = Obj::new(&json, "").map_err(|error| vec![located(None, error)])?;
    let header = (|| -> Checked<_> {
        top.only(&["suite", "title", "description", "vars", "masks", "cases"])?;
        let name = top.string("suite")?;
        if name.is_empty() || name.contains(char::is_whitespace) {
            return Err(at("suite", "must be a non-empty name without spaces"));
        }
        let title = top.opt_string("title")?.unwrap_or_else(|| name.clone());
        let vars = top.opt_object("vars")?.cloned().unwrap_or_default();
        for (name, value) in &vars {
            vars::references(value).map_err(|error| at(&format!("vars.{name}"), error))?;
            vars::generate(value).map_err(|error| at(&format!("vars.{name}"), error))?;
        }
        let masks = top.opt_strings("masks")?;
        let cases = top.array("cases")?;
        if cases.is_empty() {
            return Err(at("cases", "a suite needs at least one case"));
        }
        Ok((name, title, vars, masks, cases))
    })();
    let (name, title, vars, masks, cases) = header.map_err(|error| vec![located(None, error)])?;
    let mut errors = Vec::new();
    let mut parsed = Vec::new();
    for (index, case) in cases.iter().enumerate() {
        let label = case
            .get("id")
            .and_then(Json::as_str)
            .map_or_else(|| format!("#{index}"), str::to_owned);
        match parse_case(case) {
            Ok(case) => parsed.push(case),
            Err(error) => errors.push(located(Some(label), error)),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Suite {
        name,
        title,
        file: file.to_path_buf(),
        vars,
        masks,
        cases: parsed,
    })
}

fn parse_case(json: &Json) -> Checked<Case> {
    let obj = Obj::new(json, "")?;
    obj.only(&[
        "id",
        "title",
        "spec",
        "level",
        "requires",
        "vars",
        "masks",
        "authenticate",
        "timeout_ms",
        "steps",
    ])?;
    let id = obj.string("id")?;
    if id.is_empty() || id.contains(char::is_whitespace) || id.contains('@') {
        return Err(at("id", "must be non-empty, without spaces or `@`"));
    }
    let title = obj.string("title")?;
    let spec = obj.string("spec")?;
    let level = match obj.string("level")?.as_str() {
        "MUST" => Level::Must,
        "SHOULD" => Level::Should,
        "INFO" => Level::Info,
        other => {
            return Err(at(
                "level",
                format!("{other:?} is not MUST, SHOULD or INFO"),
            ))
        }
    };
    let requires = match obj.get("requires") {
        None => Vec::new(),
        Some(Json::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(index, item)| parse_requirement(item, &format!("requires[{index}]")))
            .collect::<Checked<_>>()?,
        Some(item) => vec![parse_requirement(item, "requires")?],
    };
    let vars = obj.opt_object("vars")?.cloned().unwrap_or_default();
    for (name, value) in &vars {
        vars::references(value).map_err(|error| at(&format!("vars.{name}"), error))?;
        vars::generate(value).map_err(|error| at(&format!("vars.{name}"), error))?;
    }
    let masks = obj.opt_strings("masks")?;
    let authenticate = obj.opt_bool("authenticate")?.unwrap_or(true);
    let timeout = obj
        .opt_duration("timeout_ms", MAX_TIMEOUT)?
        .unwrap_or(DEFAULT_CASE_TIMEOUT);
    let step_list = obj.array("steps")?;
    if step_list.is_empty() {
        return Err(at("steps", "a case needs at least one step"));
    }
    let mut steps = Vec::with_capacity(step_list.len());
    let mut each_api: Option<&'static ApiSpec> = None;
    for (index, step) in step_list.iter().enumerate() {
        let field = format!("steps[{index}]");
        let step = parse_step(step, &field)?;
        if let StepKind::Send(send) = &step.kind {
            if send.version == VersionPolicy::Each {
                match each_api {
                    Some(api) if api.key != send.api.key => {
                        return Err(at(
                            &format!("{field}.version"),
                            format!(
                                "\"each\" already runs through {} versions in this case; one case can run through one API's versions",
                                api.name
                            ),
                        ))
                    }
                    _ => each_api = Some(send.api),
                }
            }
        }
        steps.push(step);
    }
    check_deferred(&steps)?;
    if authenticate {
        if let Some(index) = steps
            .iter()
            .position(|step| matches!(step.kind, StepKind::Sasl(_)))
        {
            return Err(at(
                &format!("steps[{index}]"),
                "a sasl step authenticates by itself: its case needs \"authenticate\": false",
            ));
        }
    }
    Ok(Case {
        id,
        title,
        spec,
        level,
        requires,
        vars,
        masks,
        authenticate,
        timeout,
        steps,
        each_api,
    })
}

/// Every `receive` step reads a response that a deferred send on the same
/// connection left waiting, and every deferred send is received.
fn check_deferred(steps: &[Step]) -> Checked<()> {
    let mut waiting: Vec<(String, usize)> = Vec::new();
    for (index, step) in steps.iter().enumerate() {
        match &step.kind {
            StepKind::Send(send) if send.awaits == Awaits::Later => {
                waiting.push((send.connection.clone(), index));
            }
            StepKind::Receive(name) => {
                let Some(position) = waiting
                    .iter()
                    .position(|(connection, _)| connection == name)
                else {
                    return Err(at(
                        &format!("steps[{index}].receive"),
                        format!(
                            "no deferred send on connection {name:?} is waiting before this step"
                        ),
                    ));
                };
                waiting.remove(position);
            }
            _ => {}
        }
    }
    match waiting.first() {
        Some((name, index)) => Err(at(
            &format!("steps[{index}].deferred"),
            format!("no later receive step reads this response (add {{\"receive\": {name:?}}})"),
        )),
        None => Ok(()),
    }
}

fn parse_requirement(json: &Json, field: &str) -> Checked<Requirement> {
    let obj = Obj::new(json, field)?;
    if let Some(name) = obj.opt_string("var")? {
        obj.only(&["var", "match"])?;
        let matcher = obj.get("match").cloned();
        if let Some(json) = &matcher {
            Matcher::parse(json, &obj.path("match")).map_err(|message| at("", message))?;
        }
        return Ok(Requirement::Var { name, matcher });
    }
    obj.only(&["api", "min_version", "max_version"])?;
    let api = parse_api(&obj.string("api")?, &obj.path("api"))?;
    Ok(Requirement::Api {
        api,
        min_version: obj.opt_i16("min_version")?,
        max_version: obj.opt_i16("max_version")?,
    })
}

fn parse_api(name: &str, field: &str) -> Checked<&'static ApiSpec> {
    schema::api_by_name(name).ok_or_else(|| {
        at(
            field,
            format!("unknown API {name:?} (names as in the protocol guide: Produce, Fetch, ApiVersions, ...)"),
        )
    })
}

const STEP_KINDS: [&str; 6] = ["send", "raw", "wait", "close", "receive", "sasl"];

fn parse_step(json: &Json, field: &str) -> Checked<Step> {
    let obj = Obj::new(json, field)?;
    let kinds: Vec<&str> = STEP_KINDS
        .iter()
        .copied()
        .filter(|kind| obj.get(kind).is_some())
        .collect();
    let note = obj.opt_string("note")?;
    let kind = match kinds.as_slice() {
        ["send"] => StepKind::Send(Box::new(parse_send(&obj)?)),
        ["raw"] => StepKind::Raw(Box::new(parse_raw(&obj)?)),
        ["wait"] => {
            obj.only(&["wait", "note"])?;
            StepKind::Wait(obj.opt_duration("wait", MAX_WAIT)?.unwrap_or_default())
        }
        ["close"] => {
            obj.only(&["close", "note"])?;
            StepKind::Close(obj.string("close")?)
        }
        ["receive"] => {
            obj.only(&["receive", "note"])?;
            let name = obj.string("receive")?;
            check_connection_name(&name, &obj.path("receive"))?;
            StepKind::Receive(name)
        }
        ["sasl"] => StepKind::Sasl(Box::new(parse_sasl(&obj)?)),
        [] => {
            return Err(at(
                field,
                format!(
                    "unknown step kind: a step has one of the keys {} (found: {})",
                    STEP_KINDS.join(", "),
                    obj.keys().join(", ")
                ),
            ))
        }
        several => {
            return Err(at(
                field,
                format!(
                    "a step has exactly one kind, found {}",
                    several.join(" and ")
                ),
            ))
        }
    };
    Ok(Step { note, kind })
}

fn parse_sasl(obj: &Obj) -> Checked<SaslStep> {
    obj.only(&["sasl", "note", "username", "password", "expect"])?;
    let connection = obj.string("sasl")?;
    check_connection_name(&connection, &obj.path("sasl"))?;
    let expect = obj.get("expect").cloned();
    if let Some(expect) = &expect {
        let body = schema::api(schema::SASL_AUTHENTICATE_KEY).map(|api| api.response.body);
        match body {
            Some(body) => check_matcher(expect, &obj.path("expect"), Shape::Struct(body))?,
            None => Matcher::parse(expect, &obj.path("expect"))
                .map(drop)
                .map_err(|message| at("", message))?,
        }
    }
    Ok(SaslStep {
        connection,
        username: obj.opt_string("username")?,
        password: obj.opt_string("password")?,
        expect,
    })
}

fn parse_send(obj: &Obj) -> Checked<SendStep> {
    obj.only(&[
        "send",
        "note",
        "version",
        "unadvertised",
        "request",
        "connection",
        "to",
        "expect",
        "expect_header",
        "capture",
        "retry",
        "expect_no_response",
        "expect_close",
        "expect_duration_ms",
        "deferred",
        "if_advertised",
        "timeout_ms",
    ])?;
    let api = parse_api(&obj.string("send")?, &obj.path("send"))?;
    let version = match obj.get("version") {
        None => VersionPolicy::Max,
        Some(value) => {
            parse_version(value, api).map_err(|message| at(&obj.path("version"), message))?
        }
    };
    let send_unadvertised = match obj.opt_string("unadvertised")?.as_deref() {
        None | Some("skip") => false,
        Some("send") => true,
        Some(other) => {
            return Err(at(
                &obj.path("unadvertised"),
                format!("{other:?} is not \"skip\" or \"send\""),
            ))
        }
    };
    let request = obj
        .get("request")
        .cloned()
        .unwrap_or(Json::Object(Map::new()));
    check_request(api, version, &request).map_err(|message| at(&obj.path("request"), message))?;
    let connection = obj
        .opt_string("connection")?
        .unwrap_or_else(|| "main".to_owned());
    check_connection_name(&connection, &obj.path("connection"))?;
    let to = match obj.opt_string("to")? {
        None => Route::Bootstrap,
        Some(text) => parse_route(&text).map_err(|message| at(&obj.path("to"), message))?,
    };
    let expect = obj.get("expect").cloned();
    if let Some(expect) = &expect {
        check_matcher(
            expect,
            &obj.path("expect"),
            Shape::Struct(api.response.body),
        )?;
    }
    let expect_header = obj.get("expect_header").cloned();
    if let Some(expect) = &expect_header {
        check_matcher(
            expect,
            &obj.path("expect_header"),
            Shape::Struct(schema::RESPONSE_HEADER.body),
        )?;
    }
    let mut capture = Vec::new();
    if let Some(map) = obj.opt_object("capture")? {
        for (name, spec) in map {
            let field = format!("{}.{name}", obj.path("capture"));
            let (path, default) = match spec {
                Json::String(path) => (path.clone(), None),
                Json::Object(_) => {
                    let inner = Obj::new(spec, &field)?;
                    inner.only(&["path", "default"])?;
                    (inner.string("path")?, inner.get("default").cloned())
                }
                _ => {
                    return Err(at(
                        &field,
                        "takes a dotted path into the response, like \"member_id\", or {\"path\": ..., \"default\": ...}",
                    ))
                }
            };
            check_path(&path, api.response.body).map_err(|message| at(&field, message))?;
            capture.push(Capture {
                var: name.clone(),
                path,
                default,
            });
        }
    }
    let retry = match obj.get("retry") {
        None => None,
        Some(json) => Some(parse_retry(json, &obj.path("retry"), api)?),
    };
    let no_response = obj.opt_bool("expect_no_response")?.unwrap_or(false);
    let close = obj.opt_bool("expect_close")?.unwrap_or(false);
    let deferred = obj.opt_bool("deferred")?.unwrap_or(false);
    let awaits = match (no_response, close, deferred) {
        (false, false, false) => Awaits::Response,
        (true, false, false) => Awaits::NoResponse,
        (false, true, false) => Awaits::Close,
        (false, false, true) => Awaits::Later,
        _ => {
            return Err(at(
                &obj.path("expect_close"),
                "expect_no_response, expect_close and deferred exclude each other",
            ))
        }
    };
    if matches!(awaits, Awaits::NoResponse | Awaits::Close)
        && (expect.is_some() || !capture.is_empty() || retry.is_some())
    {
        return Err(at(
            &obj.path("expect"),
            "expect, capture and retry need a response; this step waits for none",
        ));
    }
    if awaits == Awaits::Later && retry.is_some() {
        return Err(at(
            &obj.path("retry"),
            "a deferred request cannot be retried: its response is read by a later receive step",
        ));
    }
    let expect_duration = obj.get("expect_duration_ms").cloned();
    if let Some(json) = &expect_duration {
        if !matches!(awaits, Awaits::Response | Awaits::Later) {
            return Err(at(
                &obj.path("expect_duration_ms"),
                "a duration needs a response to time",
            ));
        }
        Matcher::parse(json, &obj.path("expect_duration_ms")).map_err(|message| at("", message))?;
    }
    Ok(SendStep {
        api,
        version,
        send_unadvertised,
        request,
        connection,
        to,
        expect,
        expect_header,
        capture,
        retry,
        awaits,
        timeout: obj.opt_duration("timeout_ms", MAX_TIMEOUT)?,
        expect_duration,
        if_advertised: obj.opt_bool("if_advertised")?.unwrap_or(false),
    })
}

fn parse_version(value: &Json, api: &ApiSpec) -> Result<VersionPolicy, String> {
    let offset = |text: &str| -> Result<i16, String> {
        text.trim()
            .parse::<i16>()
            .ok()
            .filter(|n| (1..=100).contains(n))
            .ok_or_else(|| format!("{text:?} is not an offset from 1 to 100"))
    };
    match value {
        Json::Number(number) => {
            let version = number
                .as_i64()
                .and_then(|version| i16::try_from(version).ok())
                .filter(|version| *version >= 0)
                .ok_or_else(|| format!("{number} is not a version"))?;
            Ok(VersionPolicy::Exact(version))
        }
        Json::String(text) => match text.as_str() {
            "max" => Ok(VersionPolicy::Max),
            "min" => Ok(VersionPolicy::Min),
            "each" => Ok(VersionPolicy::Each),
            _ => {
                if let Some(rest) = text.strip_prefix("max+") {
                    Ok(VersionPolicy::AboveMax(offset(rest)?))
                } else if let Some(rest) = text.strip_prefix("min-") {
                    Ok(VersionPolicy::BelowMin(offset(rest)?))
                } else {
                    Err(format!(
                        "{text:?} is not a version policy: a number, \"max\", \"min\", \"each\", \"max+N\" or \"min-N\" ({} v{}-{} in kwire)",
                        api.name, api.request.valid.min, api.request.valid.max
                    ))
                }
            }
        },
        _ => Err("takes a number or \"max\", \"min\", \"each\", \"max+N\", \"min-N\"".to_owned()),
    }
}

fn parse_retry(json: &Json, field: &str, api: &ApiSpec) -> Checked<Retry> {
    let obj = Obj::new(json, field)?;
    obj.only(&["on", "at", "max", "backoff_ms", "until_expect"])?;
    let mut on = Vec::new();
    for (index, name) in obj.opt_strings("on")?.iter().enumerate() {
        let error = schema::error_by_name(name).ok_or_else(|| {
            at(
                &format!("{field}.on[{index}]"),
                format!("unknown error name {name:?}"),
            )
        })?;
        on.push(error.code);
    }
    let until_expect = obj.opt_bool("until_expect")?.unwrap_or(false);
    if on.is_empty() && !until_expect {
        return Err(at(
            field,
            "retry needs `on` (error names) or `until_expect`: true",
        ));
    }
    let given_at = obj.opt_string("at")?;
    // Without error names, `at` is unused: only a given one is checked.
    if given_at.is_some() || !on.is_empty() {
        let at_path = given_at.as_deref().unwrap_or("error_code");
        check_path(at_path, api.response.body).map_err(|message| at(&obj.path("at"), message))?;
    }
    let at_path = given_at.unwrap_or_else(|| "error_code".to_owned());
    let max = match obj.get("max") {
        None => 10,
        Some(value) => value
            .as_u64()
            .and_then(|max| u32::try_from(max).ok())
            .filter(|max| *max <= MAX_RETRIES)
            .ok_or_else(|| at(&obj.path("max"), format!("takes 0 to {MAX_RETRIES}")))?,
    };
    let backoff = obj
        .opt_duration("backoff_ms", Duration::from_secs(10))?
        .unwrap_or(Duration::from_millis(100));
    Ok(Retry {
        on,
        at: at_path,
        max,
        backoff,
        until_expect,
    })
}

fn parse_raw(obj: &Obj) -> Checked<RawStep> {
    obj.only(&[
        "raw",
        "note",
        "prefix_length",
        "connection",
        "to",
        "shutdown_write",
        "expect",
        "timeout_ms",
        "match",
    ])?;
    let mut bytes =
        parse_hex(&obj.string("raw")?).map_err(|message| at(&obj.path("raw"), message))?;
    if obj.opt_bool("prefix_length")?.unwrap_or(false) {
        let length = i32::try_from(bytes.len())
            .map_err(|_| at(&obj.path("raw"), "too long to prefix with a length"))?;
        let mut framed = length.to_be_bytes().to_vec();
        framed.append(&mut bytes);
        bytes = framed;
    }
    if bytes.is_empty() && !obj.opt_bool("shutdown_write")?.unwrap_or(false) {
        return Err(at(&obj.path("raw"), "no bytes to send"));
    }
    let connection = obj
        .opt_string("connection")?
        .unwrap_or_else(|| "main".to_owned());
    check_connection_name(&connection, &obj.path("connection"))?;
    let to = match obj.opt_string("to")? {
        None => Route::Bootstrap,
        Some(text) => parse_route(&text).map_err(|message| at(&obj.path("to"), message))?,
    };
    let expect = match obj.string("expect")?.as_str() {
        "close" => RawExpect::Close,
        "error_response" => RawExpect::ErrorResponse,
        "close_or_error" => RawExpect::CloseOrError,
        "silence" => RawExpect::Silence,
        other => {
            return Err(at(
                &obj.path("expect"),
                format!("{other:?} is not close, error_response, close_or_error or silence"),
            ))
        }
    };
    let matcher = obj.get("match").cloned();
    if let Some(json) = &matcher {
        if expect == RawExpect::Close || expect == RawExpect::Silence {
            return Err(at(
                &obj.path("match"),
                "a close or silence has no response to match",
            ));
        }
        Matcher::parse(json, &obj.path("match")).map_err(|message| at("", message))?;
    }
    Ok(RawStep {
        bytes,
        connection,
        to,
        shutdown_write: obj.opt_bool("shutdown_write")?.unwrap_or(false),
        expect,
        timeout: obj
            .opt_duration("timeout_ms", MAX_TIMEOUT)?
            .unwrap_or(DEFAULT_RAW_TIMEOUT),
        matcher,
    })
}

fn check_connection_name(name: &str, field: &str) -> Checked<()> {
    if name.is_empty() || name.contains(char::is_whitespace) {
        return Err(at(field, "a connection name is non-empty, without spaces"));
    }
    Ok(())
}

/// Parses `bootstrap`, `leader(topic, 0)`, `coordinator(group)`,
/// `txn_coordinator(id)` and `node(1)`; arguments may hold `${vars}`.
pub fn parse_route(text: &str) -> Result<Route, String> {
    let text = text.trim();
    if text == "bootstrap" {
        return Ok(Route::Bootstrap);
    }
    let usage = || {
        format!(
            "{text:?} is not a route: bootstrap, leader(TOPIC, PARTITION), coordinator(GROUP), \
             txn_coordinator(TRANSACTIONAL_ID) or node(ID)"
        )
    };
    let (name, args) = text.split_once('(').ok_or_else(usage)?;
    let args = args.strip_suffix(')').ok_or_else(usage)?;
    let args: Vec<String> = args.split(',').map(|arg| arg.trim().to_owned()).collect();
    for arg in &args {
        if arg.is_empty() {
            return Err(usage());
        }
        vars::references(&Json::String(arg.clone()))?;
    }
    match (name.trim(), args.as_slice()) {
        ("leader", [topic, partition]) => Ok(Route::Leader {
            topic: topic.clone(),
            partition: partition.clone(),
        }),
        ("coordinator", [key]) => Ok(Route::Coordinator {
            key: key.clone(),
            key_type: 0,
        }),
        ("txn_coordinator", [key]) => Ok(Route::Coordinator {
            key: key.clone(),
            key_type: 1,
        }),
        ("node", [id]) => Ok(Route::Node(id.clone())),
        _ => Err(usage()),
    }
}

/// Whether the request builds with the official field names. Leaves that
/// are exactly one `${var}` are left out (their value comes at run time;
/// the field then takes its default here). A request meant for several
/// versions must build in at least one of them; an explicit version must
/// build in that version.
fn check_request(api: &ApiSpec, version: VersionPolicy, request: &Json) -> Result<(), String> {
    vars::references(request)?;
    if !request.is_object() {
        return Err("a request is a JSON object of fields".to_owned());
    }
    let stripped = strip_variables(request);
    let valid = api.request.valid;
    let candidates: Vec<i16> = match version {
        VersionPolicy::Exact(version) => vec![version.clamp(valid.min, valid.max)],
        VersionPolicy::AboveMax(_) => vec![valid.max],
        VersionPolicy::BelowMin(_) => vec![valid.min],
        VersionPolicy::Max | VersionPolicy::Min | VersionPolicy::Each => {
            (valid.min..=valid.max).rev().collect()
        }
    };
    let mut first_error = None;
    for candidate in candidates {
        match message_from_json(api.request, candidate, &stripped) {
            Ok(_) => return Ok(()),
            Err(error) => {
                first_error.get_or_insert(format!("{} v{candidate}: {error}", api.request.name));
            }
        }
    }
    Err(first_error.unwrap_or_else(|| format!("{} has no version", api.name)))
}

fn strip_variables(json: &Json) -> Json {
    let is_variable = |value: &Json| value.as_str().and_then(vars::whole_reference).is_some();
    match json {
        Json::Object(object) => Json::Object(
            object
                .iter()
                .filter(|(_, value)| !is_variable(value))
                .map(|(key, value)| (key.clone(), strip_variables(value)))
                .collect(),
        ),
        Json::Array(items) => Json::Array(
            items
                .iter()
                .filter(|value| !is_variable(value))
                .map(strip_variables)
                .collect(),
        ),
        other => other.clone(),
    }
}

/// What a matcher is checked against, for naming fields up front.
#[derive(Clone, Copy)]
enum Shape {
    Struct(&'static StructSpec),
    Array(&'static FieldType),
    /// A scalar, or something kwire does not describe field by field
    /// (records): anything goes.
    Opaque,
}

impl Shape {
    fn of(ty: &'static FieldType) -> Shape {
        match ty {
            FieldType::Struct(spec) => Shape::Struct(spec),
            FieldType::Array(element) => Shape::Array(element),
            _ => Shape::Opaque,
        }
    }
}

/// Parses a matcher, and checks that every field it names exists in the
/// response (in some version): a typo fails here, not as a puzzling
/// mismatch later.
fn check_matcher(json: &Json, field: &str, shape: Shape) -> Checked<()> {
    Matcher::parse(json, field).map_err(|message| at("", message))?;
    check_matcher_fields(json, field, shape)
}

fn check_matcher_fields(json: &Json, field: &str, shape: Shape) -> Checked<()> {
    match json {
        Json::Object(object) if object.keys().any(|key| key.starts_with('$')) => {
            for (op, arg) in object {
                let here = format!("{field}.{op}");
                match op.as_str() {
                    "$one_of" | "$all" => {
                        for (index, item) in arg.as_array().into_iter().flatten().enumerate() {
                            check_matcher_fields(item, &format!("{here}.{index}"), shape)?;
                        }
                    }
                    "$not" => check_matcher_fields(arg, &here, shape)?,
                    "$contains" | "$every" | "$unordered" => {
                        let element = match shape {
                            Shape::Array(element) => Shape::of(element),
                            _ => Shape::Opaque,
                        };
                        if op != "$unordered" {
                            check_matcher_fields(arg, &here, element)?;
                        } else {
                            for (index, item) in arg.as_array().into_iter().flatten().enumerate() {
                                check_matcher_fields(item, &format!("{here}.{index}"), element)?;
                            }
                        }
                    }
                    _ => {}
                }
            }
            Ok(())
        }
        Json::Object(object) => {
            let Shape::Struct(spec) = shape else {
                return Ok(());
            };
            for (key, value) in object {
                let here = format!("{field}.{key}");
                let Some(spec_field) = spec.fields.iter().find(|candidate| candidate.name == key)
                else {
                    return Err(at(
                        &here,
                        format!(
                            "{} has no field `{key}` (fields: {})",
                            spec.name,
                            spec.fields
                                .iter()
                                .map(|field| field.name)
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ));
                };
                check_matcher_fields(value, &here, Shape::of(&spec_field.ty))?;
            }
            Ok(())
        }
        Json::Array(items) => {
            let element = match shape {
                Shape::Array(element) => Shape::of(element),
                _ => Shape::Opaque,
            };
            for (index, item) in items.iter().enumerate() {
                check_matcher_fields(item, &format!("{field}.{index}"), element)?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Checks a dotted capture or retry path against the response: field names
/// must exist, array positions are numbers or `*`.
fn check_path(path: &str, spec: &'static StructSpec) -> Result<(), String> {
    if path.is_empty() {
        return Err("an empty path".to_owned());
    }
    let mut shape = Shape::Struct(spec);
    for segment in path.split('.') {
        shape = match shape {
            Shape::Struct(spec) => {
                let field = spec
                    .fields
                    .iter()
                    .find(|field| field.name == segment)
                    .ok_or_else(|| {
                        format!("{} has no field `{segment}` (path {path:?})", spec.name)
                    })?;
                Shape::of(&field.ty)
            }
            Shape::Array(element) => {
                if segment != "*" && segment.parse::<usize>().is_err() {
                    return Err(format!(
                        "`{segment}` in {path:?} stands for an array position: a number or *"
                    ));
                }
                Shape::of(element)
            }
            Shape::Opaque => Shape::Opaque,
        };
    }
    Ok(())
}

/// A JSON object being validated, with its path for messages.
struct Obj<'a> {
    map: &'a Map<String, Json>,
    base: String,
}

impl<'a> Obj<'a> {
    fn new(json: &'a Json, base: &str) -> Checked<Obj<'a>> {
        match json {
            Json::Object(map) => Ok(Obj {
                map,
                base: base.to_owned(),
            }),
            _ => Err(at(base, "must be a JSON object")),
        }
    }

    fn path(&self, key: &str) -> String {
        if self.base.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.base)
        }
    }

    fn keys(&self) -> Vec<&str> {
        self.map.keys().map(String::as_str).collect()
    }

    fn get(&self, key: &str) -> Option<&'a Json> {
        self.map.get(key)
    }

    /// Rejects keys outside `known`.
    fn only(&self, known: &[&str]) -> Checked<()> {
        for key in self.map.keys() {
            if !known.contains(&key.as_str()) {
                return Err(at(
                    &self.path(key),
                    format!("unknown key (known here: {})", known.join(", ")),
                ));
            }
        }
        Ok(())
    }

    fn string(&self, key: &str) -> Checked<String> {
        self.opt_string(key)?
            .ok_or_else(|| at(&self.path(key), "missing (a string is required)"))
    }

    fn opt_string(&self, key: &str) -> Checked<Option<String>> {
        match self.map.get(key) {
            None => Ok(None),
            Some(Json::String(text)) => Ok(Some(text.clone())),
            Some(_) => Err(at(&self.path(key), "must be a string")),
        }
    }

    fn opt_bool(&self, key: &str) -> Checked<Option<bool>> {
        match self.map.get(key) {
            None => Ok(None),
            Some(Json::Bool(flag)) => Ok(Some(*flag)),
            Some(_) => Err(at(&self.path(key), "must be true or false")),
        }
    }

    fn opt_i16(&self, key: &str) -> Checked<Option<i16>> {
        match self.map.get(key) {
            None => Ok(None),
            Some(value) => value
                .as_i64()
                .and_then(|number| i16::try_from(number).ok())
                .map(Some)
                .ok_or_else(|| at(&self.path(key), "must be a version number")),
        }
    }

    fn opt_duration(&self, key: &str, max: Duration) -> Checked<Option<Duration>> {
        match self.map.get(key) {
            None => Ok(None),
            Some(value) => value
                .as_u64()
                .map(Duration::from_millis)
                .filter(|duration| *duration <= max)
                .map(Some)
                .ok_or_else(|| {
                    at(
                        &self.path(key),
                        format!("milliseconds from 0 to {}", max.as_millis()),
                    )
                }),
        }
    }

    fn array(&self, key: &str) -> Checked<&'a Vec<Json>> {
        match self.map.get(key) {
            Some(Json::Array(items)) => Ok(items),
            None => Err(at(&self.path(key), "missing (an array is required)")),
            Some(_) => Err(at(&self.path(key), "must be an array")),
        }
    }

    fn opt_object(&self, key: &str) -> Checked<Option<&'a Map<String, Json>>> {
        match self.map.get(key) {
            None => Ok(None),
            Some(Json::Object(map)) => Ok(Some(map)),
            Some(_) => Err(at(&self.path(key), "must be an object")),
        }
    }

    fn opt_strings(&self, key: &str) -> Checked<Vec<String>> {
        match self.map.get(key) {
            None => Ok(Vec::new()),
            Some(Json::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(index, item)| {
                    item.as_str().map(str::to_owned).ok_or_else(|| {
                        at(&format!("{}[{index}]", self.path(key)), "must be a string")
                    })
                })
                .collect(),
            Some(_) => Err(at(&self.path(key), "must be an array of strings")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn suite(cases: Json) -> String {
        json!({"suite": "t", "title": "T", "cases": cases}).to_string()
    }

    fn case(steps: Json) -> Json {
        json!({"id": "t.a.b", "title": "A", "spec": "KIP-1", "level": "MUST", "steps": steps})
    }

    fn error_of(text: &str) -> SuiteError {
        let mut errors = parse_suite(Path::new("suites/t.json"), text).expect_err("invalid");
        errors.remove(0)
    }

    #[test]
    fn a_valid_suite_parses() {
        let text = suite(json!([case(json!([
            {"send": "Metadata", "version": "max", "request": {"topics": [{"name": "${topic}"}]},
             "expect": {"topics": {"$contains": {"error_code": "NONE", "name": "x"}}},
             "capture": {"leader": "topics.0.partitions.0.leader_id"},
             "retry": {"on": ["LEADER_NOT_AVAILABLE"], "at": "topics.*.error_code"}},
            {"wait": 10},
            {"raw": "0000", "prefix_length": true, "expect": "close_or_error"},
            {"send": "Produce", "version": 9, "to": "leader(${topic}, 0)", "request": {"acks": 0},
             "expect_no_response": true},
            {"close": "main"}
        ]))]));
        let suite = parse_suite(Path::new("t.json"), &text).expect("valid");
        let case = &suite.cases[0];
        assert_eq!(case.steps.len(), 5);
        let StepKind::Raw(raw) = &case.steps[2].kind else {
            panic!("raw step")
        };
        assert_eq!(raw.bytes, vec![0, 0, 0, 2, 0, 0]);
        let StepKind::Send(send) = &case.steps[3].kind else {
            panic!("send step")
        };
        assert_eq!(send.awaits, Awaits::NoResponse);
        assert_eq!(
            send.to,
            Route::Leader {
                topic: "${topic}".into(),
                partition: "0".into()
            }
        );
    }

    #[test]
    fn errors_name_the_file_case_and_field() {
        let error = error_of(&suite(json!([case(json!([
            {"send": "ApiVersions"},
            {"send": "Metadata", "request": {"topicz": []}}
        ]))])));
        assert_eq!(error.file, Path::new("suites/t.json"));
        assert_eq!(error.case.as_deref(), Some("t.a.b"));
        assert_eq!(error.field, "steps[1].request");
        assert!(error.message.contains("no field `topicz`"), "{error}");
        let shown = error.to_string();
        assert!(
            shown.starts_with("suites/t.json: case t.a.b: steps[1].request: "),
            "{shown}"
        );
    }

    #[test]
    fn unknown_step_kinds_apis_and_keys_are_rejected() {
        let check = |steps: Json, field: &str, words: &str| {
            let error = error_of(&suite(json!([case(steps)])));
            assert_eq!(error.field, field, "{error}");
            assert!(error.message.contains(words), "{error}");
        };
        check(
            json!([{"sned": "ApiVersions"}]),
            "steps[0]",
            "unknown step kind",
        );
        check(
            json!([{"send": "ApiVersion"}]),
            "steps[0].send",
            "unknown API",
        );
        check(
            json!([{"send": "ApiVersions", "expct": {}}]),
            "steps[0].expct",
            "unknown key",
        );
        check(
            json!([{"send": "ApiVersions", "version": "newest"}]),
            "steps[0].version",
            "not a version policy",
        );
        check(
            json!([{"wait": 10, "raw": "00"}]),
            "steps[0]",
            "exactly one kind",
        );
        check(
            json!([{"raw": "zz", "expect": "close"}]),
            "steps[0].raw",
            "hex",
        );
        check(
            json!([{"send": "Metadata", "to": "leader(x)"}]),
            "steps[0].to",
            "not a route",
        );
        check(
            json!([{"send": "Metadata", "retry": {"on": ["NOT_AN_ERROR"]}}]),
            "steps[0].retry.on[0]",
            "unknown error name",
        );
    }

    #[test]
    fn bad_matchers_and_unknown_response_fields_are_rejected() {
        let error = error_of(&suite(json!([case(json!([
            {"send": "ApiVersions", "expect": {"api_keys": {"$contains": {"api_kee": 18}}}}
        ]))])));
        assert_eq!(error.field, "steps[0].expect.api_keys.$contains.api_kee");
        assert!(error.message.contains("has no field `api_kee`"), "{error}");
        let error = error_of(&suite(json!([case(json!([
            {"send": "ApiVersions", "expect": {"error_code": {"$regex": "("}}}
        ]))])));
        assert!(
            error.message.contains("steps[0].expect.error_code.$regex"),
            "{error}"
        );
        let error = error_of(&suite(json!([case(json!([
            {"send": "ApiVersions", "capture": {"x": "api_keys.first.api_key"}}
        ]))])));
        assert!(error.message.contains("array position"), "{error}");
    }

    #[test]
    fn case_fields_are_checked() {
        let mut bad = case(json!([{"wait": 1}]));
        bad["level"] = json!("MAY");
        let error = error_of(&suite(json!([bad])));
        assert_eq!(error.field, "level");
        assert!(error.message.contains("MUST"));
        let error = error_of(&suite(json!([{"title": "x"}])));
        assert_eq!(error.case.as_deref(), Some("#0"));
        assert_eq!(error.field, "id");
        let error = error_of(&suite(json!([case(json!([
            {"send": "ApiVersions", "version": "each"},
            {"send": "Metadata", "version": "each"}
        ]))])));
        assert!(error.message.contains("one API's versions"), "{error}");
        let error = error_of("{\"suite\": \"t\", \"cases\": [}");
        assert!(error.message.starts_with("not valid JSON"), "{error}");
    }

    #[test]
    fn variables_in_requests_are_left_for_run_time() {
        let text = suite(json!([case(json!([
            {"send": "OffsetCommit", "request": {"generation_id_or_member_epoch": "${generation}",
              "member_id": "${member}", "group_id": "g-${run}"}}
        ]))]));
        assert!(parse_suite(Path::new("t.json"), &text).is_ok());
        let error = error_of(&suite(json!([case(json!([
            {"send": "Metadata", "request": {"topics": [{"name": "${bad name}"}]}}
        ]))])));
        assert!(error.message.contains("not a variable name"), "{error}");
    }

    #[test]
    fn sasl_steps_take_credentials_and_need_a_case_that_does_not_authenticate() {
        let mut with = case(json!([
            {"sasl": "main", "password": "${sasl_password}-wrong",
             "expect": {"error_code": "SASL_AUTHENTICATION_FAILED"}},
            {"send": "Metadata", "expect_close": true}
        ]));
        with["authenticate"] = json!(false);
        let parsed =
            parse_suite(Path::new("t.json"), &suite(json!([with.clone()]))).expect("valid");
        let StepKind::Sasl(step) = &parsed.cases[0].steps[0].kind else {
            panic!("sasl step")
        };
        assert_eq!(step.connection, "main");
        assert_eq!(step.username, None);
        assert_eq!(step.password.as_deref(), Some("${sasl_password}-wrong"));
        with["authenticate"] = json!(true);
        let error = error_of(&suite(json!([with.clone()])));
        assert_eq!(error.field, "steps[0]", "{error}");
        assert!(error.message.contains("\"authenticate\": false"), "{error}");
        with["authenticate"] = json!(false);
        with["steps"][0]["expect"] = json!({"auth_bites": "00"});
        let error = error_of(&suite(json!([with.clone()])));
        assert!(error.message.contains("auth_bites"), "{error}");
        with["steps"][0] = json!({"sasl": "main", "mechanism": "PLAIN"});
        let error = error_of(&suite(json!([with])));
        assert_eq!(error.field, "steps[0].mechanism", "{error}");
    }

    #[test]
    fn deferred_sends_need_a_receive_and_receives_a_deferred_send() {
        let text = suite(json!([case(json!([
            {"send": "JoinGroup", "connection": "b", "deferred": true,
             "expect": {"error_code": "NONE"}, "capture": {"m": "member_id"},
             "expect_duration_ms": {"$range": [0, 100]}},
            {"send": "Heartbeat", "connection": "a"},
            {"receive": "b"}
        ]))]));
        let parsed = parse_suite(Path::new("t.json"), &text).expect("valid");
        let StepKind::Send(send) = &parsed.cases[0].steps[0].kind else {
            panic!("send step")
        };
        assert_eq!(send.awaits, Awaits::Later);
        assert!(send.expect_duration.is_some());
        let error = error_of(&suite(json!([case(json!([{"receive": "b"}]))])));
        assert_eq!(error.field, "steps[0].receive");
        let error = error_of(&suite(json!([case(json!([
            {"send": "JoinGroup", "connection": "b", "deferred": true},
            {"receive": "a"}
        ]))])));
        assert_eq!(error.field, "steps[1].receive", "{error}");
        let error = error_of(&suite(json!([case(json!([
            {"send": "JoinGroup", "deferred": true}
        ]))])));
        assert_eq!(error.field, "steps[0].deferred", "{error}");
        assert!(error.message.contains("receive"), "{error}");
        let error = error_of(&suite(json!([case(json!([
            {"send": "JoinGroup", "deferred": true, "retry": {"on": ["NOT_COORDINATOR"]}},
            {"receive": "main"}
        ]))])));
        assert_eq!(error.field, "steps[0].retry", "{error}");
    }

    #[test]
    fn requirements_generators_and_optional_steps_parse() {
        let mut with = case(json!([
            {"send": "CreateTopics", "if_advertised": true},
            {"send": "Produce", "expect_no_response": true, "expect_duration_ms": 5}
        ]));
        let error = error_of(&suite(json!([with.clone()])));
        assert_eq!(error.field, "steps[1].expect_duration_ms", "{error}");
        with["steps"][1] = json!({"send": "Produce", "expect_no_response": true});
        with["requires"] = json!([{"var": "sasl_mechanism", "match": {"$prefix": "SCRAM-"}}]);
        with["vars"] = json!({"big": {"$repeat": {"text": "ab", "count": 4}}});
        let parsed =
            parse_suite(Path::new("t.json"), &suite(json!([with.clone()]))).expect("valid");
        let Requirement::Var { name, matcher } = &parsed.cases[0].requires[0] else {
            panic!("a variable requirement")
        };
        assert_eq!(name, "sasl_mechanism");
        assert!(matcher.is_some());
        let StepKind::Send(send) = &parsed.cases[0].steps[0].kind else {
            panic!("send step")
        };
        assert!(send.if_advertised);
        with["vars"] = json!({"big": {"$repeat": {"text": "ab"}}});
        let error = error_of(&suite(json!([with])));
        assert_eq!(error.field, "vars.big", "{error}");
    }

    #[test]
    fn duplicate_case_ids_across_files_are_rejected() {
        let dir = tempfile::tempdir().expect("tempdir");
        let one = suite(json!([case(json!([{"wait": 1}]))]));
        let two = json!({"suite": "u", "cases": [case(json!([{"wait": 1}]))]}).to_string();
        std::fs::write(dir.path().join("a.json"), one).expect("write");
        std::fs::write(dir.path().join("b.json"), two).expect("write");
        let errors = load(&[dir.path().to_path_buf()]).expect_err("duplicate");
        assert_eq!(errors.0.len(), 1);
        assert!(errors.0[0].file.ends_with("b.json"));
        assert!(errors.0[0].message.contains("already used"));
    }
}
