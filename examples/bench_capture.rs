//! Writes a large synthetic capture of Kafka traffic for
//! `benches/read_vs_tshark.sh`:
//! `cargo run --release --example bench_capture -- OUT.pcap MB [LARGE_EVERY]`.
//!
//! Sixteen loopback connections to a broker on port 9092 carry, round
//! robin, many small exchanges (Produce of 5 records, Fetch answering 10
//! records or none, Metadata, ListOffsets, OffsetCommit, Heartbeat) and,
//! one in every LARGE_EVERY (default 1000, about half the bytes), a large
//! one: a Produce request or a Fetch response with 1 MiB of records in 8
//! partitions, one in four of them lz4-compressed. Every frame is encoded
//! with kwire's encoder (`frame::encode_request`/`encode_response`,
//! `records::BatchSpec`), once, as a template whose correlation id is then
//! patched.
//!
//! The versions are ones tshark 4.0 dissects completely (Produce v8, Fetch
//! v11, Metadata v8, ListOffsets v5, OffsetCommit v7, Heartbeat v3): newer,
//! flexible versions would stop its dissection early and flatter it.
//! Packets are written by `client::pcap::PcapTap`, which replays each
//! connection as TCP would carry it (handshake, 32 KiB segments, FIN).
//!
//! With `ONLY=N` in the environment, every small exchange is the Nth of
//! the list in `main` (0 Produce, 1 Fetch with records, 2 Fetch without,
//! 3 Metadata, 5 ListOffsets, 7 OffsetCommit, 8 Heartbeat): a capture of
//! one API, for `benches/instructions.sh`.

use std::net::SocketAddr;
use std::path::PathBuf;

use bytes::Bytes;
use kwire::client::pcap::PcapTap;
use kwire::client::{Flow, Side, Tap};
use kwire::codec::message_from_json;
use kwire::frame;
use kwire::records::{BatchSpec, Compression, RecordSpec};
use kwire::schema;
use kwire::value::{hex, Struct, Value};
use serde_json::{json, Value as Json};

const CONNECTIONS: u16 = 16;
const TOPICS: usize = 4;

/// One exchange, encoded with correlation id 0.
struct Template {
    request: Vec<u8>,
    response: Vec<u8>,
}

fn main() {
    let mut args = std::env::args().skip(1);
    let usage = "usage: bench_capture OUT.pcap MB [LARGE_EVERY]";
    let out = PathBuf::from(args.next().expect(usage));
    let megabytes: u64 = args.next().expect(usage).parse().expect("MB");
    let large_every: u64 = args
        .next()
        .map_or(1000, |n| n.parse().expect("LARGE_EVERY"));
    let target = megabytes * 1_000_000;
    let only: Option<usize> = std::env::var("ONLY")
        .ok()
        .map(|n| n.parse().expect("ONLY: the index of a small exchange"));

    let small = [
        produce(&[batch(0, 5, Compression::None)]),
        fetch(&[batch(0, 10, Compression::None)]),
        fetch(&[]),
        metadata(),
        fetch(&[batch(1, 10, Compression::None)]),
        list_offsets(),
        produce(&[batch(2, 5, Compression::None)]),
        offset_commit(),
        heartbeat(),
        fetch(&[]),
    ];
    let large_batches = |compression| -> Vec<Vec<u8>> {
        (0..8)
            .map(|partition| batch(partition, (1 << 20) / 8 / 140, compression))
            .collect()
    };
    let large = [
        produce(&large_batches(Compression::None)),
        fetch(&large_batches(Compression::None)),
        produce(&large_batches(Compression::None)),
        fetch(&large_batches(Compression::Lz4)),
    ];

    let tap = PcapTap::create(&out).expect("create the capture");
    let broker: SocketAddr = "127.0.0.1:9092".parse().expect("address");
    let flows: Vec<Flow> = (0..CONNECTIONS)
        .map(|index| Flow {
            client: SocketAddr::from(([127, 0, 0, 1], 40_000 + index)),
            server: broker,
        })
        .collect();
    flows.iter().for_each(|flow| tap.opened(*flow));
    let mut correlation = vec![0i32; flows.len()];
    let (mut written, mut exchanges) = (0u64, 0u64);
    while written < target {
        let template = if exchanges % large_every == large_every - 1 {
            &large[(exchanges / large_every) as usize % large.len()]
        } else {
            &small[only.unwrap_or(exchanges as usize) % small.len()]
        };
        let connection = exchanges as usize % flows.len();
        correlation[connection] += 1;
        let id = correlation[connection].to_be_bytes();
        let mut request = template.request.clone();
        request[8..12].copy_from_slice(&id);
        let mut response = template.response.clone();
        response[4..8].copy_from_slice(&id);
        tap.data(flows[connection], Side::Client, &request);
        tap.data(flows[connection], Side::Server, &response);
        // Frames, plus about 70 bytes of headers per 32 KiB segment.
        let frames = (request.len() + response.len()) as u64;
        written += frames + 70 * (2 + frames / 32_768);
        exchanges += 1;
    }
    flows
        .iter()
        .for_each(|flow| tap.closed(*flow, Side::Client));
    let packets = tap.finish().expect("write the capture");
    let size = std::fs::metadata(&out).map_or(0, |m| m.len());
    println!(
        "{}: {exchanges} exchanges, {packets} packets, {size} bytes",
        out.display()
    );
}

