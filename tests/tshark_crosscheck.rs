//! `kwire read` against Wireshark's Kafka dissector (tshark), on every
//! corpus capture and every public capture in `../shared/captures` (when
//! present; they are reference material, not shipped).
//!
//! Per connection, the requests kwire shows, in order, must be the request
//! PDUs tshark dissects: the same API key, version and correlation id, and
//! the same set of topic names (tshark's `kafka.topic_name` fields inside
//! the request PDU; kwire's topic names in the request tree). tshark is
//! told which ports are Kafka (`-d tcp.port==P,kafka`) from the brokers of
//! the Kafka connections kwire found; it recognises nothing by content.
//!
//! Where tshark is too old or wrong, or kwire cannot decode what a client
//! sent, the divergence is listed in [`KNOWN`] with the reason. An unlisted
//! divergence fails the test, and so does a listed one that no capture
//! shows any more, when the tshark is the version the list was made with
//! ([`TSHARK_LISTED`]) and the public captures are present.
//!
//! tshark must be installed: the test fails, naming the Debian package,
//! when it is not. The list was made with TShark 4.0.17 (Debian 12,
//! `4.0.17-0+deb12u3`).

mod common;

use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{json_lines, name_of, public_captures, stdout_of};
use serde_json::Value as Json;

/// The tshark release the divergence list was made with, `major.minor`.
const TSHARK_LISTED: &str = "4.0";

/// Who gets a request wrong, and how.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// tshark reads the header right but not the topic names.
    TsharkTopics,
    /// kwire leaves the request body undecoded, so it has no topics.
    KwireTopics,
    /// A raw SASL token (KIP-43: after SaslHandshake v0 the tokens travel
    /// size-prefixed, without a Kafka header): tshark dissects it as a
    /// request whose API key, version and correlation id are token bytes.
    RawSaslToken,
}

struct Known {
    api_key: i16,
    versions: RangeInclusive<i16>,
    kind: Kind,
    reason: &'static str,
}

/// Every divergence between kwire and tshark 4.0.17 on the corpus and the
/// public captures. The reasons quote tshark's own expert info where it has
/// one.
const KNOWN: &[Known] = &[
    Known {
        api_key: 0,
        versions: 9..=10,
        kind: Kind::TsharkTopics,
        reason: "tshark 4.0: \"Unsupported Produce version. Supports v0-8.\"; the flexible \
                 versions (KIP-482) stop its dissection before the topics",
    },
    Known {
        api_key: 1,
        versions: 12..=12,
        kind: Kind::TsharkTopics,
        reason: "tshark 4.0: \"Unsupported Fetch version. Supports v0-11.\"; no topic names read \
                 (from v13 on the request names topics by id, and neither side has names)",
    },
    Known {
        api_key: 2,
        versions: 7..=9,
        kind: Kind::TsharkTopics,
        reason: "tshark 4.0: \"Unsupported Offsets version. Supports v0-5.\"; no topic names read",
    },
    Known {
        api_key: 3,
        versions: 12..=13,
        kind: Kind::TsharkTopics,
        reason: "tshark 4.0: \"Unsupported Metadata version. Supports v0-9.\"; it reads the \
                 topic_id (v10+) as the start of the name and shows `[ Null ]`. (v13, which \
                 librdkafka 2.16 sends, postdates kwire's definitions too: kwire reads it with \
                 the v12 layout, which its request shares)",
    },
    Known {
        api_key: 9,
        versions: 8..=9,
        kind: Kind::TsharkTopics,
        reason: "tshark 4.0: \"Unsupported OffsetFetch version. Supports v0-7.\"; the v8+ \
                 layout (a groups array around the topics, KIP-709) is not read",
    },
    Known {
        api_key: 68,
        versions: 0..=1,
        kind: Kind::TsharkTopics,
        reason: "tshark 4.0: \"Unknown 68 API key\" (ConsumerGroupHeartbeat, KIP-848): the body \
                 is not dissected",
    },
    Known {
        api_key: 17,
        versions: 0..=0,
        kind: Kind::RawSaslToken,
        reason: "tshark 4.0 does not follow SaslHandshake v0: the raw SASL tokens after it are \
                 dissected as Kafka requests",
    },
];

