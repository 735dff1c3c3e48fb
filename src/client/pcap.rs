//! A [`Tap`] that writes a client's traffic as a pcap file of synthetic
//! Ethernet/IPv4-or-IPv6/TCP packets, for `kwire conform --record`.
//!
//! The kernel's real packets are not visible to an unprivileged process, so
//! each connection is replayed as TCP would have carried it: a three-way
//! handshake, data segments whose sequence and acknowledgement numbers
//! advance by the bytes sent (RFC 9293 section 3.4), and a FIN exchange when
//! it closes. Segments carry at most [`MAX_SEGMENT`] bytes so that every IP
//! packet stays under 64 KiB. `kwire read`, tshark and Wireshark reassemble
//! the streams from these numbers.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use etherparse::PacketBuilder;

use super::{Flow, Side, Tap};
use crate::capture::{CaptureError, LinkType, PcapWriter, RawPacket};

/// Payload bytes per synthetic segment.
pub const MAX_SEGMENT: usize = 32 * 1024;

/// The initial sequence numbers of every synthetic connection. Any value
/// works; fixed ones make recordings easier to compare.
const CLIENT_ISN: u32 = 1_000;
const SERVER_ISN: u32 = 5_000;

const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const SERVER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
const WINDOW: u16 = 65_535;

/// The next sequence number each side will use.
#[derive(Clone, Copy, Debug)]
struct Sequence {
    client: u32,
    server: u32,
}

struct State {
    writer: Option<PcapWriter>,
    flows: HashMap<Flow, Sequence>,
    packets: u64,
    /// The first write error; later packets are dropped.
    error: Option<String>,
}

/// Records traffic into a pcap file. Errors are kept and reported by
/// [`PcapTap::finish`], so that a full disk does not abort a run midway.
pub struct PcapTap {
    state: Mutex<State>,
}

#[derive(Clone, Copy)]
struct Flags {
    syn: bool,
    ack: bool,
    fin: bool,
    psh: bool,
}

impl PcapTap {
    pub fn create(path: &Path) -> Result<PcapTap, CaptureError> {
        let writer = PcapWriter::create(path, LinkType::Ethernet, 0)?;
        Ok(PcapTap {
            state: Mutex::new(State {
                writer: Some(writer),
                flows: HashMap::new(),
                packets: 0,
                error: None,
            }),
        })
    }

    /// Flushes the file. Returns how many packets were written, or the first
    /// error met while writing.
    pub fn finish(&self) -> Result<u64, String> {
        let mut state = self.lock();
        if let Some(error) = state.error.take() {
            return Err(error);
        }
        let packets = state.packets;
        match state.writer.take() {
            Some(writer) => writer.finish().map_err(|error| error.to_string())?,
            None => return Err("the recording was already finished".to_owned()),
        }
        Ok(packets)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent enough state for
        // a recording: keep going.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl State {
    fn emit(&mut self, flow: Flow, from: Side, seq: u32, ack: u32, flags: Flags, payload: &[u8]) {
        if self.error.is_some() || self.writer.is_none() {
            return;
        }
        let (src, dst, src_mac, dst_mac) = match from {
            Side::Client => (flow.client, flow.server, CLIENT_MAC, SERVER_MAC),
            Side::Server => (flow.server, flow.client, SERVER_MAC, CLIENT_MAC),
        };
        let ethernet = PacketBuilder::ethernet2(src_mac, dst_mac);
        let ip = match (src.ip(), dst.ip()) {
            (std::net::IpAddr::V4(s), std::net::IpAddr::V4(d)) => {
                ethernet.ipv4(s.octets(), d.octets(), 64)
            }
            (s, d) => ethernet.ipv6(to_v6(s), to_v6(d), 64),
        };
        let mut tcp = ip.tcp(src.port(), dst.port(), seq, WINDOW);
        if flags.syn {
            tcp = tcp.syn();
        }
        if flags.ack {
            tcp = tcp.ack(ack);
        }
        if flags.fin {
            tcp = tcp.fin();
        }
        if flags.psh {
            tcp = tcp.psh();
        }
        let mut data = Vec::with_capacity(tcp.size(payload.len()));
        if let Err(error) = tcp.write(&mut data, payload) {
            self.error = Some(format!("cannot build a packet: {error}"));
            return;
        }
        let ts_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| {
                i64::try_from(elapsed.as_nanos()).unwrap_or(i64::MAX)
            });
        let length = u32::try_from(data.len()).unwrap_or(u32::MAX);
        let packet = RawPacket {
            index: self.packets,
            ts_ns,
            caplen: length,
            origlen: length,
            data: Bytes::from(data),
        };
        if let Some(writer) = self.writer.as_mut() {
            match writer.write(&packet) {
                Ok(()) => self.packets += 1,
                Err(error) => self.error = Some(error.to_string()),
            }
        }
    }
}

