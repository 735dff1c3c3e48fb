//! The `--stats` report: what a capture holds, tallied exchange by exchange
//! in bounded memory. Per API: counts, states, bytes and latency
//! percentiles; errors by code; records and bytes per topic-partition; client
//! ids; and, from the capture engine's [`CaptureReport`], connections and the
//! loss counters, each cause kept apart. Rendered as aligned text or JSON.
//!
//! Latency percentiles are nearest-rank percentiles. Up to 4,096 latencies
//! per API they are exact (the values are kept); beyond, they come from a
//! log-bucketed histogram ([`Histogram`]): 64 buckets per power of two, each
//! reported by its midpoint, so a percentile is within 0.8% of the exact
//! value (exact below 128 ns), while min, max and mean stay exact. A
//! histogram never holds more than 3,776 counters (30 KB) plus the 4,096
//! kept values (32 KB), whatever the capture's size. The other tables
//! grow with distinct APIs, error codes, topic-partitions and client ids, not
//! with exchanges, and the last two are capped (see `MAX_PARTITIONS`,
//! `MAX_CLIENT_IDS`); what does not fit is counted as overflow.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt::Write;

use compact_str::CompactString;
use serde_json::{json, Value as Json};

use crate::exchange::{
    error_name, push_int, push_uint, push_uint_zero_padded, Exchange, ExchangeState, Summary,
};
use crate::frame::api_name;
use crate::session::{CaptureReport, ConnectionKind, ConnectionState};

/// Distinct topic-partitions tallied; more are added to `overflow`.
const MAX_PARTITIONS: usize = 100_000;
/// Distinct client ids tallied; more are added to `overflow`.
const MAX_CLIENT_IDS: usize = 10_000;

/// Everything `--stats` counts from exchanges.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    exchanges: u64,
    first_ns: Option<i64>,
    last_ns: Option<i64>,
    apis: BTreeMap<i16, ApiStats>,
    all_latency: Histogram,
    errors: BTreeMap<i16, ErrorStats>,
    partitions: BTreeMap<(CompactString, i32), PartitionStats>,
    partitions_overflow: PartitionStats,
    clients: BTreeMap<String, u64>,
    clients_overflow: u64,
    /// Record batches whose CRC does not match their bytes.
    bad_crc_batches: u64,
}

/// One API's exchanges.
#[derive(Clone, Debug, Default)]
pub struct ApiStats {
    pub exchanges: u64,
    /// Exchanges per API version.
    pub versions: BTreeMap<i16, u64>,
    pub complete: u64,
    pub no_response: u64,
    pub response_missing: u64,
    pub request_missing: u64,
    pub inferred: u64,
    /// Exchanges with bytes lost to a capture gap.
    pub lost: u64,
    /// Exchanges with a side that did not decode.
    pub undecodable: u64,
    /// Exchanges with at least one non-zero error code.
    pub with_errors: u64,
    pub request_bytes: u64,
    pub response_bytes: u64,
    pub latency: Histogram,
}

/// One error code: how many exchanges carried it, per API.
#[derive(Clone, Debug, Default)]
pub struct ErrorStats {
    pub exchanges: u64,
    pub apis: BTreeMap<i16, u64>,
}

/// Record sets seen for one topic-partition, produced (Produce requests)
/// and fetched (every other API: Fetch and ShareFetch responses).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PartitionStats {
    pub produce_exchanges: u64,
    pub produced_records: u64,
    pub produced_bytes: u64,
    pub fetch_exchanges: u64,
    pub fetched_records: u64,
    pub fetched_bytes: u64,
}

impl Stats {
    pub fn new() -> Stats {
        Stats::default()
    }

    /// Tallies one exchange (its summary is computed here).
    pub fn add(&mut self, exchange: &Exchange) {
        let summary = exchange.summary();
        self.add_with(exchange, &summary);
    }

    /// Tallies one exchange whose summary the caller already has.
    pub fn add_with(&mut self, exchange: &Exchange, summary: &Summary) {
        self.exchanges += 1;
        for message in [&exchange.request, &exchange.response]
            .into_iter()
            .flatten()
        {
            self.first_ns = Some(
                self.first_ns
                    .map_or(message.ts_ns, |t| t.min(message.ts_ns)),
            );
            self.last_ns = Some(self.last_ns.map_or(message.ts_ns, |t| t.max(message.ts_ns)));
        }

        let api = self.apis.entry(exchange.api_key).or_default();
        api.exchanges += 1;
        *api.versions.entry(exchange.api_version).or_default() += 1;
        match exchange.state {
            ExchangeState::Complete => api.complete += 1,
            ExchangeState::NoResponseExpected => api.no_response += 1,
            ExchangeState::ResponseMissing => api.response_missing += 1,
            ExchangeState::RequestMissing => api.request_missing += 1,
        }
        api.inferred += u64::from(exchange.inferred);
        api.lost += u64::from(exchange.lost);
        let undecodable = [&exchange.request, &exchange.response]
            .into_iter()
            .flatten()
            .any(|message| message.frame.error.is_some());
        api.undecodable += u64::from(undecodable);
        api.with_errors += u64::from(!summary.errors.is_empty());
        self.bad_crc_batches += summary.bad_crc_batches();
        api.request_bytes += exchange.request_size().unwrap_or(0) as u64;
        api.response_bytes += exchange.response_size().unwrap_or(0) as u64;
        if let Some(latency) = exchange.latency_ns() {
            // A response stamped before its request (clock steps in the
            // capture) counts as instantaneous.
            let latency = u64::try_from(latency).unwrap_or(0);
            api.latency.record(latency);
            self.all_latency.record(latency);
        }

        for code in &summary.errors {
            let error = self.errors.entry(*code).or_default();
            error.exchanges += 1;
            *error.apis.entry(exchange.api_key).or_default() += 1;
        }

        let produced = exchange.api_key == crate::schema::PRODUCE_KEY;
        for (key, tally) in &summary.records {
            let entry =
                if self.partitions.len() < MAX_PARTITIONS || self.partitions.contains_key(key) {
                    self.partitions.entry(key.clone()).or_default()
                } else {
                    &mut self.partitions_overflow
                };
            if produced {
                entry.produce_exchanges += 1;
                entry.produced_records += tally.records;
                entry.produced_bytes += tally.bytes;
            } else {
                entry.fetch_exchanges += 1;
                entry.fetched_records += tally.records;
                entry.fetched_bytes += tally.bytes;
            }
        }

        if let Some(client_id) = exchange.client_id() {
            if let Some(count) = self.clients.get_mut(client_id) {
                *count += 1;
            } else if self.clients.len() < MAX_CLIENT_IDS {
                self.clients.insert(client_id.to_owned(), 1);
            } else {
                self.clients_overflow += 1;
            }
        }
    }