/// One request as each side sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Request {
    api_key: i16,
    api_version: i16,
    correlation_id: i32,
    /// Sorted, without repeats; None where the body was not decoded.
    topics: Option<Vec<String>>,
}

/// What kwire shows on a connection in request order: a request, or a raw
/// SASL token with its handshake's API key and version.
#[derive(Clone, Debug)]
enum Mine {
    Request(Request),
    RawToken { api_key: i16, api_version: i16 },
}

type Connection = (String, String);

#[test]
fn requests_and_topics_agree_with_tshark() {
    let version = tshark_version();
    println!("{version}");
    let mut captures: Vec<PathBuf> = {
        let dir = common::corpus_dir().join("captures");
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
            .expect("corpus/captures")
            .map(|entry| entry.expect("entry").path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "pcap"))
            .collect();
        paths.sort();
        paths
    };
    assert!(!captures.is_empty(), "no corpus captures");
    let public = public_captures();
    match &public {
        Some(paths) => captures.extend(paths.iter().cloned()),
        None => println!("../shared/captures is absent: the corpus alone is checked"),
    }

    let mut used = vec![0usize; KNOWN.len()];
    let mut unlisted = Vec::new();
    let mut requests = 0;
    for capture in &captures {
        let name = name_of(capture);
        let (mine, ports) = kwire_requests(capture);
        let theirs = tshark_requests(capture, &ports);
        let connections: Vec<&Connection> = {
            let mut all: Vec<&Connection> = mine.keys().chain(theirs.keys()).collect();
            all.sort();
            all.dedup();
            all
        };
        for connection in connections {
            let a = mine.get(connection).map_or(&[][..], Vec::as_slice);
            let b = theirs.get(connection).map_or(&[][..], Vec::as_slice);
            let here = format!("{name}: {} -> {}", connection.0, connection.1);
            if a.len() != b.len() {
                unlisted.push(format!(
                    "{here}: kwire shows {} requests, tshark {}:\n  kwire:  {a:?}\n  tshark: {b:?}",
                    a.len(),
                    b.len()
                ));
                continue;
            }
            for (index, (mine, theirs)) in a.iter().zip(b).enumerate() {
                requests += 1;
                let at = format!("{here}: request {index}");
                match classify(mine, theirs) {
                    Ok(None) => {}
                    Ok(Some(entry)) => used[entry] += 1,
                    Err(what) => unlisted.push(format!(
                        "{at}: {what}\n  kwire:  {mine:?}\n  tshark: {theirs:?}"
                    )),
                }
            }
        }
    }
    for (entry, count) in KNOWN.iter().zip(&used) {
        println!(
            "known divergence, {count} requests: api {} v{:?} {:?}: {}",
            entry.api_key, entry.versions, entry.kind, entry.reason
        );
    }
    assert!(
        unlisted.is_empty(),
        "{} divergences from tshark are not in KNOWN:\n{}",
        unlisted.len(),
        unlisted.join("\n")
    );
    let listed_version = version
        .split_whitespace()
        .nth(2)
        .is_some_and(|number| number.starts_with(&format!("{TSHARK_LISTED}.")));
    if listed_version && public.is_some() {
        let stale: Vec<String> = KNOWN
            .iter()
            .zip(&used)
            .filter(|(_, count)| **count == 0)
            .map(|(entry, _)| {
                format!(
                    "api {} v{:?}: {}",
                    entry.api_key, entry.versions, entry.reason
                )
            })
            .collect();
        assert!(
            stale.is_empty(),
            "listed divergences no capture shows any more (remove them):\n{}",
            stale.join("\n")
        );
    }
    println!(
        "{requests} requests in {} captures agree with tshark, {} of them through KNOWN",
        captures.len(),
        used.iter().sum::<usize>()
    );
}

