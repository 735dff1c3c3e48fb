//! The gate: from results to an exit code, with known failures taken from a
//! baseline.
//!
//! Exit codes (the same for every report format):
//! - 0: every MUST case passed (and, with `--strict`, every SHOULD case),
//!   apart from failures the baseline lists;
//! - 1: a case that gates failed, or diverged between the two brokers of the
//!   differential mode, and the baseline does not list it;
//! - 2: a case could not be run as written (outcome `error`); a bad suite
//!   or an unreachable broker exits 2 before any case runs.
//!
//! INFO cases never gate. Skipped cases never gate.
//!
//! A baseline is JSON: `{"known_failures": [ENTRY, ...]}` or just the list.
//! An entry is `"case.id"` (every version), `"case.id@3"` (one version), or
//! `{"case": "case.id", "version": 3, "broker": "B", "reason": "..."}`;
//! the case may be a glob (`sasl.*`). The verdict also lists baseline
//! entries whose cases now pass, so the baseline can shrink.

use std::path::Path;

use serde_json::Value as Json;

use super::diff::Divergence;
use super::glob;
use super::runner::{CaseResult, Outcome};
use super::suite::Level;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BaselineEntry {
    pub case: String,
    pub version: Option<i16>,
    pub broker: Option<String>,
    pub reason: Option<String>,
}

impl BaselineEntry {
    fn covers(&self, case: &str, version: Option<i16>, broker: Option<&str>) -> bool {
        glob::matches(&self.case, case)
            && (self.version.is_none() || self.version == version)
            && (self.broker.is_none() || broker.is_none() || self.broker.as_deref() == broker)
    }

    fn key(&self) -> String {
        let mut key = self.case.clone();
        if let Some(version) = self.version {
            key.push_str(&format!("@{version}"));
        }
        if let Some(broker) = &self.broker {
            key.push_str(&format!(" on {broker}"));
        }
        key
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Baseline {
    pub entries: Vec<BaselineEntry>,
}

impl Baseline {
    pub fn load(path: &Path) -> Result<Baseline, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| format!("cannot read the baseline {}: {error}", path.display()))?;
        let json: Json = serde_json::from_str(&text).map_err(|error| {
            format!("the baseline {} is not valid JSON: {error}", path.display())
        })?;
        Baseline::parse(&json).map_err(|error| format!("the baseline {}: {error}", path.display()))
    }

    pub fn parse(json: &Json) -> Result<Baseline, String> {
        let list = match json {
            Json::Array(items) => items,
            Json::Object(object) => match object.get("known_failures") {
                Some(Json::Array(items)) => items,
                _ => return Err("expected {\"known_failures\": [...]} or a list".to_owned()),
            },
            _ => return Err("expected {\"known_failures\": [...]} or a list".to_owned()),
        };
        let mut entries = Vec::with_capacity(list.len());
        for (index, item) in list.iter().enumerate() {
            let entry = match item {
                Json::String(text) => parse_key(text),
                Json::Object(object) => {
                    let case = object
                        .get("case")
                        .and_then(Json::as_str)
                        .ok_or_else(|| format!("known_failures[{index}]: needs \"case\""))?;
                    let version = match object.get("version") {
                        None | Some(Json::Null) => None,
                        Some(value) => Some(
                            value
                                .as_i64()
                                .and_then(|version| i16::try_from(version).ok())
                                .ok_or_else(|| {
                                    format!("known_failures[{index}].version: not a version")
                                })?,
                        ),
                    };
                    BaselineEntry {
                        case: case.to_owned(),
                        version,
                        broker: object
                            .get("broker")
                            .and_then(Json::as_str)
                            .map(str::to_owned),
                        reason: object
                            .get("reason")
                            .and_then(Json::as_str)
                            .map(str::to_owned),
                    }
                }
                _ => return Err(format!("known_failures[{index}]: a string or an object")),
            };
            entries.push(entry);
        }
        Ok(Baseline { entries })
    }

    pub fn covers(&self, case: &str, version: Option<i16>, broker: Option<&str>) -> bool {
        self.entries
            .iter()
            .any(|entry| entry.covers(case, version, broker))
    }