fn to_v6(ip: std::net::IpAddr) -> [u8; 16] {
    match ip {
        std::net::IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        std::net::IpAddr::V6(v6) => v6.octets(),
    }
}

const SYN: Flags = Flags {
    syn: true,
    ack: false,
    fin: false,
    psh: false,
};
const SYN_ACK: Flags = Flags {
    syn: true,
    ack: true,
    fin: false,
    psh: false,
};
const ACK: Flags = Flags {
    syn: false,
    ack: true,
    fin: false,
    psh: false,
};
const PSH_ACK: Flags = Flags {
    syn: false,
    ack: true,
    fin: false,
    psh: true,
};
const FIN_ACK: Flags = Flags {
    syn: false,
    ack: true,
    fin: true,
    psh: false,
};

impl Tap for PcapTap {
    fn opened(&self, flow: Flow) {
        let mut state = self.lock();
        state.emit(flow, Side::Client, CLIENT_ISN, 0, SYN, &[]);
        state.emit(flow, Side::Server, SERVER_ISN, CLIENT_ISN + 1, SYN_ACK, &[]);
        state.emit(flow, Side::Client, CLIENT_ISN + 1, SERVER_ISN + 1, ACK, &[]);
        state.flows.insert(
            flow,
            Sequence {
                client: CLIENT_ISN + 1,
                server: SERVER_ISN + 1,
            },
        );
    }

    fn data(&self, flow: Flow, from: Side, data: &[u8]) {
        let mut state = self.lock();
        let Some(mut sequence) = state.flows.get(&flow).copied() else {
            return;
        };
        for segment in data.chunks(MAX_SEGMENT) {
            // chunks() yields at most MAX_SEGMENT bytes, which fits in u32.
            let advance = u32::try_from(segment.len()).unwrap_or(u32::MAX);
            match from {
                Side::Client => {
                    state.emit(
                        flow,
                        from,
                        sequence.client,
                        sequence.server,
                        PSH_ACK,
                        segment,
                    );
                    sequence.client = sequence.client.wrapping_add(advance);
                }
                Side::Server => {
                    state.emit(
                        flow,
                        from,
                        sequence.server,
                        sequence.client,
                        PSH_ACK,
                        segment,
                    );
                    sequence.server = sequence.server.wrapping_add(advance);
                }
            }
        }
        state.flows.insert(flow, sequence);
    }

    fn closed(&self, flow: Flow, by: Side) {
        let mut state = self.lock();
        let Some(sequence) = state.flows.remove(&flow) else {
            return;
        };
        let (first, first_seq, second, second_seq) = match by {
            Side::Client => (Side::Client, sequence.client, Side::Server, sequence.server),
            Side::Server => (Side::Server, sequence.server, Side::Client, sequence.client),
        };
        // FIN consumes one sequence number (RFC 9293 section 3.4).
        state.emit(flow, first, first_seq, second_seq, FIN_ACK, &[]);
        state.emit(
            flow,
            second,
            second_seq,
            first_seq.wrapping_add(1),
            FIN_ACK,
            &[],
        );
        state.emit(
            flow,
            first,
            first_seq.wrapping_add(1),
            second_seq.wrapping_add(1),
            ACK,
            &[],
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::{parse_tcp, CaptureReader};

    #[test]
    fn recorded_segments_have_consecutive_sequence_numbers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("run.pcap");
        let tap = PcapTap::create(&path).expect("create");
        let flow = Flow {
            client: "127.0.0.1:40000".parse().expect("addr"),
            server: "127.0.0.1:9092".parse().expect("addr"),
        };
        tap.opened(flow);
        tap.data(flow, Side::Client, &[1; 10]);
        tap.data(flow, Side::Server, &vec![2; MAX_SEGMENT + 5]);
        tap.data(flow, Side::Client, &[3; 4]);
        tap.closed(flow, Side::Server);
        assert_eq!(tap.finish(), Ok(10));

        let mut reader = CaptureReader::open(&path).expect("open");
        let link = reader.link_type();
        let mut segments = Vec::new();
        while let Some(packet) = reader.next_packet() {
            segments.push(parse_tcp(link, &packet.expect("packet")).expect("tcp"));
        }
        let data: Vec<(u16, u32, usize)> = segments
            .iter()
            .filter(|segment| !segment.payload.is_empty())
            .map(|segment| (segment.src.port(), segment.seq, segment.payload.len()))
            .collect();
        let server_start = SERVER_ISN + 1;
        assert_eq!(
            data,
            vec![
                (40000, CLIENT_ISN + 1, 10),
                (9092, server_start, MAX_SEGMENT),
                (9092, server_start + MAX_SEGMENT as u32, 5),
                (40000, CLIENT_ISN + 11, 4),
            ]
        );
        assert!(segments[0].syn && segments[1].syn);
        let fins: Vec<u16> = segments
            .iter()
            .filter(|segment| segment.fin)
            .map(|segment| segment.src.port())
            .collect();
        assert_eq!(fins, vec![9092, 40000]);
    }
}