fn record(partition: usize, index: usize) -> RecordSpec {
    let value: Vec<u8> = (0..100)
        .map(|at| b"abcdefghijklmnopqrstuvwxyz0123456789 "[(at * 7 + index) % 37])
        .collect();
    RecordSpec {
        timestamp: Some(1_700_000_000_000 + index as i64),
        key: Some(Bytes::from(
            format!("user-{partition:02}-{index:010}").into_bytes(),
        )),
        value: Some(Bytes::from(value)),
        headers: vec![(
            Bytes::from_static(b"trace-id"),
            Some(Bytes::from(format!("{index:016x}").into_bytes())),
        )],
        ..RecordSpec::default()
    }
}

/// A record batch (magic 2) of `count` records for `partition`.
fn batch(partition: usize, count: usize, compression: Compression) -> Vec<u8> {
    let spec = BatchSpec {
        base_offset: Some((partition * 1_000_000) as i64),
        compression,
        producer_id: 1000,
        producer_epoch: 0,
        base_sequence: 0,
        records: (0..count).map(|index| record(partition, index)).collect(),
        ..BatchSpec::default()
    };
    let mut out = Vec::new();
    spec.encode_into(&mut out).expect("encode a batch");
    out
}

fn header(client_id: &str) -> Struct {
    let mut header = Struct::default();
    header.push("correlation_id", Value::Int(0));
    header.push("client_id", Value::String(client_id.into()));
    header
}

fn encode(key: i16, version: i16, request: Json, response: Json) -> Template {
    let api = schema::api(key).expect("a known API");
    let request = message_from_json(api.request, version, &request).expect("request JSON");
    let response = message_from_json(api.response, version, &response).expect("response JSON");
    Template {
        request: frame::encode_request(key, version, &header("bench-client"), &request)
            .expect("encode the request"),
        response: frame::encode_response(key, version, &header(""), &response)
            .expect("encode the response"),
    }
}

fn topic(partition: usize) -> String {
    format!("orders-{}", partition % TOPICS)
}

/// Produce v8: one batch per partition, the partitions spread over the
/// topics.
fn produce(batches: &[Vec<u8>]) -> Template {
    let topic_data: Vec<Json> = (0..TOPICS)
        .filter(|t| (0..batches.len()).any(|p| p % TOPICS == *t))
        .map(|t| {
            let partitions: Vec<Json> = batches
                .iter()
                .enumerate()
                .filter(|(p, _)| p % TOPICS == t)
                .map(|(p, raw)| json!({"index": p, "records": hex(raw)}))
                .collect();
            json!({"name": topic(t), "partition_data": partitions})
        })
        .collect();
    let responses: Vec<Json> = topic_data
        .iter()
        .map(|t| {
            let partitions: Vec<Json> = t["partition_data"]
                .as_array()
                .expect("partitions")
                .iter()
                .map(|p| {
                    json!({"index": p["index"], "error_code": 0, "base_offset": 1000,
                                "log_append_time_ms": -1, "log_start_offset": 0})
                })
                .collect();
            json!({"name": t["name"], "partition_responses": partitions})
        })
        .collect();
    encode(
        schema::PRODUCE_KEY,
        8,
        json!({"transactional_id": null, "acks": -1, "timeout_ms": 30000,
               "topic_data": topic_data}),
        json!({"responses": responses, "throttle_time_ms": 0}),
    )
}