    pub fn exchanges(&self) -> u64 {
        self.exchanges
    }

    pub fn api(&self, api_key: i16) -> Option<&ApiStats> {
        self.apis.get(&api_key)
    }

    /// Exchanges carrying each error code.
    pub fn error_counts(&self) -> impl Iterator<Item = (i16, u64)> + '_ {
        self.errors
            .iter()
            .map(|(code, stats)| (*code, stats.exchanges))
    }

    pub fn partition(&self, topic: &str, partition: i32) -> Option<&PartitionStats> {
        self.partitions
            .get(&(CompactString::from(topic), partition))
    }

    /// Exchanges per client id.
    pub fn client_counts(&self) -> impl Iterator<Item = (&str, u64)> + '_ {
        self.clients.iter().map(|(id, count)| (id.as_str(), *count))
    }

    /// The report as aligned text.
    pub fn render_text(&self, report: &CaptureReport) -> String {
        let mut out = String::new();
        let span = match (self.first_ns, self.last_ns) {
            (Some(first), Some(last)) => format!(" over {}", format_duration(last - first)),
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "{} packets, {} bytes ({}), {} connections, {} exchanges{span}",
            report.packets,
            report.bytes,
            report.link_type,
            report.connections.len() as u64 + report.connections_omitted,
            self.exchanges,
        );
        if let Some(error) = &report.read_error {
            let _ = writeln!(out, "warning: the capture ends early: {error}");
        }

        out.push_str("\nRequests by API\n");
        let mut table = Table::new(&[
            ("api", false),
            ("versions", false),
            ("count", true),
            ("complete", true),
            ("no resp", true),
            ("missing", true),
            ("errors", true),
            ("p50", true),
            ("p95", true),
            ("p99", true),
            ("max", true),
            ("request B", true),
            ("response B", true),
        ]);
        for (key, api) in &self.apis {
            let versions: Vec<String> = api.versions.keys().map(ToString::to_string).collect();
            let mut row = vec![
                api_name(*key),
                versions.join(","),
                api.exchanges.to_string(),
                api.complete.to_string(),
                api.no_response.to_string(),
                (api.response_missing + api.request_missing).to_string(),
                api.with_errors.to_string(),
            ];
            row.extend(latency_cells(&api.latency));
            row.push(api.request_bytes.to_string());
            row.push(api.response_bytes.to_string());
            table.row(row);
        }
        if self.apis.len() > 1 {
            let total =
                |f: fn(&ApiStats) -> u64| self.apis.values().map(f).sum::<u64>().to_string();
            let mut row = vec![
                "all".to_owned(),
                String::new(),
                total(|api| api.exchanges),
                total(|api| api.complete),
                total(|api| api.no_response),
                total(|api| api.response_missing + api.request_missing),
                total(|api| api.with_errors),
            ];
            row.extend(latency_cells(&self.all_latency));
            row.push(total(|api| api.request_bytes));
            row.push(total(|api| api.response_bytes));
            table.row(row);
        }
        table.render_into(&mut out);
        let inferred: u64 = self.apis.values().map(|api| api.inferred).sum();
        let lost: u64 = self.apis.values().map(|api| api.lost).sum();
        let undecodable: u64 = self.apis.values().map(|api| api.undecodable).sum();
        if inferred + lost + undecodable > 0 {
            let _ = writeln!(
                out,
                "  ({inferred} inferred, {lost} with lost bytes, {undecodable} undecodable)"
            );
        }

        out.push_str("\nErrors by code\n");
        let mut table = Table::new(&[
            ("code", true),
            ("name", false),
            ("exchanges", true),
            ("apis", false),
        ]);
        for (code, error) in &self.errors {
            let apis: Vec<String> = error
                .apis
                .iter()
                .map(|(key, count)| format!("{} {count}", api_name(*key)))
                .collect();
            table.row(vec![
                code.to_string(),
                error_name(*code),
                error.exchanges.to_string(),
                apis.join(", "),
            ]);
        }
        table.render_into(&mut out);

        out.push_str("\nRecords by topic-partition\n");
        let mut table = Table::new(&[
            ("topic", false),
            ("partition", true),
            ("produce", true),
            ("records", true),
            ("bytes", true),
            ("fetch", true),
            ("records", true),
            ("bytes", true),
        ]);
        let partition_row = |topic: String, partition: String, stats: &PartitionStats| {
            vec![
                topic,
                partition,
                stats.produce_exchanges.to_string(),
                stats.produced_records.to_string(),
                stats.produced_bytes.to_string(),
                stats.fetch_exchanges.to_string(),
                stats.fetched_records.to_string(),
                stats.fetched_bytes.to_string(),
            ]
        };
        for ((topic, partition), stats) in &self.partitions {
            table.row(partition_row(
                topic.to_string(),
                partition.to_string(),
                stats,
            ));
        }
        if self.partitions_overflow != PartitionStats::default() {
            table.row(partition_row(
                "(others)".to_owned(),
                String::new(),
                &self.partitions_overflow,
            ));
        }
        table.render_into(&mut out);
        if self.bad_crc_batches > 0 {
            // Their exchanges are the lines flagged `[bad CRC]`.
            let _ = writeln!(
                out,
                "  record batches with a bad CRC: {}",
                self.bad_crc_batches
            );
        }

        out.push_str("\nConnections\n");
        let mut table = Table::new(&[
            ("#", true),
            ("client", false),
            ("broker", false),
            ("kind", false),
            ("state", false),
            ("exchanges", true),
            ("to broker B", true),
            ("to client B", true),
            ("gap B", true),
            ("lost", true),
            ("client ids", false),
        ]);
        for connection in &report.connections {
            table.row(vec![
                connection.index.to_string(),
                connection.client.to_string(),
                connection.broker.to_string(),
                kind_name(connection.kind).to_owned(),
                state_name(connection.state).to_owned(),
                connection.exchanges.to_string(),
                connection.bytes_to_broker.to_string(),
                connection.bytes_to_client.to_string(),
                connection.gap_bytes.to_string(),
                connection.frames_lost.to_string(),
                connection
                    .client_ids
                    .iter()
                    .map(|id| quote_if_needed(id))
                    .collect::<Vec<_>>()
                    .join(","),
            ]);
        }
        table.render_into(&mut out);
        if report.connections_omitted > 0 {
            let _ = writeln!(out, "  ({} more not listed)", report.connections_omitted);
        }

        out.push_str("\nClient ids\n");
        let mut table = Table::new(&[
            ("client id", false),
            ("exchanges", true),
            ("connections", true),
        ]);
        for (client_id, exchanges) in &self.clients {
            let connections = report
                .connections
                .iter()
                .filter(|connection| connection.client_ids.iter().any(|id| id == client_id))
                .count();
            table.row(vec![
                quote_if_needed(client_id),
                exchanges.to_string(),
                connections.to_string(),
            ]);
        }
        if self.clients_overflow > 0 {
            table.row(vec![
                "(others)".to_owned(),
                self.clients_overflow.to_string(),
                String::new(),
            ]);
        }
        table.render_into(&mut out);

        out.push_str("\nLosses\n");
        let losses = &report.losses;
        let mut table = Table::new(&[("", false), ("", true)]);
        for (what, count) in [
            ("packets truncated", losses.packets_truncated),
            (
                "packets skipped (not TCP or damaged)",
                losses.packets_skipped,
            ),
            ("gap bytes", losses.gap_bytes),
            ("frames lost", losses.frames_lost),
            ("bytes skipped while resynchronising", losses.resync_bytes),
            ("undecodable frames", losses.undecodable_frames),
            ("frames too large to buffer", losses.frames_too_large),
        ] {
            table.row(vec![what.to_owned(), count.to_string()]);
        }
        table.headless().render_into(&mut out);
        out
    }

    /// The report as one JSON object. Latencies are in microseconds (with
    /// fractions), like `latency_us` in `kwire read --json`.
    pub fn to_json(&self, report: &CaptureReport) -> Json {
        let apis: Vec<Json> = self
            .apis
            .iter()
            .map(|(key, api)| {
                let versions: serde_json::Map<String, Json> = api
                    .versions
                    .iter()
                    .map(|(version, count)| (version.to_string(), json!(count)))
                    .collect();
                json!({
                    "api_key": key,
                    "api_name": api_name(*key),
                    "versions": versions,
                    "exchanges": api.exchanges,
                    "complete": api.complete,
                    "no_response": api.no_response,
                    "response_missing": api.response_missing,
                    "request_missing": api.request_missing,
                    "inferred": api.inferred,
                    "lost": api.lost,
                    "undecodable": api.undecodable,
                    "with_errors": api.with_errors,
                    "request_bytes": api.request_bytes,
                    "response_bytes": api.response_bytes,
                    "latency_us": api.latency.to_json(),
                })
            })
            .collect();
        let errors: Vec<Json> = self
            .errors
            .iter()
            .map(|(code, error)| {
                let apis: serde_json::Map<String, Json> = error
                    .apis
                    .iter()
                    .map(|(key, count)| (api_name(*key), json!(count)))
                    .collect();
                json!({
                    "code": code,
                    "name": error_name(*code),
                    "exchanges": error.exchanges,
                    "apis": apis,
                })
            })
            .collect();
        let partition_json = |stats: &PartitionStats| {
            json!({
                "produce_exchanges": stats.produce_exchanges,
                "produced_records": stats.produced_records,
                "produced_bytes": stats.produced_bytes,
                "fetch_exchanges": stats.fetch_exchanges,
                "fetched_records": stats.fetched_records,
                "fetched_bytes": stats.fetched_bytes,
            })
        };
        let partitions: Vec<Json> = self
            .partitions
            .iter()
            .map(|((topic, partition), stats)| {
                let mut object = json!({ "topic": topic.as_str(), "partition": partition });
                if let (Some(object), Json::Object(tally)) =
                    (object.as_object_mut(), partition_json(stats))
                {
                    object.extend(tally);
                }
                object
            })
            .collect();
        let connections: Vec<Json> = report
            .connections
            .iter()
            .map(|connection| {
                json!({
                    "index": connection.index,
                    "client": connection.client.to_string(),
                    "broker": connection.broker.to_string(),
                    "kind": kind_name(connection.kind),
                    "state": state_name(connection.state),
                    "exchanges": connection.exchanges,
                    "bytes_to_broker": connection.bytes_to_broker,
                    "bytes_to_client": connection.bytes_to_client,
                    "client_ids": connection.client_ids,
                    "gap_bytes": connection.gap_bytes,
                    "frames_lost": connection.frames_lost,
                })
            })
            .collect();
        let clients: Vec<Json> = self
            .clients
            .iter()
            .map(|(client_id, exchanges)| json!({ "client_id": client_id, "exchanges": exchanges }))
            .collect();
        let losses = &report.losses;
        json!({
            "packets": report.packets,
            "bytes": report.bytes,
            "link_type": report.link_type.to_string(),
            "read_error": report.read_error,
            "exchanges": self.exchanges,
            "first_ts_ns": self.first_ns,
            "last_ts_ns": self.last_ns,
            "apis": apis,
            "latency_us": self.all_latency.to_json(),
            "errors": errors,
            "partitions": partitions,
            "partitions_overflow": partition_json(&self.partitions_overflow),
            "bad_crc_batches": self.bad_crc_batches,
            "connections": connections,
            "connections_omitted": report.connections_omitted,
            "client_ids": clients,
            "client_ids_overflow": self.clients_overflow,
            "losses": {
                "packets_truncated": losses.packets_truncated,
                "packets_skipped": losses.packets_skipped,
                "gap_bytes": losses.gap_bytes,
                "frames_lost": losses.frames_lost,
                "resync_bytes": losses.resync_bytes,
                "undecodable_frames": losses.undecodable_frames,
                "frames_too_large": losses.frames_too_large,
            },
        })
    }
}

