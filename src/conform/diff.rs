//! The differential mode: the same case on two brokers, responses compared
//! field by field.
//!
//! Fields that differ from run to run or broker to broker without either
//! being wrong (throttle times, node ids, cluster and member ids,
//! timestamps, producer ids, session ids, hosts and ports, error message
//! text) are masked: a path matching a mask is not compared. The default
//! list is [`DEFAULT_MASKS`]; `--mask`, a suite's `"masks"` and a case's
//! `"masks"` add to it. Mask syntax is in [`super::glob::path_matches`].

use serde_json::Value as Json;

use super::glob;
use super::matcher::{show, show_actual};
use super::runner::{CaseResult, Outcome, StepRecord};
use super::suite::Level;

/// Paths not compared in the differential mode, and why:
pub const DEFAULT_MASKS: &[&str] = &[
    // Quotas differ per broker and per moment.
    "**.throttle_time_ms",
    // Node ids and everything naming replicas depend on the cluster's layout.
    "**.node_id",
    "**.broker_id",
    "**.leader_id",
    "**.controller_id",
    "**.leader_epoch",
    "**.replica_nodes",
    "**.isr_nodes",
    "**.offline_replicas",
    "**.eligible_leader_replicas",
    "**.last_known_elr",
    "**.rack",
    "**.host",
    "**.port",
    // Generated identities.
    "**.cluster_id",
    "**.topic_id",
    "**.member_id",
    "**.leader",
    "**.producer_id",
    "**.session_id",
    "**.finalized_features_epoch",
    // Clocks.
    "**.*timestamp*",
    "**.*_time_ms",
    // A record batch's CRC covers its timestamps and producer id.
    "**.batches.*.crc",
    // Free text written by each implementation in its own words.
    "**.error_message",
    // Capabilities: each broker lists its own API versions and features;
    // the runner already sends both brokers the versions they share.
    "api_keys",
    "supported_features",
    "finalized_features",
    "zk_migration_ready",
    // The cluster's layout: how many brokers, where.
    "**.brokers",
];

/// One field whose value differs between the two brokers.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Divergence {
    pub suite: String,
    pub case: String,
    pub level: Level,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<i16>,
    /// The step index; None for the case's outcome as a whole.
    pub step: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api: Option<&'static str>,
    /// Field path inside the response, `(outcome)` for the step's or the
    /// case's outcome, `(absent)` parts for fields one side lacks.
    pub path: String,
    /// The value on the first broker (`--bootstrap`).
    pub a: String,
    /// The value on the second broker (`--against`).
    pub b: String,
}

impl Divergence {
    /// `metadata.topic.unknown@3`.
    pub fn key(&self) -> String {
        match self.version {
            Some(version) => format!("{}@{version}", self.case),
            None => self.case.clone(),
        }
    }
}

/// The outcome a runner records for an `if_advertised` step it skipped.
pub const NOT_ADVERTISED: &str = "not advertised";

/// Most divergences reported per case.
const MAX_PER_CASE: usize = 50;

/// Compares one case's runs on two brokers.
pub fn compare(
    a: &CaseResult,
    a_steps: &[StepRecord],
    b: &CaseResult,
    b_steps: &[StepRecord],
    masks: &[String],
) -> Vec<Divergence> {
    let mut out = Vec::new();
    if a.outcome == Outcome::Skip || b.outcome == Outcome::Skip {
        return out;
    }
    let base = |step: Option<usize>,
                api: Option<&'static str>,
                path: String,
                left: String,
                right: String| Divergence {
        suite: a.suite.clone(),
        case: a.id.clone(),
        level: a.level,
        version: a.version,
        step,
        api,
        path,
        a: left,
        b: right,
    };
    if a.outcome != b.outcome {
        out.push(base(
            None,
            None,
            "(outcome)".to_owned(),
            outcome_text(a),
            outcome_text(b),
        ));
    }
    for (left, right) in a_steps.iter().zip(b_steps) {
        if out.len() >= MAX_PER_CASE {
            break;
        }
        let api = left.api;
        // An `if_advertised` step is played only where the broker has the
        // API: preparation (creating a topic), not a comparison.
        if [left, right]
            .iter()
            .any(|step| step.outcome.starts_with(NOT_ADVERTISED))
        {
            continue;
        }
        if left.outcome != right.outcome {
            out.push(base(
                Some(left.index),
                api,
                "(outcome)".to_owned(),
                left.outcome.clone(),
                right.outcome.clone(),
            ));
            continue;
        }
        if let (Some(left_json), Some(right_json)) = (&left.response, &right.response) {
            let mut found = Vec::new();
            diff_json(left_json, right_json, "", masks, &mut found);
            for (path, left_value, right_value) in found {
                out.push(base(Some(left.index), api, path, left_value, right_value));
            }
        }
    }
    out.truncate(MAX_PER_CASE);
    out
}

