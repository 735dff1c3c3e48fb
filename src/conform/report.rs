//! Reports of a run: live terminal lines and summary, JSON, JUnit XML and a
//! Markdown report card. All of them show the same facts: per case (and
//! version, and broker) the outcome, level, duration, and for a failure the
//! step, the request sent, each field path with expected against actual,
//! and the spec reference; then the differential mode's divergences and the
//! verdict.
//!
//! In JUnit, a failure that does not gate (SHOULD without `--strict`, INFO,
//! or listed in the baseline) is written as `<skipped>` with the failure in
//! its message, so that CI tools reading the XML agree with the exit code.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::time::Duration;

use serde_json::Value as Json;

use super::diff::Divergence;
use super::matcher::show;
use super::runner::{Broker, CaseResult, Failure, Outcome, Progress};
use super::suite::{Level, Suite};
use super::verdict::{Baseline, Verdict};

/// Everything a report shows.
pub struct Report<'a> {
    pub brokers: &'a [Broker],
    pub suites: &'a [Suite],
    pub results: &'a [CaseResult],
    pub divergences: &'a [Divergence],
    pub verdict: &'a Verdict,
    pub strict: bool,
    pub baseline: Option<&'a Baseline>,
    pub duration: Duration,
}

impl Report<'_> {
    fn suite_title<'s>(&'s self, name: &'s str) -> &'s str {
        self.suites
            .iter()
            .find(|suite| suite.name == name)
            .map_or(name, |suite| suite.title.as_str())
    }

    /// Whether this failed result fails the gate.
    fn gating(&self, result: &CaseResult) -> bool {
        let level_gates = match result.level {
            Level::Must => true,
            Level::Should => self.strict,
            Level::Info => false,
        };
        result.outcome == Outcome::Fail
            && level_gates
            && !self.baseline.is_some_and(|baseline| {
                baseline.covers(&result.id, result.version, Some(&result.broker))
            })
    }

    fn multi_broker(&self) -> bool {
        self.brokers.len() > 1
    }

    /// Results grouped by suite, in run order.
    fn by_suite(&self) -> Vec<(&str, Vec<&CaseResult>)> {
        let mut groups: Vec<(&str, Vec<&CaseResult>)> = Vec::new();
        for result in self.results {
            match groups.iter_mut().find(|(name, _)| *name == result.suite) {
                Some((_, list)) => list.push(result),
                None => groups.push((&result.suite, vec![result])),
            }
        }
        groups
    }
}

// ---- terminal ---------------------------------------------------------------

/// ANSI colours, or nothing.
#[derive(Clone, Copy)]
pub struct Style {
    pub color: bool,
}

impl Style {
    /// Colour when stdout is a terminal and NO_COLOR is unset
    /// (<https://no-color.org>).
    pub fn detect() -> Style {
        use std::io::IsTerminal;
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|value| !value.is_empty());
        Style {
            color: io::stdout().is_terminal() && !no_color,
        }
    }

    fn paint(self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
}

/// Prints a line per case as the run goes.
pub struct Terminal<W: Write> {
    pub out: W,
    pub style: Style,
    pub strict: bool,
    pub brokers: usize,
    pub baseline: Option<Baseline>,
}

impl<W: Write> Progress for Terminal<W> {
    fn suite_started(&mut self, suite: &Suite) {
        let heading = format!("{} — {}", suite.name, suite.title);
        let _ = writeln!(
            self.out,
            "\n{}  ({})",
            self.style.paint("1", &heading),
            suite.file.display()
        );
    }

    fn case_finished(&mut self, result: &CaseResult) {
        let gating = match result.level {
            Level::Must => true,
            Level::Should => self.strict,
            Level::Info => false,
        } && !self.baseline.as_ref().is_some_and(|baseline| {
            baseline.covers(&result.id, result.version, Some(&result.broker))
        });
        let _ = write_result(&mut self.out, self.style, result, gating, self.brokers > 1);
        let _ = self.out.flush();
    }
}

fn case_name(result: &CaseResult, multi_broker: bool) -> String {
    let mut name = result.id.clone();
    if let Some(version) = result.version {
        let _ = write!(name, " v{version}");
    }
    if multi_broker {
        let _ = write!(name, " [{}]", result.broker);
    }
    name
}