fn latency_cells(histogram: &Histogram) -> Vec<String> {
    if histogram.count() == 0 {
        return vec!["-".to_owned(); 4];
    }
    [0.50, 0.95, 0.99]
        .iter()
        .map(|q| histogram.quantile(*q))
        .chain(std::iter::once(histogram.max()))
        .map(|ns| format_duration(i64::try_from(ns).unwrap_or(i64::MAX)))
        .collect()
}

/// The text as is, or quoted when it is empty or holds blanks, commas,
/// quotes or control characters.
pub fn quote_if_needed(text: &str) -> String {
    let mut out = String::new();
    write_quoted_if_needed(&mut out, text);
    out
}

/// Appends [`quote_if_needed`]'s text to `out`.
pub fn write_quoted_if_needed(out: &mut String, text: &str) {
    // Printable ASCII other than comma and quote, the common case, is
    // checked byte by byte, by table and without a branch per byte:
    // cheaper than char by char.
    const PLAIN: [bool; 256] = {
        let mut plain = [false; 256];
        let mut byte = 0;
        while byte < 256 {
            let b = byte as u8;
            plain[byte] = b.is_ascii_graphic() && b != b',' && b != b'"';
            byte += 1;
        }
        plain
    };
    let all_plain = text
        .bytes()
        .fold(true, |plain, b| plain & PLAIN[usize::from(b)]);
    let needs_quotes = |c: char| c.is_whitespace() || c.is_control() || c == ',' || c == '"';
    if text.is_empty() || !all_plain && text.contains(needs_quotes) {
        let _ = write!(out, "{text:?}");
    } else {
        out.push_str(text);
    }
}