fn outcome_text(result: &CaseResult) -> String {
    match (&result.failure, &result.reason) {
        (Some(failure), _) => format!("{}: {}", result.outcome.name(), failure.message),
        (None, Some(reason)) => format!("{}: {reason}", result.outcome.name()),
        (None, None) => result.outcome.name().to_owned(),
    }
}

fn masked(path: &str, masks: &[String]) -> bool {
    masks.iter().any(|mask| glob::path_matches(mask, path))
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// Appends (path, a, b) for every unmasked difference between two trees.
pub fn diff_json(
    a: &Json,
    b: &Json,
    path: &str,
    masks: &[String],
    out: &mut Vec<(String, String, String)>,
) {
    if out.len() >= MAX_PER_CASE || (!path.is_empty() && masked(path, masks)) {
        return;
    }
    match (a, b) {
        (Json::Object(left), Json::Object(right)) => {
            for (key, left_value) in left {
                let here = join(path, key);
                match right.get(key) {
                    Some(right_value) => diff_json(left_value, right_value, &here, masks, out),
                    None if !masked(&here, masks) => {
                        out.push((here, show(left_value), "(absent)".to_owned()))
                    }
                    None => {}
                }
            }
            for (key, right_value) in right {
                let here = join(path, key);
                if !left.contains_key(key) && !masked(&here, masks) {
                    out.push((here, "(absent)".to_owned(), show(right_value)));
                }
            }
        }
        (Json::Array(left), Json::Array(right)) => {
            if left.len() != right.len() {
                out.push((
                    join(path, "(length)"),
                    left.len().to_string(),
                    right.len().to_string(),
                ));
            }
            for (index, (left_value, right_value)) in left.iter().zip(right).enumerate() {
                diff_json(
                    left_value,
                    right_value,
                    &join(path, &index.to_string()),
                    masks,
                    out,
                );
            }
        }
        _ => {
            if a != b {
                out.push((
                    path.to_owned(),
                    show_actual(path, Some(a)),
                    show_actual(path, Some(b)),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn masks() -> Vec<String> {
        DEFAULT_MASKS
            .iter()
            .map(|mask| (*mask).to_owned())
            .collect()
    }

    #[test]
    fn masked_fields_are_not_compared() {
        let a = json!({"throttle_time_ms": 0, "brokers": [{"node_id": 1, "host": "a", "port": 1}],
                       "cluster_id": "x", "topics": [{"name": "t", "error_code": 0,
                       "partitions": [{"leader_id": 1, "log_append_time_ms": 5}]}]});
        let b = json!({"throttle_time_ms": 9, "brokers": [{"node_id": 7, "host": "b", "port": 2}],
                       "cluster_id": "y", "topics": [{"name": "t", "error_code": 3,
                       "partitions": [{"leader_id": 2, "log_append_time_ms": 6}]}]});
        let mut out = Vec::new();
        diff_json(&a, &b, "", &masks(), &mut out);
        assert_eq!(
            out,
            vec![(
                "topics.0.error_code".to_owned(),
                "0 (NONE)".to_owned(),
                "3 (UNKNOWN_TOPIC_OR_PARTITION)".to_owned()
            )]
        );
    }

    #[test]
    fn lengths_and_absent_fields_are_divergences() {
        let mut out = Vec::new();
        diff_json(
            &json!({"a": [1, 2], "x": 1}),
            &json!({"a": [1], "y": 2}),
            "",
            &[],
            &mut out,
        );
        assert_eq!(
            out,
            vec![
                ("a.(length)".to_owned(), "2".to_owned(), "1".to_owned()),
                ("x".to_owned(), "1".to_owned(), "(absent)".to_owned()),
                ("y".to_owned(), "(absent)".to_owned(), "2".to_owned()),
            ]
        );
    }
}