/// Fetch v11 for partitions 0..8 of the topics; the response carries
/// `batches` (partition p gets batch p), the other partitions none.
fn fetch(batches: &[Vec<u8>]) -> Template {
    let partitions = batches.len().max(1);
    let request_topics: Vec<Json> = (0..TOPICS.min(partitions))
        .map(|t| {
            let list: Vec<Json> = (0..partitions)
                .filter(|p| p % TOPICS == t)
                .map(|p| {
                    json!({"partition": p, "current_leader_epoch": 0, "fetch_offset": 1000,
                                "log_start_offset": -1, "partition_max_bytes": 1_048_576})
                })
                .collect();
            json!({"topic": topic(t), "partitions": list})
        })
        .collect();
    let responses: Vec<Json> = (0..TOPICS.min(partitions))
        .map(|t| {
            let list: Vec<Json> = (0..partitions)
                .filter(|p| p % TOPICS == t)
                .map(|p| {
                    json!({"partition_index": p, "error_code": 0, "high_watermark": 1_000_000,
                           "last_stable_offset": 1_000_000, "log_start_offset": 0,
                           "aborted_transactions": [], "preferred_read_replica": -1,
                           "records": batches.get(p).map_or(String::new(), |raw| hex(raw))})
                })
                .collect();
            json!({"topic": topic(t), "partitions": list})
        })
        .collect();
    encode(
        schema::FETCH_KEY,
        11,
        json!({"replica_id": -1, "max_wait_ms": 500, "min_bytes": 1, "max_bytes": 52_428_800,
               "isolation_level": 0, "session_id": 0, "session_epoch": -1,
               "topics": request_topics, "forgotten_topics_data": [], "rack_id": ""}),
        json!({"throttle_time_ms": 0, "error_code": 0, "session_id": 0,
               "responses": responses}),
    )
}

fn metadata() -> Template {
    let topics: Vec<Json> = (0..TOPICS).map(|t| json!({"name": topic(t)})).collect();
    let described: Vec<Json> = (0..TOPICS)
        .map(|t| {
            let partitions: Vec<Json> = (0..8)
                .map(|p| {
                    json!({"error_code": 0, "partition_index": p, "leader_id": 1,
                                "leader_epoch": 0, "replica_nodes": [1], "isr_nodes": [1],
                                "offline_replicas": []})
                })
                .collect();
            json!({"error_code": 0, "name": topic(t), "is_internal": false,
                   "partitions": partitions, "topic_authorized_operations": -2147483648i64})
        })
        .collect();
    encode(
        3,
        8,
        json!({"topics": topics, "allow_auto_topic_creation": false,
               "include_cluster_authorized_operations": false,
               "include_topic_authorized_operations": false}),
        json!({"throttle_time_ms": 0,
               "brokers": [{"node_id": 1, "host": "127.0.0.1", "port": 9092, "rack": null}],
               "cluster_id": "bench-cluster", "controller_id": 1, "topics": described,
               "cluster_authorized_operations": -2147483648i64}),
    )
}

fn list_offsets() -> Template {
    encode(
        2,
        5,
        json!({"replica_id": -1, "isolation_level": 0, "topics": [{"name": topic(0),
               "partitions": [{"partition_index": 0, "current_leader_epoch": 0,
                               "timestamp": -1}]}]}),
        json!({"throttle_time_ms": 0, "topics": [{"name": topic(0),
               "partitions": [{"partition_index": 0, "error_code": 0, "timestamp": -1,
                               "offset": 1_000_000, "leader_epoch": 0}]}]}),
    )
}

fn offset_commit() -> Template {
    encode(
        8,
        7,
        json!({"group_id": "bench-group", "generation_id_or_member_epoch": 3,
               "member_id": "bench-member-1", "group_instance_id": null,
               "topics": [{"name": topic(1), "partitions": [{"partition_index": 1,
                           "committed_offset": 1000, "committed_leader_epoch": 0,
                           "committed_metadata": ""}]}]}),
        json!({"throttle_time_ms": 0, "topics": [{"name": topic(1),
               "partitions": [{"partition_index": 1, "error_code": 0}]}]}),
    )
}

fn heartbeat() -> Template {
    encode(
        12,
        3,
        json!({"group_id": "bench-group", "generation_id": 3, "member_id": "bench-member-1",
               "group_instance_id": null}),
        json!({"throttle_time_ms": 0, "error_code": 0}),
    )
}