pub fn kind_name(kind: ConnectionKind) -> &'static str {
    match kind {
        ConnectionKind::Kafka => "kafka",
        ConnectionKind::Tls => "tls",
        ConnectionKind::Unknown => "unknown",
    }
}

pub fn state_name(state: ConnectionState) -> &'static str {
    match state {
        ConnectionState::Open => "open",
        ConnectionState::Closed => "closed",
        ConnectionState::Reset => "reset",
    }
}

/// A duration with at most three significant digits and a unit: `850ns`,
/// `12.3us`, `1.2ms`, `17us`, `2.35s`.
pub fn format_duration(ns: i64) -> String {
    let mut out = String::new();
    write_duration(&mut out, ns);
    out
}

/// Appends [`format_duration`]'s text to `out`.
pub fn write_duration(out: &mut String, ns: i64) {
    let magnitude = ns.unsigned_abs();
    if magnitude < 1_000 {
        push_int(out, ns);
        out.push_str("ns");
        return;
    }
    let (scale, unit) = if magnitude < 1_000_000 {
        (1_000, "us")
    } else if magnitude < 1_000_000_000 {
        (1_000_000, "ms")
    } else {
        (1_000_000_000, "s")
    };
    // Two decimals below 9.995 units, one below 99.95, none above; the
    // thresholds in integers are exact (see `write_duration_float`).
    let thousandths = u128::from(magnitude) * 1_000;
    let digits = if thousandths >= 99_950 * u128::from(scale) {
        0
    } else if thousandths >= 9_995 * u128::from(scale) {
        1
    } else {
        2
    };
    if !write_fixed(out, ns, scale, digits) {
        write_duration_float(out, ns, scale, digits);
    }
    out.push_str(unit);
}

