//! Writes a synthetic pcap of Kafka traffic for measuring `kwire read`:
//! `cargo run --release --example gen_capture -- OUT.pcap [MB] [LARGE_EVERY]`.
//!
//! Several loopback connections (SYN, data, FIN) carry a mix of exchanges:
//! many small ones (Produce of a few records, Fetch with a few or no
//! records, Heartbeat) and, one in every LARGE_EVERY (default 200), a
//! large one: a Produce request or a Fetch response with 1 MiB of records
//! in 8 partitions, one in four of those compressed with lz4. Large frames
//! dominate the bytes, small ones the exchange count. Frames are built once
//! as templates and only their correlation ids change, so generating a few
//! hundred MB takes seconds. Segments are at most 65483 bytes (loopback's
//! MSS), link type Ethernet, IPv4, no checksums (kwire does not check them).
//!
//! It prints what it wrote: exchanges, record count and capture bytes, to
//! compare with `kwire read --stats`. `KWIRE_GEN_CLASSIC=1` writes Produce
//! v8, Fetch v11 and Heartbeat v3 instead of v9, v12 and v4: the versions
//! tshark 4.0 still decodes.

use std::path::PathBuf;

use bytes::Bytes;
use kwire::capture::{LinkType, PcapWriter, RawPacket};
use kwire::codec::message_from_json;
use kwire::frame;
use kwire::records::{BatchSpec, Compression, RecordSpec};
use kwire::schema;
use kwire::value::{hex, Struct, Value};
use serde_json::json;

const MSS: usize = 65_483;
const CONNECTIONS: usize = 8;

struct Template {
    request: Vec<u8>,
    /// None for a request that gets no response.
    response: Option<Vec<u8>>,
    records: u64,
}

fn main() {
    let mut args = std::env::args().skip(1);
    let out = PathBuf::from(
        args.next()
            .expect("usage: gen_capture OUT.pcap [MB] [LARGE_EVERY]"),
    );
    let megabytes: u64 = args.next().map_or(300, |mb| mb.parse().expect("MB"));
    let large_every: u64 = args.next().map_or(200, |n| n.parse().expect("LARGE_EVERY"));
    let target = megabytes * 1_000_000;

    let small = [
        produce(&[small_batch(5, Compression::None)], 1),
        fetch(&[small_batch(2, Compression::None)], 1),
        fetch(&[], 1),
        heartbeat(),
        produce(&[small_batch(1, Compression::None)], 1),
        fetch(
            &[
                small_batch(1, Compression::None),
                small_batch(3, Compression::None),
            ],
            2,
        ),
    ];
    let large_plain: Vec<Vec<u8>> = (0..8).map(|p| large_batch(p, Compression::None)).collect();
    let large_lz4: Vec<Vec<u8>> = (0..8).map(|p| large_batch(p, Compression::Lz4)).collect();
    let large = [
        produce(&large_plain, 8),
        fetch(&large_plain, 8),
        produce(&large_plain, 8),
        fetch(&large_lz4, 8),
    ];

    let mut writer = PcapWriter::create(&out, LinkType::Ethernet, 0).expect("create output");
    let mut conns: Vec<Conn> = (0..CONNECTIONS).map(Conn::new).collect();
    let mut clock = Clock {
        ts_ns: 1_700_000_000_000_000_000,
        index: 0,
    };
    for conn in &mut conns {
        conn.handshake(&mut writer, &mut clock);
    }
    let (mut exchanges, mut records, mut n) = (0u64, 0u64, 0u64);
    let mut bytes = 24u64;
    while bytes < target {
        let template = if n % large_every == large_every - 1 {
            &large[(n / large_every) as usize % large.len()]
        } else {
            &small[(n as usize * 7) % small.len()]
        };
        // Large exchanges rotate over the connections too.
        let conn = &mut conns[(n + n / large_every) as usize % CONNECTIONS];
        bytes += conn.exchange(template, &mut writer, &mut clock);
        exchanges += 1;
        records += template.records;
        n += 1;
    }
    for conn in &mut conns {
        conn.close(&mut writer, &mut clock);
    }
    writer.finish().expect("finish output");
    let size = std::fs::metadata(&out).map_or(0, |m| m.len());
    println!(
        "{}: {exchanges} exchanges, {records} records, {} packets, {size} bytes",
        out.display(),
        clock.index
    );
}