    /// A baseline listing every failure and divergence of a run.
    pub fn from_run(
        results: &[CaseResult],
        divergences: &[Divergence],
        single_broker: bool,
    ) -> Json {
        let mut entries: Vec<Json> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for result in results
            .iter()
            .filter(|result| result.outcome == Outcome::Fail)
        {
            let broker = (!single_broker).then(|| result.broker.clone());
            if seen.insert((result.key(), broker.clone())) {
                let reason =
                    result
                        .failure
                        .as_ref()
                        .map(|failure| match failure.mismatches.first() {
                            Some(mismatch) => mismatch.to_string(),
                            None => failure.message.clone(),
                        });
                entries.push(serde_json::json!({
                    "case": result.id,
                    "version": result.version,
                    "broker": broker,
                    "reason": reason,
                }));
            }
        }
        for divergence in divergences {
            if seen.insert((divergence.key(), None)) {
                entries.push(serde_json::json!({
                    "case": divergence.case,
                    "version": divergence.version,
                    "reason": format!("diverges at {}", divergence.path),
                }));
            }
        }
        // Drop nulls so the file stays short.
        for entry in &mut entries {
            if let Json::Object(object) = entry {
                object.retain(|_, value| !value.is_null());
            }
        }
        serde_json::json!({ "known_failures": entries })
    }
}