/// `ns / scale` with `digits` decimals, rounded, the zeros that end the
/// decimals left out (and the point with them when none is left), in
/// integers: what the float formatting below writes, computed without it (a latency is written
/// for every exchange). A value exactly halfway between two roundings goes
/// the way the float's formatting takes it (see [`float_rounding`]). False
/// for a value too large for the float to be accurate to a unit.
fn write_fixed(out: &mut String, ns: i64, scale: u64, digits: usize) -> bool {
    // Each scale and count of decimals has its own copy, so that every
    // division is by a constant (a multiplication), not a `div`.
    match (scale, digits) {
        (1_000, 0) => write_fixed_in::<1_000, 1>(out, ns),
        (1_000, 1) => write_fixed_in::<100, 10>(out, ns),
        (1_000, 2) => write_fixed_in::<10, 100>(out, ns),
        (1_000_000, 0) => write_fixed_in::<1_000_000, 1>(out, ns),
        (1_000_000, 1) => write_fixed_in::<100_000, 10>(out, ns),
        (1_000_000, 2) => write_fixed_in::<10_000, 100>(out, ns),
        (1_000_000_000, 0) => write_fixed_in::<1_000_000_000, 1>(out, ns),
        (1_000_000_000, 1) => write_fixed_in::<100_000_000, 10>(out, ns),
        (1_000_000_000, 2) => write_fixed_in::<10_000_000, 100>(out, ns),
        _ => false,
    }
}

/// [`write_fixed`] counting in `UNIT`s of nanoseconds, `ONE` of them to
/// the unit written (10 to the number of decimals).
fn write_fixed_in<const UNIT: u64, const ONE: u64>(out: &mut String, ns: i64) -> bool {
    let magnitude = ns.unsigned_abs();
    if magnitude >= 1 << 50 {
        return false;
    }
    let (mut q, r) = (magnitude / UNIT, magnitude % UNIT);
    let up = match (2 * r).cmp(&UNIT) {
        Ordering::Less => false,
        Ordering::Greater => true,
        Ordering::Equal => match float_rounding(magnitude, UNIT * ONE) {
            Ordering::Less => false,
            Ordering::Greater => true,
            // The float is the midpoint itself: formatting rounds it to
            // the even neighbour.
            Ordering::Equal => q % 2 == 1,
        },
    };
    if up {
        q += 1;
    }
    if ns < 0 {
        out.push('-');
    }
    push_uint(out, q / ONE);
    let (mut decimals, mut shown) = (q % ONE, ONE.ilog10() as usize);
    while shown > 0 && decimals % 10 == 0 {
        decimals /= 10;
        shown -= 1;
    }
    if shown > 0 {
        out.push('.');
        push_uint_zero_padded(out, decimals, shown);
    }
    true
}

/// Whether `ns / scale` as a float (the division correctly rounded to an
/// `f64`) is above, below or exactly at the true quotient: for a quotient
/// halfway between two decimal roundings, the way the float's formatting
/// rounds. Exact in integers, for `scale <= ns < 2^50` and `scale < 2^31`:
/// the float is `mantissa * 2^exponent` with the exponent at least -52 (the
/// quotient is at least 1), so both sides fit in 128 bits.
fn float_rounding(ns: u64, scale: u64) -> Ordering {
    let float = ns as f64 / scale as f64;
    let bits = float.to_bits();
    let mantissa = u128::from((bits & ((1 << 52) - 1)) | (1 << 52));
    let exponent = i64::try_from((bits >> 52) & 0x7ff).unwrap_or(0) - 1075;
    let (float_side, exact_side) = if exponent >= 0 {
        (mantissa << exponent.min(64), u128::from(ns))
    } else {
        (mantissa, u128::from(ns) << (-exponent).min(64))
    };
    float_side
        .checked_mul(u128::from(scale))
        .map_or(Ordering::Greater, |float_side| float_side.cmp(&exact_side))
}

/// `ns / scale` formatted as a float with `digits` decimals, the zeros that
/// end them left out (and the point with them). A threshold
/// such as 99.95 units compares the same in integers: `ns / scale` and the
/// threshold round to nearby floats monotonically, and the two can only be
/// equal as floats if equal as numbers, which differ by at least 1/scale.
fn write_duration_float(out: &mut String, ns: i64, scale: u64, digits: usize) {
    let value = ns as f64 / scale as f64;
    let start = out.len();
    let _ = write!(out, "{value:.digits$}");
    if digits > 0 {
        let kept = out[start..]
            .trim_end_matches('0')
            .trim_end_matches('.')
            .len();
        out.truncate(start + kept);
    }
}

// ---------------------------------------------------------------------------
// Histogram