fn write_result(
    out: &mut impl Write,
    style: Style,
    result: &CaseResult,
    gating: bool,
    multi_broker: bool,
) -> io::Result<()> {
    let (mark, word, color) = match result.outcome {
        Outcome::Pass => ("✓", "PASS ", "32"),
        Outcome::Fail if gating => ("✗", "FAIL ", "31"),
        Outcome::Fail => ("✗", "FAIL ", "33"),
        Outcome::Skip => ("–", "SKIP ", "2"),
        Outcome::Error => ("!", "ERROR", "35"),
    };
    let name = case_name(result, multi_broker);
    write!(
        out,
        "  {} {:<48} {:<6} {:>6} ms",
        style.paint(color, &format!("{mark} {word}")),
        name,
        result.level.name(),
        result.duration_ms
    )?;
    if result.outcome == Outcome::Fail && !gating {
        write!(out, "  (not gating)")?;
    }
    writeln!(out)?;
    let indent = "        ";
    match result.outcome {
        Outcome::Skip | Outcome::Error => {
            if let Some(reason) = &result.reason {
                writeln!(out, "{indent}{reason}")?;
            }
        }
        Outcome::Fail => {
            writeln!(out, "{indent}{}", result.title)?;
            if let Some(failure) = &result.failure {
                for line in failure_lines(failure) {
                    writeln!(out, "{indent}{line}")?;
                }
            }
            writeln!(out, "{indent}spec: {}", result.spec)?;
        }
        Outcome::Pass => {}
    }
    Ok(())
}

/// The lines that explain a failure, shared by the text formats.
fn failure_lines(failure: &Failure) -> Vec<String> {
    let mut lines = Vec::new();
    let step = match failure.step {
        Some(step) => format!("step {step}: {}", failure.step_label),
        None => failure.step_label.clone(),
    };
    lines.push(step);
    lines.push(failure.message.clone());
    for mismatch in &failure.mismatches {
        lines.push(mismatch.to_string());
    }
    if let Some(request) = &failure.request {
        lines.push(format!("request: {}", show(request)));
    }
    if failure.mismatches.is_empty() {
        if let Some(response) = &failure.response {
            lines.push(format!("response: {}", show(response)));
        }
    }
    lines
}

/// Divergences shown per case in the terminal.
const TERMINAL_DIVERGENCES: usize = 5;

/// The summary after the live lines: divergences, verdict, exit code.
pub fn write_summary(out: &mut impl Write, style: Style, report: &Report) -> io::Result<()> {
    if !report.divergences.is_empty() {
        writeln!(
            out,
            "\n{}",
            style.paint(
                "1",
                &format!("Divergences between A and B ({})", report.divergences.len())
            )
        )?;
        // Per case: the first few fields, then a count; the files have all.
        let mut shown_for = (String::new(), 0usize);
        for divergence in report.divergences {
            let key = divergence.key();
            if shown_for.0 != key {
                shown_for = (key.clone(), 0);
                let total = report
                    .divergences
                    .iter()
                    .filter(|other| other.key() == key)
                    .count();
                writeln!(out, "  {key}: {total} field(s) differ")?;
            }
            shown_for.1 += 1;
            if shown_for.1 > TERMINAL_DIVERGENCES {
                if shown_for.1 == TERMINAL_DIVERGENCES + 1 {
                    writeln!(out, "      … (all of them in --json and --markdown)")?;
                }
                continue;
            }
            let step = divergence
                .step
                .map_or_else(|| "case".to_owned(), |step| format!("step {step}"));
            writeln!(
                out,
                "      {step} {}: A {}  B {}",
                divergence.path, divergence.a, divergence.b
            )?;
        }
    }
    let verdict = report.verdict;
    writeln!(out)?;
    for broker in report.brokers {
        writeln!(
            out,
            "broker {}: {} ({}; {} APIs advertised)",
            broker.label,
            broker.bootstrap,
            broker.transport,
            broker.advertised.len()
        )?;
    }
    let summary = format!(
        "{} passed, {} failed, {} skipped, {} errors in {:.1} s",
        verdict.passed,
        verdict.failed,
        verdict.skipped,
        verdict.errors,
        report.duration.as_secs_f64()
    );
    writeln!(out, "{summary}")?;
    if !verdict.tolerated.is_empty() {
        writeln!(out, "not gating: {}", verdict.tolerated.join(", "))?;
    }
    if !verdict.known.is_empty() {
        writeln!(
            out,
            "known failures (baseline): {}",
            verdict.known.join(", ")
        )?;
    }
    if !verdict.fixed.is_empty() {
        writeln!(
            out,
            "{}",
            style.paint(
                "32",
                &format!(
                    "now passing, remove from the baseline: {}",
                    verdict.fixed.join(", ")
                )
            )
        )?;
    }
    let line = match verdict.exit_code {
        0 => style.paint("32;1", "conformance gate: PASS (exit 0)"),
        1 => style.paint(
            "31;1",
            &format!(
                "conformance gate: FAIL (exit 1): {}",
                verdict.gating.join(", ")
            ),
        ),
        _ => style.paint(
            "35;1",
            "conformance gate: ERROR (exit 2): cases could not run as written",
        ),
    };
    writeln!(out, "{line}")
}