fn parse_key(text: &str) -> BaselineEntry {
    let (case, version) = match text.rsplit_once('@') {
        Some((case, version)) => match version.parse::<i16>() {
            Ok(version) => (case, Some(version)),
            Err(_) => (text, None),
        },
        None => (text, None),
    };
    BaselineEntry {
        case: case.to_owned(),
        version,
        broker: None,
        reason: None,
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Verdict {
    pub exit_code: u8,
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
    pub errors: usize,
    /// Failures and divergences that fail the gate (`case@version on B`).
    pub gating: Vec<String>,
    /// Failures the gate lets through: SHOULD without `--strict`, INFO.
    pub tolerated: Vec<String>,
    /// Gating failures the baseline lists.
    pub known: Vec<String>,
    /// Baseline entries whose cases now pass everywhere they ran.
    pub fixed: Vec<String>,
}

fn dedup_in_order(keys: &mut Vec<String>) {
    let mut seen = std::collections::HashSet::new();
    keys.retain(|key| seen.insert(key.clone()));
}

fn gates(level: Level, strict: bool) -> bool {
    match level {
        Level::Must => true,
        Level::Should => strict,
        Level::Info => false,
    }
}

fn label(key: String, broker: &str, brokers: usize) -> String {
    if brokers > 1 {
        format!("{key} on {broker}")
    } else {
        key
    }
}

/// Decides the exit code of a run.
pub fn verdict(
    results: &[CaseResult],
    divergences: &[Divergence],
    strict: bool,
    baseline: Option<&Baseline>,
) -> Verdict {
    let mut verdict = Verdict::default();
    let mut brokers: Vec<&str> = results
        .iter()
        .map(|result| result.broker.as_str())
        .collect();
    brokers.sort_unstable();
    brokers.dedup();
    let broker_count = brokers.len();
    for result in results {
        match result.outcome {
            Outcome::Pass => verdict.passed += 1,
            Outcome::Skip => verdict.skipped += 1,
            Outcome::Error => verdict.errors += 1,
            Outcome::Fail => {
                verdict.failed += 1;
                let key = label(result.key(), &result.broker, broker_count);
                if !gates(result.level, strict) {
                    verdict.tolerated.push(key);
                } else if baseline.is_some_and(|baseline| {
                    baseline.covers(&result.id, result.version, Some(&result.broker))
                }) {
                    verdict.known.push(key);
                } else {
                    verdict.gating.push(key);
                }
            }
        }
    }
    for divergence in divergences {
        if !gates(divergence.level, strict) {
            continue;
        }
        let key = format!("{} (diverges)", divergence.key());
        if baseline
            .is_some_and(|baseline| baseline.covers(&divergence.case, divergence.version, None))
        {
            verdict.known.push(key);
        } else {
            verdict.gating.push(key);
        }
    }
    dedup_in_order(&mut verdict.gating);
    dedup_in_order(&mut verdict.known);
    if let Some(baseline) = baseline {
        for entry in &baseline.entries {
            let broker = entry.broker.as_deref();
            let matching: Vec<&CaseResult> = results
                .iter()
                .filter(|result| entry.covers(&result.id, result.version, Some(&result.broker)))
                .filter(|result| broker.is_none() || broker == Some(result.broker.as_str()))
                .collect();
            let diverging = divergences
                .iter()
                .any(|divergence| entry.covers(&divergence.case, divergence.version, None));
            let ran = matching
                .iter()
                .any(|result| result.outcome != Outcome::Skip);
            let all_pass = matching
                .iter()
                .all(|result| matches!(result.outcome, Outcome::Pass | Outcome::Skip));
            if ran && all_pass && !diverging {
                verdict.fixed.push(entry.key());
            }
        }
    }
    verdict.exit_code = if verdict.errors > 0 {
        2
    } else if !verdict.gating.is_empty() {
        1
    } else {
        0
    };
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn result(id: &str, level: Level, outcome: Outcome, version: Option<i16>) -> CaseResult {
        CaseResult {
            suite: "s".into(),
            file: "suites/s.json".into(),
            id: id.into(),
            title: "t".into(),
            spec: "KIP-1".into(),
            level,
            version,
            broker: "A".into(),
            outcome,
            duration_ms: 1,
            reason: None,
            failure: None,
            transcript: Vec::new(),
        }
    }

    #[test]
    fn must_failures_gate_should_only_when_strict_info_never() {
        let results = vec![
            result("a", Level::Must, Outcome::Pass, None),
            result("b", Level::Should, Outcome::Fail, None),
            result("c", Level::Info, Outcome::Fail, None),
            result("d", Level::Must, Outcome::Skip, None),
        ];
        let relaxed = verdict(&results, &[], false, None);
        assert_eq!(relaxed.exit_code, 0);
        assert_eq!(relaxed.tolerated, vec!["b", "c"]);
        let strict = verdict(&results, &[], true, None);
        assert_eq!(strict.exit_code, 1);
        assert_eq!(strict.gating, vec!["b"]);
        let mut with_must = results.clone();
        with_must.push(result("e", Level::Must, Outcome::Fail, Some(3)));
        let gated = verdict(&with_must, &[], false, None);
        assert_eq!(
            (gated.exit_code, gated.gating.clone()),
            (1, vec!["e@3".to_owned()])
        );
        assert_eq!((gated.passed, gated.failed, gated.skipped), (1, 3, 1));
    }

    #[test]
    fn errors_exit_2_even_when_everything_else_passes() {
        let results = vec![
            result("a", Level::Must, Outcome::Pass, None),
            result("b", Level::Info, Outcome::Error, None),
        ];
        assert_eq!(verdict(&results, &[], false, None).exit_code, 2);
    }

    #[test]
    fn baseline_lets_known_failures_through_and_reports_fixed_ones() {
        let baseline = Baseline::parse(&json!({"known_failures": [
            "a@3", {"case": "b.*"}, "gone"
        ]}))
        .expect("baseline");
        let results = vec![
            result("a", Level::Must, Outcome::Fail, Some(3)),
            result("a", Level::Must, Outcome::Fail, Some(4)),
            result("b.x", Level::Must, Outcome::Pass, None),
            result("gone", Level::Must, Outcome::Pass, None),
        ];
        let verdict = verdict(&results, &[], false, Some(&baseline));
        assert_eq!(verdict.known, vec!["a@3"]);
        assert_eq!(verdict.gating, vec!["a@4"]);
        assert_eq!(verdict.fixed, vec!["b.*", "gone"]);
        assert_eq!(verdict.exit_code, 1);
    }

    #[test]
    fn divergences_gate_by_level_and_baseline() {
        let divergence = |case: &str, level| Divergence {
            suite: "s".into(),
            case: case.into(),
            level,
            version: None,
            step: Some(0),
            api: Some("Metadata"),
            path: "topics.0.error_code".into(),
            a: "0".into(),
            b: "3".into(),
        };
        let results = vec![result("a", Level::Must, Outcome::Pass, None)];
        let divergences = vec![divergence("a", Level::Must), divergence("i", Level::Info)];
        assert_eq!(verdict(&results, &divergences, false, None).exit_code, 1);
        let baseline = Baseline::parse(&json!(["a"])).expect("baseline");
        let known = verdict(&results, &divergences, false, Some(&baseline));
        assert_eq!(known.exit_code, 0);
        assert_eq!(known.known.len(), 1);
        assert!(known.fixed.is_empty(), "a still diverges");
    }

    #[test]
    fn baseline_round_trips_through_from_run() {
        let mut failing = result("x.y", Level::Must, Outcome::Fail, Some(2));
        failing.failure = None;
        let written = Baseline::from_run(&[failing], &[], true);
        assert_eq!(
            written,
            json!({"known_failures": [{"case": "x.y", "version": 2}]})
        );
        let baseline = Baseline::parse(&written).expect("parse");
        assert!(baseline.covers("x.y", Some(2), Some("A")));
        assert!(!baseline.covers("x.y", Some(1), Some("A")));
        assert!(Baseline::parse(&json!({"nope": 1})).is_err());
    }
}