/// Sub-buckets per power of two, as a power of two: 2^6 = 64, so a bucket
/// spans at most 1/64 of its lower bound and its midpoint is within 1/128
/// (0.8%) of any value in it.
const SUB_BITS: u32 = 6;
const SUB: u64 = 1 << SUB_BITS;
/// Values below this get a bucket each (exact).
const EXACT: u64 = 2 * SUB;
/// Up to this many values a histogram also keeps them all (32 KB) and its
/// percentiles are exact.
const EXACT_SAMPLES: usize = 4096;

/// A histogram of non-negative integers (nanoseconds here) in log buckets:
/// values below 128 exactly, above in 64 buckets per power of two. Memory
/// is bounded by the largest value seen (3,776 counters for `u64::MAX`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Histogram {
    /// The values themselves while there are at most `EXACT_SAMPLES`:
    /// small captures get exact percentiles.
    samples: Vec<u64>,
    counts: Vec<u64>,
    count: u64,
    sum: u128,
    min: u64,
    max: u64,
}

impl Histogram {
    pub fn new() -> Histogram {
        Histogram::default()
    }

    pub fn record(&mut self, value: u64) {
        if self.count < EXACT_SAMPLES as u64 {
            self.samples.push(value);
        } else if !self.samples.is_empty() {
            self.samples = Vec::new();
        }
        let index = bucket_index(value);
        if self.counts.len() <= index {
            self.counts.resize(index + 1, 0);
        }
        if let Some(slot) = self.counts.get_mut(index) {
            *slot += 1;
        }
        if self.count == 0 || value < self.min {
            self.min = value;
        }
        self.max = self.max.max(value);
        self.count += 1;
        self.sum += u128::from(value);
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// Exact; 0 when empty.
    pub fn min(&self) -> u64 {
        self.min
    }

    /// Exact; 0 when empty.
    pub fn max(&self) -> u64 {
        self.max
    }

    /// Exact; 0 when empty.
    pub fn mean(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum as f64 / self.count as f64
        }
    }

    /// The nearest-rank quantile (`q` in 0..=1; 0.99 is p99): the value at
    /// rank ceil(q * count) of the sorted values; exact up to
    /// `EXACT_SAMPLES` values, within 0.8% beyond. 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).clamp(1, self.count);
        if rank == self.count {
            return self.max;
        }
        if self.samples.len() as u64 == self.count {
            let mut sorted = self.samples.clone();
            sorted.sort_unstable();
            return usize::try_from(rank - 1)
                .ok()
                .and_then(|index| sorted.get(index).copied())
                .unwrap_or(self.max);
        }
        self.quantile_from_buckets(rank)
    }

    fn quantile_from_buckets(&self, rank: u64) -> u64 {
        let mut seen = 0u64;
        for (index, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                let (low, high) = bucket_bounds(index);
                let middle = low + (high - low) / 2;
                return middle.clamp(self.min, self.max);
            }
        }
        self.max
    }

    /// Counters held: the memory bound in tests.
    pub fn buckets(&self) -> usize {
        self.counts.len()
    }

    /// Values kept for exact percentiles (0 once there are too many).
    pub fn samples(&self) -> usize {
        self.samples.len()
    }

    /// `{count, min, mean, p50, p95, p99, max}` in microseconds, for
    /// nanosecond values.
    fn to_json(&self) -> Json {
        let us = |ns: u64| ns as f64 / 1e3;
        if self.count == 0 {
            return json!({ "count": 0 });
        }
        json!({
            "count": self.count,
            "min": us(self.min),
            "mean": self.mean().round() / 1e3,
            "p50": us(self.quantile(0.50)),
            "p95": us(self.quantile(0.95)),
            "p99": us(self.quantile(0.99)),
            "max": us(self.max),
        })
    }
}

/// The bucket of a value: the value itself below 128; above, 64 buckets for
/// each power of two, indexed by the exponent and the next six bits.
fn bucket_index(value: u64) -> usize {
    let index = if value < EXACT {
        value
    } else {
        let shift = value.ilog2() - SUB_BITS; // at least 1
        let mantissa = value >> shift; // in SUB..2 * SUB
        EXACT + u64::from(shift - 1) * SUB + (mantissa - SUB)
    };
    // At most 128 + 56 * 64 + 63 = 3775.
    usize::try_from(index).unwrap_or(usize::MAX)
}

/// The inclusive range of values a bucket holds.
fn bucket_bounds(index: usize) -> (u64, u64) {
    let index = index as u64;
    if index < EXACT {
        return (index, index);
    }
    let shift = (index - EXACT) / SUB + 1;
    let mantissa = (index - EXACT) % SUB + SUB;
    let low = mantissa << shift;
    let high = low.saturating_add((1u64 << shift) - 1);
    (low, high)
}

// ---------------------------------------------------------------------------
// Text tables

/// A table of text cells, columns sized to their widest cell.
struct Table {
    headers: Vec<&'static str>,
    right: Vec<bool>,
    rows: Vec<Vec<String>>,
    show_headers: bool,
}