struct Clock {
    ts_ns: i64,
    index: u64,
}

struct Conn {
    client: ([u8; 4], u16),
    broker: ([u8; 4], u16),
    client_seq: u32,
    broker_seq: u32,
    correlation: i32,
}

impl Conn {
    fn new(index: usize) -> Conn {
        Conn {
            client: ([127, 0, 0, 1], 40_000 + index as u16),
            broker: ([127, 0, 0, 1], 9092),
            client_seq: 1_000 * index as u32,
            broker_seq: 4_000_000_000 - 7 * index as u32,
            correlation: 0,
        }
    }

    fn handshake(&mut self, w: &mut PcapWriter, clock: &mut Clock) {
        self.packet(w, clock, true, SYN, &[]);
        self.client_seq = self.client_seq.wrapping_add(1);
        self.packet(w, clock, false, SYN | ACK, &[]);
        self.broker_seq = self.broker_seq.wrapping_add(1);
        self.packet(w, clock, true, ACK, &[]);
    }

    fn close(&mut self, w: &mut PcapWriter, clock: &mut Clock) {
        self.packet(w, clock, true, FIN | ACK, &[]);
        self.client_seq = self.client_seq.wrapping_add(1);
        self.packet(w, clock, false, FIN | ACK, &[]);
        self.broker_seq = self.broker_seq.wrapping_add(1);
        self.packet(w, clock, true, ACK, &[]);
    }

    /// Writes one exchange; returns the capture bytes it took.
    fn exchange(&mut self, t: &Template, w: &mut PcapWriter, clock: &mut Clock) -> u64 {
        self.correlation = self.correlation.wrapping_add(1);
        let id = self.correlation.to_be_bytes();
        let mut bytes = 0;
        let mut request = t.request.clone();
        request[8..12].copy_from_slice(&id);
        bytes += self.send(w, clock, true, &request);
        if let Some(response) = &t.response {
            let mut response = response.clone();
            response[4..8].copy_from_slice(&id);
            bytes += self.send(w, clock, false, &response);
        }
        bytes
    }

    fn send(
        &mut self,
        w: &mut PcapWriter,
        clock: &mut Clock,
        from_client: bool,
        data: &[u8],
    ) -> u64 {
        let mut bytes = 0;
        for chunk in data.chunks(MSS) {
            bytes += self.packet(w, clock, from_client, ACK | PSH, chunk);
            let seq = if from_client {
                &mut self.client_seq
            } else {
                &mut self.broker_seq
            };
            *seq = seq.wrapping_add(chunk.len() as u32);
        }
        bytes
    }

    fn packet(
        &self,
        w: &mut PcapWriter,
        clock: &mut Clock,
        from_client: bool,
        flags: u8,
        payload: &[u8],
    ) -> u64 {
        let (src, dst, seq, ack) = if from_client {
            (self.client, self.broker, self.client_seq, self.broker_seq)
        } else {
            (self.broker, self.client, self.broker_seq, self.client_seq)
        };
        let mut data = Vec::with_capacity(54 + payload.len());
        data.extend_from_slice(&[0; 12]);
        data.extend_from_slice(&[0x08, 0x00]);
        let total = (20 + 20 + payload.len()) as u16;
        data.extend_from_slice(&[0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 6, 0, 0]);
        data[16..18].copy_from_slice(&total.to_be_bytes());
        data.extend_from_slice(&src.0);
        data.extend_from_slice(&dst.0);
        data.extend_from_slice(&src.1.to_be_bytes());
        data.extend_from_slice(&dst.1.to_be_bytes());
        data.extend_from_slice(&seq.to_be_bytes());
        let ack = if flags & ACK != 0 { ack } else { 0 };
        data.extend_from_slice(&ack.to_be_bytes());
        data.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
        data.extend_from_slice(payload);
        clock.ts_ns += 20_000;
        let packet = RawPacket {
            index: clock.index,
            ts_ns: clock.ts_ns,
            caplen: data.len() as u32,
            origlen: data.len() as u32,
            data: Bytes::from(data),
        };
        clock.index += 1;
        w.write(&packet).expect("write packet");
        16 + packet.data.len() as u64
    }
}

