//! The conformance runner behind `kwire conform`: scripted Kafka
//! conversations, written as JSON suites, played against real brokers,
//! graded MUST/SHOULD/INFO, optionally diffed between two brokers, and
//! reported for people (terminal, Markdown) and for CI (JSON, JUnit XML, an
//! exit code).
//!
//! Modules: [`suite`] reads and validates suite files, [`matcher`] checks
//! responses, [`vars`] substitutes `${variables}`, [`runner`] plays cases,
//! [`diff`] compares two brokers, [`mod@verdict`] turns results into an exit
//! code (with a baseline of known failures), [`report`] writes the reports,
//! [`embedded`] starts librdkafka's mock cluster when no broker is given.
//! The client underneath is [`crate::client`].
//!
//! # Suite format
//!
//! Every `*.json` file in `suites/` is a suite; a new file is picked up
//! without registration. The whole file is validated before any case runs,
//! and every problem is reported as `FILE: case ID: FIELD: message`.
//!
//! ```json
//! {
//!   "suite": "metadata",                      // unique name
//!   "title": "Metadata: topics and brokers",
//!   "vars": {"topic": "kwire-${run}-meta"},   // optional, for every case
//!   "masks": ["**.some_field"],               // optional, differential mode
//!   "cases": [{
//!     "id": "metadata.topic.unknown",         // group.api.case, unique
//!     "title": "An unknown topic is reported, or auto-created",
//!     "spec": "protocol guide: Metadata API; KIP-204",
//!     "level": "MUST",                        // MUST | SHOULD | INFO
//!     "requires": {"api": "Metadata", "min_version": 4},  // optional; or a list;
//!                                             // {"var": "name"} needs a variable,
//!                                             // {"var": "name", "match": M} a value too
//!     "vars": {},                             // optional, per case
//!     "authenticate": true,                   // optional: SASL before use (default true)
//!     "timeout_ms": 60000,                    // optional bound on the case
//!     "steps": [ ... ]
//!   }]
//! }
//! ```
//!
//! ## Steps
//!
//! A step is an object with exactly one of the keys `send`, `raw`, `wait`,
//! `close`, `receive`, `sasl`, plus that kind's options; any step may have a
//! `"note"`.
//!
//! **send** — one request:
//!
//! | key | meaning |
//! |---|---|
//! | `"send": "Metadata"` | the API, by its protocol-guide name |
//! | `"version"` | `"max"` (default: the highest version kwire and every broker of the run support, from their ApiVersions), `"min"`, `"each"` (every such version: the case runs once per version, `${version}` holds it), a number (skipped unless advertised), `"max+N"` / `"min-N"` (past the broker's range, always sent; the body is encoded at the nearest version kwire knows) |
//! | `"unadvertised": "send"` | send a numbered version even if the broker does not advertise it (default `"skip"`) |
//! | `"request"` | the body as JSON with the official snake_case field names; left-out fields take their defaults; fields of other versions are ignored; error codes may be names; `records` take the record-set JSON (`{"batches": [...]}`) |
//! | `"connection"` | a name (default `"main"`); a new name opens a new connection; one name to two brokers is two connections |
//! | `"to"` | `"bootstrap"` (default), `"leader(TOPIC, PARTITION)"`, `"coordinator(GROUP)"`, `"txn_coordinator(ID)"`, `"node(ID)"`: routed from earlier Metadata / FindCoordinator responses, or looked up first |
//! | `"expect"` | a matcher over the response body (see [`matcher`]) |
//! | `"expect_header"` | a matcher over the response header (`correlation_id`) |
//! | `"capture"` | `{"var": "path.to.field"}`: save values for later steps (`*` in a path takes the first element); `{"var": {"path": "topics.0.topic_id", "default": null}}` gives a value for versions without the field |
//! | `"retry"` | `{"on": ["COORDINATOR_LOAD_IN_PROGRESS", ...], "at": "error_code", "max": 10, "backoff_ms": 100, "until_expect": false}`: resend while the error at `at` (a path, `*` for any array element) is listed, or (with `until_expect`) while the expectation fails; at most `max` more times. The request is rebuilt for every attempt, after taking the captures the retried response has: a JoinGroup retried on MEMBER_ID_REQUIRED carries the member id that answer handed out (KIP-394) |
//! | `"expect_no_response": true` | send and wait for nothing (Produce acks=0); an answer that comes anyway is caught by the next request on the connection, as a response with another correlation id |
//! | `"expect_close": true` | the broker must close the connection instead of answering |
//! | `"deferred": true` | send, and read the response in a later `{"receive": CONNECTION}` step, which checks this step's `expect`, `expect_header`, `expect_duration_ms` and `capture`: for requests the broker holds, like a JoinGroup waiting for the other members of a group |
//! | `"expect_duration_ms"` | a matcher over how long the response took, in milliseconds (`{"$range": [400, 5000]}` for a long poll) |
//! | `"if_advertised": true` | play the step only when every broker advertises the API; otherwise skip the step, not the case (a CreateTopics that brokers without it replace by auto-creation) |
//! | `"timeout_ms"` | how long to wait for the response (default `--timeout-ms`) |
//!
//! Strings in requests, matchers and routes may hold `${name}`: captured
//! values, case and suite `vars`, `--var name=value`, and the built-ins
//! `run` (unique per run, for topic and group names), `case`, `broker`,
//! `version`, and with SASL options `sasl_mechanism`, `sasl_username`,
//! `sasl_password`. A string that is exactly `${name}` takes the value's JSON
//! type. See [`vars`].
//!
//! **raw** — bytes that need not be a valid request:
//! `{"raw": "HEX", "prefix_length": true, "shutdown_write": false,
//! "connection": "main", "to": "bootstrap", "expect": "close" |
//! "error_response" | "close_or_error" | "silence", "timeout_ms": 5000,
//! "match": MATCHER}`. `prefix_length` prepends the 4-byte size;
//! `shutdown_write` closes the sending half afterwards (so a truncated frame
//! stays truncated). An answer is decoded as the API and version the bytes'
//! header claims; without `match`, an answer whose `error_code` is NONE
//! fails `error_response`.
//!
//! **wait** — `{"wait": 500}`: milliseconds (at most 60 s).
//!
//! **close** — `{"close": "main"}`: closes a named connection.
//!
//! **receive** — `{"receive": "b"}`: reads the response to the oldest
//! deferred send on connection `b` and checks it as that send step says.
//! Every deferred send needs a later receive on its connection.
//!
//! **sasl** — `{"sasl": "main", "username": "...", "password": "...",
//! "expect": MATCHER}`: logs the connection in with the run's SASL
//! mechanism, with the run's credentials unless replaced; without `expect`
//! the login must succeed, with it the last SaslAuthenticate response must
//! match. Only in cases with `"authenticate": false`; see suites/README.md.
//!
//! Suite and case `vars` may be generated: `{"$repeat": {"text": "x",
//! "count": 1100000}}` is the text repeated (at most 16 MiB), for payloads
//! too large to write out, like a batch above a broker's message size
//! limit. Transcripts and reports cut request strings over 1 KiB.
//!
//! After every case the runner opens a new connection and sends
//! ApiVersions v0: a broker that stopped answering fails the case.
//!
//! ## Outcomes
//!
//! Per case, per version for `"each"` cases, per broker: `pass`, `fail`
//! (the broker did something the case does not allow), `skip` (the broker
//! does not advertise an API or version the case needs, or a required
//! variable is missing; the reason is reported) or `error` (the case could
//! not be run as written). Exit codes are described in [`mod@verdict`].

pub mod diff;
pub mod embedded;
pub mod glob;
pub mod matcher;
pub mod report;
pub mod runner;
pub mod suite;
pub mod vars;
pub mod verdict;

pub use runner::{Broker, CaseResult, Outcome, RunOptions, Runner};
pub use suite::{load, Suite, SuiteError, SuiteErrors};
pub use verdict::{verdict, Baseline, Verdict};

/// A token unique to this run, for topic and group names: `kw` and the
/// time in milliseconds and the process id in base 36.
pub fn run_token() -> String {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis());
    format!(
        "kw{}{}",
        base36(millis % 36u128.pow(8)),
        base36(u128::from(std::process::id()) % 36u128.pow(4))
    )
}

fn base36(mut value: u128) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(value % 36) as usize]);
        value /= 36;
        if value == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}