impl Table {
    fn new(columns: &[(&'static str, bool)]) -> Table {
        Table {
            headers: columns.iter().map(|(name, _)| *name).collect(),
            right: columns.iter().map(|(_, right)| *right).collect(),
            rows: Vec::new(),
            show_headers: true,
        }
    }

    fn headless(mut self) -> Table {
        self.show_headers = false;
        self
    }

    fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    fn render_into(&self, out: &mut String) {
        if self.rows.is_empty() {
            out.push_str("  (none)\n");
            return;
        }
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let mut line = |cells: &mut dyn Iterator<Item = &str>| {
            let mut text = String::new();
            for ((cell, width), right) in cells.zip(&widths).zip(&self.right) {
                if *right {
                    let _ = write!(text, "  {cell:>width$}");
                } else {
                    let _ = write!(text, "  {cell:<width$}");
                }
            }
            out.push_str(text.trim_end());
            out.push('\n');
        };
        if self.show_headers {
            line(&mut self.headers.iter().copied());
        }
        for row in &self.rows {
            line(&mut row.iter().map(String::as_str));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Exact nearest-rank percentile of a sorted slice.
    fn exact(sorted: &[u64], q: f64) -> u64 {
        let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
        sorted[rank - 1]
    }

    fn assert_close(estimate: u64, exact: u64) {
        let error = (estimate as f64 - exact as f64).abs() / (exact as f64).max(1.0);
        assert!(
            error <= 1.0 / 128.0,
            "estimate {estimate}, exact {exact}, error {error}"
        );
    }

    #[test]
    fn histogram_small_values_are_exact() {
        let mut histogram = Histogram::new();
        for value in 0..100 {
            histogram.record(value);
        }
        assert_eq!(histogram.quantile(0.5), 49);
        assert_eq!(histogram.quantile(0.95), 94);
        assert_eq!(histogram.quantile(0.99), 98);
        assert_eq!(histogram.quantile(1.0), 99);
        assert_eq!(histogram.quantile(0.0), 0);
        assert_eq!(histogram.min(), 0);
        assert_eq!(histogram.max(), 99);
        assert_eq!(histogram.mean(), 49.5);
    }

    #[test]
    fn histogram_percentiles_within_one_percent_of_exact() {
        // A deterministic spread over six decades: 100ns to 100ms.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut values = Vec::new();
        let mut histogram = Histogram::new();
        for _ in 0..200_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let exponent = (state % 6_000) as f64 / 1000.0 + 2.0;
            let value = 10f64.powf(exponent) as u64;
            values.push(value);
            histogram.record(value);
        }
        values.sort_unstable();
        for q in [0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999] {
            assert_close(histogram.quantile(q), exact(&values, q));
        }
        assert_eq!(histogram.max(), *values.last().unwrap());
        assert_eq!(histogram.min(), values[0]);
        assert_eq!(histogram.count(), values.len() as u64);
    }

    #[test]
    fn histogram_known_uniform_data() {
        let mut histogram = Histogram::new();
        for value in 1..=100_000u64 {
            histogram.record(value * 1_000);
        }
        assert_close(histogram.quantile(0.50), 50_000_000);
        assert_close(histogram.quantile(0.95), 95_000_000);
        assert_close(histogram.quantile(0.99), 99_000_000);
        assert_eq!(histogram.max(), 100_000_000);
    }

    #[test]
    fn histogram_is_exact_while_small_then_drops_the_samples() {
        let mut histogram = Histogram::new();
        for value in (1..=4096u64).rev() {
            histogram.record(value * 1_001);
        }
        assert_eq!(histogram.samples(), 4096);
        assert_eq!(histogram.quantile(0.5), 2048 * 1_001);
        assert_eq!(histogram.quantile(0.99), 4056 * 1_001);
        histogram.record(5_000_000);
        assert_eq!(histogram.samples(), 0);
        assert_close(histogram.quantile(0.5), 2049 * 1_001);
        assert_eq!(histogram.quantile(1.0), 5_000_000);
    }

    #[test]
    fn histogram_memory_is_bounded() {
        let mut histogram = Histogram::new();
        for shift in 0..64 {
            histogram.record(1u64 << shift);
            histogram.record((1u64 << shift) | 1);
        }
        histogram.record(u64::MAX);
        assert_eq!(histogram.buckets(), 3_776);
        assert_eq!(histogram.max(), u64::MAX);
        assert_eq!(histogram.quantile(1.0), u64::MAX);
    }

    #[test]
    fn bucket_bounds_cover_every_value_once() {
        let mut next = 0u64;
        for index in 0..3_776 {
            let (low, high) = bucket_bounds(index);
            assert_eq!(low, next, "bucket {index}");
            assert!(high >= low);
            assert_eq!(bucket_index(low), index);
            assert_eq!(bucket_index(high), index);
            next = high.wrapping_add(1);
        }
        assert_eq!(next, 0, "the last bucket ends at u64::MAX");
    }

    fn report() -> CaptureReport {
        use crate::session::{ConnectionSummary, LossCounters};
        CaptureReport {
            packets: 10,
            bytes: 2_000,
            losses: LossCounters {
                packets_truncated: 1,
                gap_bytes: 300,
                frames_lost: 2,
                resync_bytes: 40,
                ..LossCounters::default()
            },
            connections: vec![ConnectionSummary {
                index: 0,
                client: "127.0.0.1:40000".parse().unwrap(),
                broker: "127.0.0.1:9092".parse().unwrap(),
                state: ConnectionState::Closed,
                kind: ConnectionKind::Kafka,
                exchanges: 3,
                bytes_to_broker: 500,
                bytes_to_client: 600,
                client_ids: vec!["kwire-corpus-kcat".to_owned()],
                gap_bytes: 300,
                frames_lost: 2,
            }],
            connections_omitted: 0,
            link_type: crate::capture::LinkType::Ethernet,
            read_error: None,
            first_ts_ns: None,
        }
    }

    #[test]
    fn corpus_exchanges_are_tallied() {
        let exchanges = crate::filter::testing::corpus_exchanges("kcat-mock.frames");
        let mut stats = Stats::new();
        exchanges.iter().for_each(|exchange| stats.add(exchange));
        assert_eq!(stats.exchanges(), exchanges.len() as u64);
        let per_api: u64 = stats.apis.values().map(|api| api.exchanges).sum();
        assert_eq!(per_api, stats.exchanges());
        let produce = stats.api(0).expect("Produce exchanges");
        assert_eq!(
            produce.exchanges,
            exchanges.iter().filter(|e| e.api_key == 0).count() as u64
        );
        let with_latency = exchanges
            .iter()
            .filter(|e| e.latency_ns().is_some())
            .count();
        assert_eq!(stats.all_latency.count(), with_latency as u64);
        // The helper's latencies are 100us..1ms in ten equal steps.
        assert_eq!(stats.all_latency.min(), 100_000);
        assert_eq!(stats.all_latency.max(), 1_000_000);
        let produced: u64 = exchanges
            .iter()
            .filter(|e| e.api_key == 0)
            .map(|e| e.summary().record_count())
            .sum();
        let tallied: u64 = stats.partitions.values().map(|p| p.produced_records).sum();
        assert!(produced > 0);
        assert_eq!(tallied, produced);
        assert_eq!(
            stats.client_counts().collect::<Vec<_>>(),
            vec![("kwire-corpus-kcat", exchanges.len() as u64)]
        );

        let text = stats.render_text(&report());
        for heading in [
            "Requests by API",
            "Errors by code",
            "Records by topic-partition",
            "Connections",
            "Client ids",
            "Losses",
        ] {
            assert!(
                text.contains(&format!("\n{heading}\n")),
                "{heading} in\n{text}"
            );
        }
        assert!(
            text.contains("  gap bytes                             300\n"),
            "{text}"
        );
        assert!(
            text.contains("  bytes skipped while resynchronising    40\n"),
            "{text}"
        );
        let json = stats.to_json(&report());
        assert_eq!(json["exchanges"], exchanges.len() as u64);
        assert_eq!(json["losses"]["frames_lost"], 2);
        assert_eq!(json["apis"][0]["api_name"], "Produce");
        assert_eq!(json["latency_us"]["max"], 1000.0);
    }

    #[test]
    fn empty_stats_render() {
        let text = Stats::new().render_text(&report());
        assert!(
            text.starts_with("10 packets, 2000 bytes (ethernet), 1 connections, 0 exchanges\n"),
            "{text}"
        );
        assert!(text.contains("Requests by API\n  (none)\n"), "{text}");
    }

    #[test]
    fn integer_durations_match_the_float_formatting() {
        let mut samples: Vec<i64> = (0..2_000_000).collect();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            samples.push((x >> (x % 40)) as i64);
        }
        samples.extend([9_995, 99_950, 9_995_000, 99_950_000, 9_994_999, 99_949_999]);
        for ns in samples.iter().flat_map(|ns| [*ns, -*ns]) {
            let magnitude = ns.unsigned_abs();
            for (scale, digits) in [1_000, 1_000_000, 1_000_000_000]
                .into_iter()
                .flat_map(|scale| (0..3).map(move |digits| (scale, digits)))
            {
                if magnitude < scale || magnitude >= 1 << 50 {
                    continue;
                }
                let (mut fixed, mut float) = (String::new(), String::new());
                // Halfway values included: only the float says which way
                // they go, and the integers must agree with it.
                assert!(
                    write_fixed(&mut fixed, ns, scale, digits),
                    "{ns} ns / {scale}, {digits} digits"
                );
                write_duration_float(&mut float, ns, scale, digits);
                assert_eq!(fixed, float, "{ns} ns / {scale}, {digits} digits");
            }
        }
    }

    #[test]
    fn texts_are_quoted_exactly_when_they_need_it() {
        let needs_quotes = |c: char| c.is_whitespace() || c.is_control() || c == ',' || c == '"';
        let mut texts: Vec<String> = vec![String::new(), "bench-client".into()];
        for c in (0..=0x2100u32).filter_map(char::from_u32) {
            texts.extend([
                c.to_string(),
                format!("client-{c}-id"),
                format!("{c}rdkafka"),
            ]);
        }
        for text in &texts {
            let expected = if text.is_empty() || text.contains(needs_quotes) {
                format!("{text:?}")
            } else {
                text.clone()
            };
            assert_eq!(quote_if_needed(text), expected, "{text:?}");
        }
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(format_duration(850), "850ns");
        assert_eq!(format_duration(-12_345), "-12.3us");
        assert_eq!(format_duration(1_005), "1us");
        assert_eq!(format_duration(12_345), "12.3us");
        assert_eq!(format_duration(1_200_000), "1.2ms");
        assert_eq!(format_duration(17_000), "17us");
        assert_eq!(format_duration(999_999), "1000us");
        assert_eq!(format_duration(9_999), "10us");
        assert_eq!(format_duration(123_400_000), "123ms");
        assert_eq!(format_duration(2_345_000_000), "2.35s");
        assert_eq!(format_duration(4_000_000_000_000), "4000s");
        assert_eq!(format_duration(-5_000), "-5us");
    }
}