/// Ok(None) when both sides agree, Ok(Some(entry)) for a listed
/// divergence, Err for anything else.
fn classify(mine: &Mine, theirs: &Request) -> Result<Option<usize>, String> {
    let listed = |kind: Kind, api_key: i16, version: i16| {
        KNOWN.iter().position(|entry| {
            entry.kind == kind && entry.api_key == api_key && entry.versions.contains(&version)
        })
    };
    let mine = match mine {
        Mine::RawToken {
            api_key,
            api_version,
        } => {
            return listed(Kind::RawSaslToken, *api_key, *api_version)
                .map(Some)
                .ok_or_else(|| "a raw SASL token".to_owned());
        }
        Mine::Request(request) => request,
    };
    let header = |r: &Request| (r.api_key, r.api_version, r.correlation_id);
    if header(mine) != header(theirs) {
        return Err("the headers differ".to_owned());
    }
    if mine.topics == theirs.topics {
        return Ok(None);
    }
    let kind = if mine.topics.is_none() {
        Kind::KwireTopics
    } else {
        Kind::TsharkTopics
    };
    listed(kind, mine.api_key, mine.api_version)
        .map(Some)
        .ok_or_else(|| "the topic names differ".to_owned())
}

/// `TShark (Wireshark) 4.0.17 (...)`; fails the test when tshark is not
/// installed.
fn tshark_version() -> String {
    let output = Command::new("tshark").arg("--version").output();
    let output = match output {
        Ok(output) if output.status.success() => output,
        Ok(output) => panic!(
            "tshark --version failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ),
        Err(error) => panic!(
            "cannot run tshark ({error}): this test needs it; install it with \
             `sudo apt-get install tshark` (.ci/setup does)"
        ),
    };
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// The requests kwire shows per connection, in request order, and the
/// ports its Kafka brokers listen on.
fn kwire_requests(capture: &Path) -> (BTreeMap<Connection, Vec<Mine>>, Vec<u16>) {
    let path = capture.to_str().expect("utf-8 path");
    let mut objects = json_lines(&stdout_of(&["read", "--json", path]));
    objects.sort_by_key(|o| o["id"].as_u64().expect("id"));
    let mut mine: BTreeMap<Connection, Vec<Mine>> = BTreeMap::new();
    for object in &objects {
        if object["state"] == "request_missing" {
            continue;
        }
        let connection = (
            text(&object["client"]).to_owned(),
            text(&object["broker"]).to_owned(),
        );
        let api_key = object["api_key"].as_i64().expect("api_key") as i16;
        let api_version = object["api_version"].as_i64().expect("api_version") as i16;
        let entry = if object["sasl"]["framing"] == "raw" {
            if object["sasl"]["client"].is_null() {
                // A token the server sent alone: no request.
                continue;
            }
            Mine::RawToken {
                api_key,
                api_version,
            }
        } else {
            Mine::Request(Request {
                api_key,
                api_version,
                correlation_id: object["correlation_id"].as_i64().expect("id") as i32,
                topics: (!object["request"].is_null()).then(|| topics_in(&object["request"])),
            })
        };
        mine.entry(connection).or_default().push(entry);
    }
    let stats: Json =
        serde_json::from_str(&stdout_of(&["read", "--stats", "--json", path])).expect("stats JSON");
    let mut ports: Vec<u16> = stats["connections"]
        .as_array()
        .expect("connections")
        .iter()
        .filter(|c| c["kind"] == "kafka")
        .map(|c| {
            let broker = text(&c["broker"]);
            broker[broker.rfind(':').expect("a port") + 1..]
                .parse()
                .expect("a port")
        })
        .collect();
    ports.sort_unstable();
    ports.dedup();
    (mine, ports)
}

fn text(value: &Json) -> &str {
    value.as_str().expect("a string")
}

/// The topic names in a request tree: the `topic` and `topic_name` fields,
/// the `name` of the entries of an array whose name says topics
/// (`topics`, `topic_data`...), and the strings of such an array
/// (`topic_names`). Topic ids (Fetch v13+) are not names.
fn topics_in(tree: &Json) -> Vec<String> {
    fn walk(value: &Json, parent: Option<&str>, out: &mut Vec<String>) {
        let topical = parent.is_some_and(|name| name.contains("topic"));
        match value {
            Json::Object(fields) => {
                for (key, value) in fields {
                    match value {
                        Json::String(name)
                            if key == "topic"
                                || key == "topic_name"
                                || (key == "name" && topical) =>
                        {
                            out.push(name.clone())
                        }
                        _ => walk(value, Some(key), out),
                    }
                }
            }
            Json::Array(items) => {
                for item in items {
                    match item {
                        Json::String(name) if topical => out.push(name.clone()),
                        _ => walk(item, parent, out),
                    }
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(tree, None, &mut out);
    out.sort();
    out.dedup();
    out
}

/// The request PDUs tshark dissects per connection, in order.
fn tshark_requests(capture: &Path, ports: &[u16]) -> BTreeMap<Connection, Vec<Request>> {
    let mut command = Command::new("tshark");
    command.arg("-r").arg(capture).arg("-n");
    for port in ports {
        command.arg("-d").arg(format!("tcp.port=={port},kafka"));
    }
    // One JSON object per packet; several Kafka PDUs in a packet become an
    // array rather than repeated keys.
    command.args([
        "-Y",
        "kafka",
        "-T",
        "json",
        "--no-duplicate-keys",
        "-J",
        "ip ipv6 tcp kafka",
    ]);
    let output = command.output().expect("run tshark");
    assert!(
        output.status.success(),
        "tshark failed on {}: {}",
        capture.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let packets: Json = if output.stdout.iter().all(u8::is_ascii_whitespace) {
        Json::Array(Vec::new())
    } else {
        serde_json::from_slice(&output.stdout).expect("tshark JSON")
    };
    let mut requests: BTreeMap<Connection, Vec<Request>> = BTreeMap::new();
    for packet in packets.as_array().expect("an array of packets") {
        let layers = &packet["_source"]["layers"];
        let (ip, v6) = match (&layers["ip"], &layers["ipv6"]) {
            (Json::Null, ipv6) => (last(ipv6), true),
            (ip, _) => (last(ip), false),
        };
        let tcp = last(&layers["tcp"]);
        let address = |ip_field: &str, port_field: &str| {
            let address = text(&ip[ip_field]);
            let port = text(&tcp[port_field]);
            if v6 {
                format!("[{address}]:{port}")
            } else {
                format!("{address}:{port}")
            }
        };
        let (source, destination) = if v6 {
            (
                address("ipv6.src", "tcp.srcport"),
                address("ipv6.dst", "tcp.dstport"),
            )
        } else {
            (
                address("ip.src", "tcp.srcport"),
                address("ip.dst", "tcp.dstport"),
            )
        };
        let pdus: Vec<&Json> = match &layers["kafka"] {
            Json::Array(pdus) => pdus.iter().collect(),
            pdu => vec![pdu],
        };
        for pdu in pdus {
            let Some(key) = pdu.get("kafka.request_key") else {
                continue;
            };
            let number = |field: &str| -> i64 {
                pdu.get(field)
                    .and_then(Json::as_str)
                    .and_then(|text| text.parse().ok())
                    .unwrap_or(i64::MIN)
            };
            let mut topics = Vec::new();
            collect(pdu, "kafka.topic_name", &mut topics);
            topics.sort();
            topics.dedup();
            requests
                .entry((source.clone(), destination.clone()))
                .or_default()
                .push(Request {
                    api_key: text(key).parse().expect("an API key"),
                    api_version: number("kafka.request.version") as i16,
                    correlation_id: number("kafka.correlation_id") as i32,
                    topics: Some(topics),
                });
        }
    }
    requests
}

/// A layer, or the innermost of repeated ones (tunnels).
fn last(layer: &Json) -> &Json {
    match layer {
        Json::Array(layers) => layers.last().unwrap_or(&Json::Null),
        layer => layer,
    }
}

/// Every value of `field` anywhere under `value`.
fn collect(value: &Json, field: &str, out: &mut Vec<String>) {
    match value {
        Json::Object(fields) => {
            for (key, value) in fields {
                match (key == field, value) {
                    (true, Json::String(text)) => out.push(text.clone()),
                    (true, Json::Array(items)) => {
                        out.extend(items.iter().filter_map(Json::as_str).map(str::to_owned))
                    }
                    _ => collect(value, field, out),
                }
            }
        }
        Json::Array(items) => items.iter().for_each(|item| collect(item, field, out)),
        _ => {}
    }
}