// ---- JSON -------------------------------------------------------------------

pub fn json(report: &Report) -> Json {
    let brokers: Vec<Json> = report
        .brokers
        .iter()
        .map(|broker| {
            serde_json::json!({
                "label": broker.label,
                "bootstrap": broker.bootstrap,
                "transport": broker.transport,
                "apis_advertised": broker.advertised.len(),
            })
        })
        .collect();
    serde_json::json!({
        "kwire": env!("CARGO_PKG_VERSION"),
        "brokers": brokers,
        "strict": report.strict,
        "duration_ms": u64::try_from(report.duration.as_millis()).unwrap_or(u64::MAX),
        "verdict": report.verdict,
        "results": report.results,
        "divergences": report.divergences,
    })
}

// ---- JUnit XML --------------------------------------------------------------

/// Escapes text for XML content and attribute values. Characters XML 1.0
/// cannot carry at all (most C0 controls, U+FFFE, U+FFFF) become U+FFFD.
pub fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(character),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

fn seconds(ms: u64) -> String {
    format!("{:.3}", ms as f64 / 1000.0)
}

pub fn junit(report: &Report) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let total_ms: u64 = report.results.iter().map(|result| result.duration_ms).sum();
    let mut suites_xml = String::new();
    let (mut tests, mut failures, mut errors, mut skipped) = (0, 0, 0, 0);
    let mut groups = report.by_suite();
    // Each testsuite names the brokers and their transport.
    let mut broker_properties = String::new();
    for broker in report.brokers {
        let _ = writeln!(
            broker_properties,
            "      <property name=\"broker {}\" value=\"{} ({})\"/>",
            xml_escape(&broker.label),
            xml_escape(&broker.bootstrap),
            xml_escape(&broker.transport)
        );
    }
    if !broker_properties.is_empty() {
        broker_properties = format!("    <properties>\n{broker_properties}    </properties>\n");
    }
    let differential = differential_cases(report);
    if !differential.is_empty() {
        groups.push(("differential", Vec::new()));
    }
    for (suite, results) in groups {
        let mut cases = String::new();
        let (mut s_failures, mut s_errors, mut s_skipped, mut s_ms) = (0, 0, 0, 0);
        let mut count = 0;
        if suite == "differential" && results.is_empty() {
            for (key, level, found) in &differential {
                count += 1;
                let _ = write!(
                    cases,
                    "    <testcase classname=\"kwire.differential\" name=\"{}\" time=\"0.000\"",
                    xml_escape(key)
                );
                if found.is_empty() {
                    cases.push_str("/>\n");
                    continue;
                }
                let gates = *level == Level::Must || (*level == Level::Should && report.strict);
                let details: Vec<String> = found
                    .iter()
                    .map(|divergence| {
                        format!(
                            "{} {}: A {} B {}",
                            divergence
                                .step
                                .map_or_else(|| "case".to_owned(), |step| format!("step {step}")),
                            divergence.path,
                            divergence.a,
                            divergence.b
                        )
                    })
                    .collect();
                let message = format!("{} field(s) differ between A and B", found.len());
                if gates {
                    s_failures += 1;
                    let _ = write!(
                        cases,
                        ">\n      <failure message=\"{}\" type=\"divergence\">{}</failure>\n    </testcase>\n",
                        xml_escape(&message),
                        xml_escape(&details.join("\n"))
                    );
                } else {
                    s_skipped += 1;
                    let _ = write!(
                        cases,
                        ">\n      <skipped message=\"{}\"/>\n      <system-out>{}</system-out>\n    </testcase>\n",
                        xml_escape(&format!("not gating ({}): {message}", level.name())),
                        xml_escape(&details.join("\n"))
                    );
                }
            }
        }
        for result in results {
            count += 1;
            s_ms += result.duration_ms;
            let _ = write!(
                cases,
                "    <testcase classname=\"kwire.{}\" name=\"{}\" time=\"{}\"",
                xml_escape(suite),
                xml_escape(&case_name(result, report.multi_broker())),
                seconds(result.duration_ms)
            );
            let properties = format!(
                "      <properties>\n        <property name=\"level\" value=\"{}\"/>\n        <property name=\"spec\" value=\"{}\"/>\n        <property name=\"title\" value=\"{}\"/>\n      </properties>\n",
                result.level.name(),
                xml_escape(&result.spec),
                xml_escape(&result.title)
            );
            match result.outcome {
                Outcome::Pass => {
                    let _ = write!(cases, ">\n{properties}    </testcase>\n");
                }
                Outcome::Skip => {
                    s_skipped += 1;
                    let _ = write!(
                        cases,
                        ">\n{properties}      <skipped message=\"{}\"/>\n    </testcase>\n",
                        xml_escape(result.reason.as_deref().unwrap_or("skipped"))
                    );
                }
                Outcome::Error => {
                    s_errors += 1;
                    let reason = result.reason.as_deref().unwrap_or("error");
                    let _ = write!(
                        cases,
                        ">\n{properties}      <error message=\"{}\" type=\"suite\">{}</error>\n    </testcase>\n",
                        xml_escape(reason),
                        xml_escape(reason)
                    );
                }
                Outcome::Fail => {
                    let details = result
                        .failure
                        .as_ref()
                        .map(|failure| failure_lines(failure).join("\n"))
                        .unwrap_or_default();
                    let details = format!("{details}\nspec: {}", result.spec);
                    let message = result
                        .failure
                        .as_ref()
                        .map_or_else(|| "failed".to_owned(), |failure| failure.message.clone());
                    if report.gating(result) {
                        s_failures += 1;
                        let _ = write!(
                            cases,
                            ">\n{properties}      <failure message=\"{}\" type=\"{}\">{}</failure>\n    </testcase>\n",
                            xml_escape(&message),
                            result.level.name(),
                            xml_escape(&details)
                        );
                    } else {
                        s_skipped += 1;
                        let why = if matches!(result.level, Level::Must)
                            || (result.level == Level::Should && report.strict)
                        {
                            "known failure (baseline)".to_owned()
                        } else {
                            format!("{} not met, not gating", result.level.name())
                        };
                        let _ = write!(
                            cases,
                            ">\n{properties}      <skipped message=\"{}\"/>\n      <system-out>{}</system-out>\n    </testcase>\n",
                            xml_escape(&format!("{why}: {message}")),
                            xml_escape(&details)
                        );
                    }
                }
            }
        }
        tests += count;
        failures += s_failures;
        errors += s_errors;
        skipped += s_skipped;
        let _ = write!(
            suites_xml,
            "  <testsuite name=\"{}\" tests=\"{count}\" failures=\"{s_failures}\" errors=\"{s_errors}\" skipped=\"{s_skipped}\" time=\"{}\">\n{broker_properties}{cases}  </testsuite>\n",
            xml_escape(suite),
            seconds(s_ms)
        );
    }
    let _ = write!(
        out,
        "<testsuites name=\"kwire conform\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"{skipped}\" time=\"{}\">\n{suites_xml}</testsuites>\n",
        seconds(total_ms)
    );
    out
}