const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const PSH: u8 = 0x08;
const ACK: u8 = 0x10;

fn record(partition: usize, index: usize, value_bytes: usize) -> RecordSpec {
    let value: Vec<u8> = (0..value_bytes)
        .map(|at| b"abcdefghijklmnopqrstuvwxyz0123456789 "[(at * 7 + index) % 37])
        .collect();
    RecordSpec {
        timestamp: Some(1_700_000_000_000 + index as i64),
        key: Some(Bytes::from(
            format!("user-{partition:02}-{index:012}").into_bytes(),
        )),
        value: Some(Bytes::from(value)),
        headers: vec![(
            Bytes::from_static(b"trace-id"),
            Some(Bytes::from(format!("{index:016x}").into_bytes())),
        )],
        ..RecordSpec::default()
    }
}

fn encode(spec: BatchSpec) -> Vec<u8> {
    let mut out = Vec::new();
    spec.encode_into(&mut out).expect("encode batch");
    out
}

fn small_batch(count: usize, compression: Compression) -> Vec<u8> {
    encode(BatchSpec {
        base_offset: Some(1000),
        compression,
        records: (0..count).map(|i| record(0, i, 100)).collect(),
        ..BatchSpec::default()
    })
}

/// 128 KiB of 20-byte keys and 100-byte values.
fn large_batch(partition: usize, compression: Compression) -> Vec<u8> {
    let count = (128 << 10) / 120;
    encode(BatchSpec {
        base_offset: Some((partition * count) as i64),
        compression,
        producer_id: 1000,
        producer_epoch: 0,
        base_sequence: 0,
        records: (0..count).map(|i| record(partition, i, 100)).collect(),
        ..BatchSpec::default()
    })
}

fn header(client_id: &str) -> Struct {
    let mut header = Struct::default();
    header.push("correlation_id", Value::Int(0));
    header.push("client_id", Value::String(client_id.into()));
    header
}

fn count_records(batches: &[Vec<u8>]) -> u64 {
    batches
        .iter()
        .map(|b| u64::from(u32::from_be_bytes([b[57], b[58], b[59], b[60]])))
        .sum()
}

/// A Produce v9 request with one batch per partition over `topics` topics
/// (partitions spread round-robin), and its response.
fn produce(batches: &[Vec<u8>], topics: usize) -> Template {
    let topics = topics.max(1).min(batches.len().max(1));
    let topic_data: Vec<_> = (0..topics)
        .map(|t| {
            let partitions: Vec<_> = batches
                .iter()
                .enumerate()
                .filter(|(i, _)| i % topics == t)
                .map(|(i, raw)| json!({"index": i, "records": hex(raw)}))
                .collect();
            json!({"name": format!("orders-{t}"), "partition_data": partitions})
        })
        .collect();
    let body = json!({"transactional_id": null, "acks": -1, "timeout_ms": 30000, "topic_data": topic_data});
    let responses: Vec<_> = (0..topics)
        .map(|t| {
            let partitions: Vec<_> = (0..batches.len())
                .filter(|i| i % topics == t)
                .map(|i| json!({"index": i, "error_code": 0, "base_offset": 1000, "log_append_time_ms": -1, "log_start_offset": 0}))
                .collect();
            json!({"name": format!("orders-{t}"), "partition_responses": partitions})
        })
        .collect();
    let response = json!({"responses": responses, "throttle_time_ms": 0});
    let api = schema::api(schema::PRODUCE_KEY).expect("Produce");
    let v = versions().0;
    let request = message_from_json(api.request, v, &body).expect("Produce request");
    let response = message_from_json(api.response, v, &response).expect("Produce response");
    Template {
        request: frame::encode_request(schema::PRODUCE_KEY, v, &header("producer-1"), &request)
            .expect("encode"),
        response: Some(
            frame::encode_response(schema::PRODUCE_KEY, v, &header(""), &response).expect("encode"),
        ),
        records: count_records(batches),
    }
}

/// A Fetch v12 request for `topics` topics and its response carrying
/// `batches`, one per partition.
fn fetch(batches: &[Vec<u8>], topics: usize) -> Template {
    let parts = batches.len().max(1);
    let topics = topics.max(1).min(parts);
    let request_topics: Vec<_> = (0..topics)
        .map(|t| {
            let partitions: Vec<_> = (0..parts)
                .filter(|i| i % topics == t)
                .map(|i| json!({"partition": i, "current_leader_epoch": 0, "fetch_offset": 1000, "last_fetched_epoch": -1, "log_start_offset": -1, "partition_max_bytes": 1048576}))
                .collect();
            json!({"topic": format!("orders-{t}"), "partitions": partitions})
        })
        .collect();
    let body = json!({
        "replica_id": -1, "max_wait_ms": 500, "min_bytes": 1, "max_bytes": 52428800,
        "isolation_level": 0, "session_id": 0, "session_epoch": -1,
        "topics": request_topics, "forgotten_topics_data": [], "rack_id": "",
    });
    let responses: Vec<_> = (0..topics)
        .map(|t| {
            let partitions: Vec<_> = (0..parts)
                .filter(|i| i % topics == t)
                .map(|i| {
                    let records = batches.get(i).map_or(String::new(), |raw| hex(raw));
                    json!({
                        "partition_index": i, "error_code": 0, "high_watermark": 1_000_000,
                        "last_stable_offset": 1_000_000, "log_start_offset": 0,
                        "aborted_transactions": [], "preferred_read_replica": -1,
                        "records": records,
                    })
                })
                .collect();
            json!({"topic": format!("orders-{t}"), "partitions": partitions})
        })
        .collect();
    let response =
        json!({"throttle_time_ms": 0, "error_code": 0, "session_id": 0, "responses": responses});
    let api = schema::api(schema::FETCH_KEY).expect("Fetch");
    let v = versions().1;
    let request = message_from_json(api.request, v, &body).expect("Fetch request");
    let response = message_from_json(api.response, v, &response).expect("Fetch response");
    Template {
        request: frame::encode_request(schema::FETCH_KEY, v, &header("consumer-1"), &request)
            .expect("encode"),
        response: Some(
            frame::encode_response(schema::FETCH_KEY, v, &header(""), &response).expect("encode"),
        ),
        records: count_records(batches),
    }
}

/// Produce, Fetch and Heartbeat versions: the flexible ones of current
/// clients, or with `KWIRE_GEN_CLASSIC=1` the last before them, which
/// tshark 4.0's Kafka dissector still decodes (for comparisons).
fn versions() -> (i16, i16, i16) {
    if std::env::var_os("KWIRE_GEN_CLASSIC").is_some() {
        (8, 11, 3)
    } else {
        (9, 12, 4)
    }
}

fn heartbeat() -> Template {
    let api = schema::api(12).expect("Heartbeat");
    let body = json!({"group_id": "group-1", "generation_id": 7, "member_id": "consumer-1-0d5c", "group_instance_id": null});
    let v = versions().2;
    let request = message_from_json(api.request, v, &body).expect("Heartbeat request");
    let response = message_from_json(
        api.response,
        4,
        &json!({"throttle_time_ms": 0, "error_code": 0}),
    )
    .expect("Heartbeat response");
    Template {
        request: frame::encode_request(12, v, &header("consumer-1"), &request).expect("encode"),
        response: Some(frame::encode_response(12, v, &header(""), &response).expect("encode")),
        records: 0,
    }
}