/// (case key, level, divergences) for every case and version both brokers
/// ran, in run order.
fn differential_cases<'a>(report: &'a Report) -> Vec<(String, Level, Vec<&'a Divergence>)> {
    if !report.multi_broker() {
        return Vec::new();
    }
    let mut out: Vec<(String, Level, Vec<&Divergence>)> = Vec::new();
    for result in report.results {
        if result.outcome == Outcome::Skip || out.iter().any(|(key, _, _)| *key == result.key()) {
            continue;
        }
        let found = report
            .divergences
            .iter()
            .filter(|divergence| divergence.key() == result.key())
            .collect();
        out.push((result.key(), result.level, found));
    }
    out
}

// ---- Markdown ---------------------------------------------------------------

fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace(['\n', '\r'], " ")
}

fn symbol(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Pass => "✓",
        Outcome::Fail => "✗",
        Outcome::Skip => "–",
        Outcome::Error => "!",
    }
}

/// A report card: per suite, a grid of cases against versions.
pub fn markdown(report: &Report) -> String {
    let mut out = String::from("# kwire conformance report\n\n");
    for broker in report.brokers {
        let _ = writeln!(
            out,
            "- broker {}: `{}` ({}; {} APIs advertised)",
            broker.label,
            broker.bootstrap,
            broker.transport,
            broker.advertised.len()
        );
    }
    let verdict = report.verdict;
    let gate = match verdict.exit_code {
        0 => "PASS",
        1 => "FAIL",
        _ => "ERROR",
    };
    let _ = writeln!(
        out,
        "- kwire {}, {} mode\n\n**Gate: {gate}** — {} passed, {} failed, {} skipped, {} errors.\n",
        env!("CARGO_PKG_VERSION"),
        if report.strict { "strict" } else { "default" },
        verdict.passed,
        verdict.failed,
        verdict.skipped,
        verdict.errors
    );
    out.push_str(
        "✓ pass · ✗ fail · – skipped · ! error; blank: the case does not run per version.\n",
    );
    for (suite, results) in report.by_suite() {
        let mut versions: Vec<i16> = results.iter().filter_map(|result| result.version).collect();
        versions.sort_unstable();
        versions.dedup();
        let _ = writeln!(
            out,
            "\n## {} — {}\n",
            cell(suite),
            cell(report.suite_title(suite))
        );
        let broker_column = if report.multi_broker() {
            " broker |"
        } else {
            ""
        };
        let _ = write!(out, "| case | level |{broker_column} result |");
        for version in &versions {
            let _ = write!(out, " v{version} |");
        }
        out.push_str("\n|---|---|");
        if report.multi_broker() {
            out.push_str("---|");
        }
        out.push_str(":-:|");
        for _ in &versions {
            out.push_str(":-:|");
        }
        out.push('\n');
        // One row per case (and broker), in run order.
        let mut rows: Vec<(&str, &str)> = Vec::new();
        for result in &results {
            if !rows.contains(&(result.id.as_str(), result.broker.as_str())) {
                rows.push((&result.id, &result.broker));
            }
        }
        for (id, broker) in rows {
            let row: Vec<&&CaseResult> = results
                .iter()
                .filter(|result| result.id == id && result.broker == broker)
                .collect();
            let Some(first) = row.first() else {
                continue;
            };
            let overall = if row.iter().any(|result| result.outcome == Outcome::Error) {
                Outcome::Error
            } else if row.iter().any(|result| result.outcome == Outcome::Fail) {
                Outcome::Fail
            } else if row.iter().any(|result| result.outcome == Outcome::Pass) {
                Outcome::Pass
            } else {
                Outcome::Skip
            };
            let _ = write!(out, "| `{}` | {} |", cell(id), first.level.name());
            if report.multi_broker() {
                let _ = write!(out, " {} |", cell(broker));
            }
            let _ = write!(out, " {} |", symbol(overall));
            for version in &versions {
                let mark = row
                    .iter()
                    .find(|result| result.version == Some(*version))
                    .map_or("", |result| symbol(result.outcome));
                let _ = write!(out, " {mark} |");
            }
            out.push('\n');
        }
        let failed: Vec<&&CaseResult> = results
            .iter()
            .filter(|result| matches!(result.outcome, Outcome::Fail | Outcome::Error))
            .collect();
        if !failed.is_empty() {
            out.push_str("\nFailures:\n\n");
            for result in failed {
                let _ = writeln!(
                    out,
                    "- `{}` ({}{}) — {}",
                    cell(&case_name(result, report.multi_broker())),
                    result.level.name(),
                    if report.gating(result) || result.outcome == Outcome::Error {
                        ""
                    } else {
                        ", not gating"
                    },
                    cell(&result.title)
                );
                let lines = match (&result.failure, &result.reason) {
                    (Some(failure), _) => failure_lines(failure),
                    (None, Some(reason)) => vec![reason.clone()],
                    (None, None) => Vec::new(),
                };
                for line in lines {
                    let _ = writeln!(out, "  - {}", cell(&line).replace('`', "'"));
                }
                let _ = writeln!(out, "  - spec: {}", cell(&result.spec));
            }
        }
        let skipped: Vec<&&CaseResult> = results
            .iter()
            .filter(|result| result.outcome == Outcome::Skip)
            .collect();
        if !skipped.is_empty() {
            out.push_str("\nSkipped:\n\n");
            for result in skipped {
                let _ = writeln!(
                    out,
                    "- `{}`: {}",
                    cell(&case_name(result, report.multi_broker())),
                    cell(result.reason.as_deref().unwrap_or(""))
                );
            }
        }
    }
    if !report.divergences.is_empty() {
        out.push_str("\n## Divergences between A and B\n\n| case | step | API | path | A | B |\n|---|---|---|---|---|---|\n");
        for divergence in report.divergences {
            let _ = writeln!(
                out,
                "| `{}` | {} | {} | `{}` | {} | {} |",
                cell(&divergence.key()),
                divergence
                    .step
                    .map_or_else(|| "case".to_owned(), |step| step.to_string()),
                divergence.api.unwrap_or(""),
                cell(&divergence.path),
                cell(&divergence.a),
                cell(&divergence.b)
            );
        }
    }
    if !verdict.fixed.is_empty() {
        let _ = writeln!(
            out,
            "\nNow passing (remove from the baseline): {}",
            verdict
                .fixed
                .iter()
                .map(|key| format!("`{key}`"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conform::matcher::Mismatch;
    use crate::conform::verdict::verdict;

    fn result(id: &str, level: Level, outcome: Outcome, version: Option<i16>) -> CaseResult {
        CaseResult {
            suite: "handshake".into(),
            file: "suites/handshake.json".into(),
            id: id.into(),
            title: "A <title> & \"quotes\"".into(),
            spec: "KIP-511".into(),
            level,
            version,
            broker: "A".into(),
            outcome,
            duration_ms: 12,
            reason: (outcome == Outcome::Skip).then(|| "broker A does not advertise X".into()),
            failure: (outcome == Outcome::Fail).then(|| Failure {
                step: Some(1),
                step_label: "send ApiVersions v4 on main to bootstrap".into(),
                message: "the response differs\u{1}".into(),
                request: Some(serde_json::json!({"client_software_name": "<kwire>"})),
                response: None,
                mismatches: vec![Mismatch {
                    path: "error_code".into(),
                    expected: "\"UNSUPPORTED_VERSION\"".into(),
                    actual: "0 (NONE)".into(),
                }],
            }),
            transcript: Vec::new(),
        }
    }

    fn sample() -> Vec<CaseResult> {
        vec![
            result("handshake.each", Level::Must, Outcome::Pass, Some(0)),
            result("handshake.each", Level::Must, Outcome::Fail, Some(1)),
            result("handshake.above", Level::Should, Outcome::Fail, None),
            result("handshake.sasl", Level::Must, Outcome::Skip, None),
        ]
    }

    fn report<'a>(results: &'a [CaseResult], verdict: &'a Verdict) -> Report<'a> {
        Report {
            brokers: &[],
            suites: &[],
            results,
            divergences: &[],
            verdict,
            strict: false,
            baseline: None,
            duration: Duration::from_millis(40),
        }
    }

    /// A small well-formedness check: balanced tags, quoted attributes,
    /// known entities, no raw `<` or `&` in text, no control characters.
    fn assert_well_formed(xml: &str) {
        let body = xml
            .strip_prefix("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n")
            .expect("declaration");
        let mut stack: Vec<String> = Vec::new();
        let mut rest = body;
        while let Some(start) = rest.find('<') {
            check_text(&rest[..start]);
            let end = rest[start..].find('>').expect("tag closes") + start;
            let tag = &rest[start + 1..end];
            if let Some(name) = tag.strip_prefix('/') {
                assert_eq!(stack.pop().as_deref(), Some(name), "closing tag");
            } else {
                let self_closing = tag.ends_with('/');
                let tag = tag.trim_end_matches('/');
                let (name, attributes) = tag.split_once(' ').unwrap_or((tag, ""));
                assert!(
                    name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
                    "name {name}"
                );
                let mut attributes = attributes.trim();
                while !attributes.is_empty() {
                    let (key, value) = attributes.split_once("=\"").expect("attribute");
                    assert!(key.chars().all(|c| c.is_ascii_alphabetic()), "key {key}");
                    let close = value.find('"').expect("quoted");
                    check_text(&value[..close]);
                    attributes = value[close + 1..].trim_start();
                }
                if !self_closing {
                    stack.push(name.to_owned());
                }
            }
            rest = &rest[end + 1..];
        }
        check_text(rest);
        assert!(stack.is_empty(), "unclosed {stack:?}");
    }

    fn check_text(text: &str) {
        assert!(!text.contains('<') && !text.contains('>'), "{text}");
        assert!(
            !text
                .chars()
                .any(|c| (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r')),
            "control character in {text:?}"
        );
        let mut rest = text;
        while let Some(amp) = rest.find('&') {
            let after = &rest[amp..];
            assert!(
                ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"]
                    .iter()
                    .any(|entity| after.starts_with(entity)),
                "bad entity in {text:?}"
            );
            rest = &after[1..];
        }
    }

    #[test]
    fn junit_is_well_formed_and_counts_match() {
        let results = sample();
        let verdict = verdict(&results, &[], false, None);
        let xml = junit(&report(&results, &verdict));
        assert_well_formed(&xml);
        assert!(xml.contains("<testsuites name=\"kwire conform\" tests=\"4\" failures=\"1\" errors=\"0\" skipped=\"2\""), "{xml}");
        assert!(xml.contains("name=\"handshake.each v1\""));
        assert!(xml.contains("&lt;title&gt; &amp; &quot;quotes&quot;"));
        assert!(xml.contains("&lt;kwire&gt;"));
        assert!(xml.contains("SHOULD not met, not gating"));
        assert!(xml.contains("<skipped message=\"broker A does not advertise X\"/>"));
    }

    #[test]
    fn xml_escape_replaces_characters_xml_cannot_carry() {
        assert_eq!(xml_escape("a\u{0}b\u{1b}c\td"), "a\u{FFFD}b\u{FFFD}c\td");
        assert_eq!(xml_escape("'<&>\""), "&apos;&lt;&amp;&gt;&quot;");
    }

    #[test]
    fn markdown_grid_has_a_column_per_version() {
        let results = sample();
        let verdict = verdict(&results, &[], false, None);
        let text = markdown(&report(&results, &verdict));
        assert!(
            text.contains("| case | level | result | v0 | v1 |"),
            "{text}"
        );
        assert!(
            text.contains("| `handshake.each` | MUST | ✗ | ✓ | ✗ |"),
            "{text}"
        );
        assert!(
            text.contains("| `handshake.above` | SHOULD | ✗ |  |  |"),
            "{text}"
        );
        assert!(
            text.contains("| `handshake.sasl` | MUST | – |  |  |"),
            "{text}"
        );
        assert!(text.contains("**Gate: FAIL**"), "{text}");
        assert!(
            text.contains("at error_code: expected \"UNSUPPORTED_VERSION\", actual 0 (NONE)"),
            "{text}"
        );
    }

    #[test]
    fn terminal_lines_show_step_request_path_and_spec() {
        let results = sample();
        let mut out = Vec::new();
        for result in &results {
            write_result(&mut out, Style { color: false }, result, true, false).expect("write");
        }
        let text = String::from_utf8(out).expect("utf8");
        assert!(text.contains("✗ FAIL  handshake.each v1"), "{text}");
        assert!(
            text.contains("step 1: send ApiVersions v4 on main to bootstrap"),
            "{text}"
        );
        assert!(
            text.contains("at error_code: expected \"UNSUPPORTED_VERSION\", actual 0 (NONE)"),
            "{text}"
        );
        assert!(
            text.contains("request: {\"client_software_name\":\"<kwire>\"}"),
            "{text}"
        );
        assert!(text.contains("spec: KIP-511"), "{text}");
        assert!(text.contains("– SKIP  handshake.sasl"), "{text}");
        assert!(!text.contains('\x1b'));
    }
}
