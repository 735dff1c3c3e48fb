//! Capture tests: small capture files built here for each link type and
//! file format, edge cases of the file reader, every real capture we have
//! run through the reader, the parser and the reassembler, and the direct
//! savefile reader checked against libpcap on real, truncated and
//! rewritten captures.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use etherparse::PacketBuilder;

use super::*;
use crate::reassembly::{EventKind, Reassembler, ReassemblyLimits};

const PAYLOAD: &[u8] = b"\x00\x00\x00\x0aKAFKA-ISH!";

fn packet(index: u64, data: Vec<u8>) -> RawPacket {
    let len = u32::try_from(data.len()).unwrap();
    RawPacket {
        index,
        ts_ns: 1_700_000_000_123_456_789,
        caplen: len,
        origlen: len,
        data: Bytes::from(data),
    }
}

/// IPv4 + TCP from 10.0.0.1:40000 to 10.0.0.2:9092, seq 1000, ack 7.
fn ipv4_tcp(payload: &[u8]) -> Vec<u8> {
    let builder = PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .tcp(40000, 9092, 1000, 65535)
        .ack(7)
        .psh();
    let mut out = Vec::new();
    builder.write(&mut out, payload).unwrap();
    out
}

/// IPv6 + TCP from [2001:db8::1]:40000 to [2001:db8::2]:9092, seq 1000.
fn ipv6_tcp(payload: &[u8]) -> Vec<u8> {
    let mut src = [0u8; 16];
    src[..2].copy_from_slice(&[0x20, 0x01]);
    let mut dst = src;
    src[15] = 1;
    dst[15] = 2;
    let builder = PacketBuilder::ipv6(src, dst, 64)
        .tcp(40000, 9092, 1000, 65535)
        .ack(7);
    let mut out = Vec::new();
    builder.write(&mut out, payload).unwrap();
    out
}

fn ethernet(ether_type: u16, body: &[u8]) -> Vec<u8> {
    let mut out = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];
    out.extend_from_slice(&ether_type.to_be_bytes());
    out.extend_from_slice(body);
    out
}

fn check_v4_segment(seg: &TcpSegment) {
    assert_eq!(seg.src, "10.0.0.1:40000".parse::<SocketAddr>().unwrap());
    assert_eq!(seg.dst, "10.0.0.2:9092".parse::<SocketAddr>().unwrap());
    assert_eq!(seg.seq, 1000);
    assert_eq!(seg.ack, Some(7));
    assert!(!seg.syn && !seg.fin && !seg.rst && !seg.snapped);
    assert_eq!(&seg.payload[..], PAYLOAD);
    assert_eq!(seg.wire_len, 14);
}

fn check_v6_segment(seg: &TcpSegment) {
    assert_eq!(seg.src, "[2001::1]:40000".parse::<SocketAddr>().unwrap());
    assert_eq!(seg.dst, "[2001::2]:9092".parse::<SocketAddr>().unwrap());
    assert_eq!(&seg.payload[..], PAYLOAD);
}

fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// Writes `frames` with `PcapWriter` and reads them back.
fn round_trip(link: LinkType, frames: Vec<Vec<u8>>) -> Vec<RawPacket> {
    let dir = temp_dir();
    let path = dir.path().join("t.pcap");
    let mut writer = PcapWriter::create(&path, link, 0).unwrap();
    for (i, frame) in frames.into_iter().enumerate() {
        writer.write(&packet(i as u64, frame)).unwrap();
    }
    writer.finish().unwrap();
    let mut reader = CaptureReader::open(&path).unwrap();
    assert_eq!(reader.link_type(), link);
    let packets: Vec<RawPacket> = reader.by_ref().map(Result::unwrap).collect();
    assert!(reader.next_packet().is_none());
    packets
}

#[test]
fn test_link_type_numbers_round_trip() {
    for n in [0, 1, 12, 14, 101, 108, 113, 228, 229, 276, 147] {
        let link = LinkType::from_number(n);
        assert_eq!(LinkType::from_number(link.linktype_number()), link);
    }
    assert_eq!(LinkType::from_number(12), LinkType::RawIp);
    assert_eq!(LinkType::from_number(147), LinkType::Other(147));
    assert_eq!(LinkType::Other(147).to_string(), "link type 147");
}

#[test]
fn test_ethernet_with_vlan_and_qinq() {
    let ip = ipv4_tcp(PAYLOAD);
    let mut single = vec![0x00, 0x05, 0x08, 0x00]; // VLAN 5, then IPv4
    single.extend_from_slice(&ip);
    let mut double = vec![0x00, 0x64, 0x81, 0x00, 0x00, 0x05, 0x08, 0x00];
    double.extend_from_slice(&ip);
    let frames = vec![
        ethernet(0x0800, &ip),
        ethernet(0x8100, &single),
        ethernet(0x88a8, &double),
    ];
    let packets = round_trip(LinkType::Ethernet, frames);
    assert_eq!(packets.len(), 3);
    for p in &packets {
        check_v4_segment(&parse_tcp(LinkType::Ethernet, p).unwrap());
    }
}

#[test]
fn test_ethernet_padding_is_not_payload() {
    // A 1-byte segment padded to the 60-byte Ethernet minimum: the IPv4
    // total length, not the frame, bounds the payload.
    let mut frame = ethernet(0x0800, &ipv4_tcp(b"x"));
    frame.resize(60, 0);
    let seg = parse_tcp(LinkType::Ethernet, &packet(0, frame)).unwrap();
    assert_eq!(&seg.payload[..], b"x");
    assert!(!seg.snapped);
}

#[test]
fn test_ipv4_options_are_skipped() {
    let mut ip = ipv4_tcp(PAYLOAD);
    // Four option bytes (NOP NOP NOP EOL): IHL 5 -> 6, total length + 4.
    ip[0] = 0x46;
    let total = u16::from_be_bytes([ip[2], ip[3]]) + 4;
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    ip.splice(20..20, [1, 1, 1, 0]);
    let seg = parse_tcp(LinkType::RawIp, &packet(0, ip)).unwrap();
    check_v4_segment(&seg);
}

#[test]
fn test_linux_sll_loopback() {
    // Cooked v1 on the "any" device: ARPHRD_LOOPBACK (772), which
    // etherparse's own SLL parser rejects.
    let mut frame = vec![0, 0, 0x03, 0x04, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0x08, 0x00];
    frame.extend_from_slice(&ipv4_tcp(PAYLOAD));
    let packets = round_trip(LinkType::LinuxSll, vec![frame]);
    check_v4_segment(&parse_tcp(LinkType::LinuxSll, &packets[0]).unwrap());
}

#[test]
fn test_linux_sll2_ipv6() {
    let mut frame = vec![
        0x86, 0xdd, 0, 0, 0, 0, 0, 1, 0, 1, 4, 6, 2, 0, 0, 0, 0, 1, 0, 0,
    ];
    frame.extend_from_slice(&ipv6_tcp(PAYLOAD));
    let packets = round_trip(LinkType::LinuxSll2, vec![frame]);
    check_v6_segment(&parse_tcp(LinkType::LinuxSll2, &packets[0]).unwrap());
}

#[test]
fn test_linux_sll2_non_ip_and_short_header() {
    let mut arp = vec![
        0x08, 0x06, 0, 0, 0, 0, 0, 1, 0, 1, 4, 6, 2, 0, 0, 0, 0, 1, 0, 0,
    ];
    arp.extend_from_slice(&[0; 28]);
    assert_eq!(
        parse_tcp(LinkType::LinuxSll2, &packet(0, arp)),
        Err(SkipReason::NotIp)
    );
    assert!(matches!(
        parse_tcp(LinkType::LinuxSll2, &packet(0, vec![0x08, 0x00, 0])),
        Err(SkipReason::Malformed(_))
    ));
}

#[test]
fn test_null_loopback_either_byte_order() {
    let mut little = 2u32.to_le_bytes().to_vec();
    little.extend_from_slice(&ipv4_tcp(PAYLOAD));
    // Captured on a big-endian Darwin host: AF_INET6 = 30, big-endian.
    let mut big = 30u32.to_be_bytes().to_vec();
    big.extend_from_slice(&ipv6_tcp(PAYLOAD));
    let packets = round_trip(LinkType::Null, vec![little, big]);
    check_v4_segment(&parse_tcp(LinkType::Null, &packets[0]).unwrap());
    check_v6_segment(&parse_tcp(LinkType::Null, &packets[1]).unwrap());
    let mut unknown = 7u32.to_le_bytes().to_vec();
    unknown.extend_from_slice(&ipv4_tcp(PAYLOAD));
    assert_eq!(
        parse_tcp(LinkType::Null, &packet(0, unknown)),
        Err(SkipReason::NotIp)
    );
}

#[test]
fn test_openbsd_loop_network_order() {
    let mut frame = 2u32.to_be_bytes().to_vec();
    frame.extend_from_slice(&ipv4_tcp(PAYLOAD));
    check_v4_segment(&parse_tcp(LinkType::Loop, &packet(0, frame)).unwrap());
}

#[test]
fn test_raw_ipv4() {
    let packets = round_trip(LinkType::RawIp, vec![ipv4_tcp(PAYLOAD)]);
    check_v4_segment(&parse_tcp(LinkType::RawIp, &packets[0]).unwrap());
    check_v4_segment(&parse_tcp(LinkType::Ipv4, &packets[0]).unwrap());
}

#[test]
fn test_ipv6_with_extension_header() {
    let mut ip = ipv6_tcp(PAYLOAD);
    // Insert a hop-by-hop options header (next header TCP, 8 bytes, PadN).
    ip[6] = 0;
    let len = u16::from_be_bytes([ip[4], ip[5]]) + 8;
    ip[4..6].copy_from_slice(&len.to_be_bytes());
    ip.splice(40..40, [6, 0, 1, 4, 0, 0, 0, 0]);
    let packets = round_trip(LinkType::Ipv6, vec![ip]);
    let seg = parse_tcp(LinkType::Ipv6, &packets[0]).unwrap();
    check_v6_segment(&seg);
    assert!(!seg.snapped);
}

#[test]
fn test_payload_is_a_slice_of_the_packet() {
    let p = packet(3, ipv4_tcp(PAYLOAD));
    let seg = parse_tcp(LinkType::RawIp, &p).unwrap();
    assert_eq!(seg.packet, 3);
    assert_eq!(seg.ts_ns, p.ts_ns);
    let start = seg.payload.as_ptr() as usize - p.data.as_ptr() as usize;
    assert_eq!(start, 40);
}

#[test]
fn test_skip_reasons() {
    let udp = {
        let mut out = Vec::new();
        PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .udp(1, 2)
            .write(&mut out, b"hi")
            .unwrap();
        out
    };
    assert_eq!(
        parse_tcp(LinkType::RawIp, &packet(0, udp)),
        Err(SkipReason::NotTcp)
    );
    assert_eq!(
        parse_tcp(LinkType::Ethernet, &packet(0, ethernet(0x0806, &[0; 28]))),
        Err(SkipReason::NotIp)
    );
    let mut fragment = ipv4_tcp(PAYLOAD);
    fragment[6] = 0x20; // more fragments
    assert_eq!(
        parse_tcp(LinkType::RawIp, &packet(0, fragment)),
        Err(SkipReason::Fragment)
    );
    let cut_header = ipv4_tcp(PAYLOAD)[..30].to_vec();
    let reason = parse_tcp(LinkType::RawIp, &packet(0, cut_header)).unwrap_err();
    assert!(matches!(reason, SkipReason::Malformed(_)), "{reason}");
    assert!(matches!(
        parse_tcp(LinkType::RawIp, &packet(0, vec![0x45])),
        Err(SkipReason::Malformed(_))
    ));
    assert!(matches!(
        parse_tcp(LinkType::Ethernet, &packet(0, vec![1, 2, 3])),
        Err(SkipReason::Malformed(_))
    ));
    assert_eq!(
        parse_tcp(LinkType::Other(147), &packet(0, ipv4_tcp(PAYLOAD))),
        Err(SkipReason::UnsupportedLink(147))
    );
    assert_eq!(SkipReason::Fragment.to_string(), "ip fragment");
}

#[test]
fn test_every_prefix_of_a_packet_parses_or_skips() {
    // No panic for any truncation of any link type.
    let mut sll = vec![0, 0, 0x03, 0x04, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0x08, 0x00];
    sll.extend_from_slice(&ipv4_tcp(PAYLOAD));
    let mut sll2 = vec![
        0x86, 0xdd, 0, 0, 0, 0, 0, 1, 0, 1, 4, 6, 2, 0, 0, 0, 0, 1, 0, 0,
    ];
    sll2.extend_from_slice(&ipv6_tcp(PAYLOAD));
    let cases = [
        (LinkType::Ethernet, ethernet(0x0800, &ipv4_tcp(PAYLOAD))),
        (LinkType::LinuxSll, sll),
        (LinkType::LinuxSll2, sll2),
        (LinkType::RawIp, ipv6_tcp(PAYLOAD)),
    ];
    for (link, frame) in cases {
        for cut in 0..=frame.len() {
            let mut p = packet(0, frame[..cut].to_vec());
            p.origlen = u32::try_from(frame.len()).unwrap();
            let _ = parse_tcp(link, &p);
        }
    }
}

#[test]
fn test_snaplen_cut_packets_are_marked_snapped() {
    let dir = temp_dir();
    let path = dir.path().join("snap.pcap");
    let big = vec![b'k'; 200];
    let frame = ethernet(0x0800, &ipv4_tcp(&big));
    let mut writer = PcapWriter::create(&path, LinkType::Ethernet, 64).unwrap();
    writer.write(&packet(0, frame.clone())).unwrap();
    writer.finish().unwrap();
    let mut reader = CaptureReader::open(&path).unwrap();
    let p = reader.next_packet().unwrap().unwrap();
    assert_eq!(p.caplen, 64);
    assert_eq!(p.origlen, u32::try_from(frame.len()).unwrap());
    let seg = parse_tcp(LinkType::Ethernet, &p).unwrap();
    assert!(seg.snapped);
    assert_eq!(seg.payload.len(), 64 - 14 - 20 - 20);
    assert_eq!(seg.wire_len, 200);
}

#[test]
fn test_snapped_ipv4_without_length_uses_original_length() {
    // TSO super-segments are captured with an IPv4 total length of 0.
    let mut ip = ipv4_tcp(&[b'k'; 100]);
    ip[2..4].copy_from_slice(&[0, 0]);
    let full = u32::try_from(ip.len()).unwrap();
    ip.truncate(60);
    let mut p = packet(0, ip);
    p.origlen = full;
    let seg = parse_tcp(LinkType::RawIp, &p).unwrap();
    assert!(seg.snapped);
    assert_eq!(seg.payload.len(), 20);
    assert_eq!(seg.wire_len, 100);
}

#[test]
fn test_nanosecond_file_keeps_nanoseconds() {
    let packets = round_trip(LinkType::RawIp, vec![ipv4_tcp(PAYLOAD)]);
    assert_eq!(packets[0].ts_ns, 1_700_000_000_123_456_789);
    assert_eq!(packets[0].index, 0);
}

/// A classic pcap file with microsecond timestamps, in either byte order.
fn microsecond_pcap(big_endian: bool, frames: &[Vec<u8>]) -> Vec<u8> {
    let header = Classic {
        big_endian,
        snaplen: 65535,
        link: 101,
        ..Classic::PLAIN
    };
    let records: Vec<PcapRecord> = (0u32..)
        .zip(frames)
        .map(|(i, frame)| PcapRecord::whole(1_700_000_000 + i, 654_321, frame))
        .collect();
    header.file(&records)
}

#[test]
fn test_microsecond_file_scales_to_nanoseconds() {
    let dir = temp_dir();
    for big_endian in [false, true] {
        let path = dir.path().join(format!("us-{big_endian}.pcap"));
        let frames = vec![ipv4_tcp(PAYLOAD), ipv4_tcp(b"")];
        std::fs::write(&path, microsecond_pcap(big_endian, &frames)).unwrap();
        let mut reader = CaptureReader::open(&path).unwrap();
        assert_eq!(reader.link_type(), LinkType::RawIp);
        let first = reader.next_packet().unwrap().unwrap();
        assert_eq!(first.ts_ns, 1_700_000_000_654_321_000);
        check_v4_segment(&parse_tcp(reader.link_type(), &first).unwrap());
        let second = reader.next_packet().unwrap().unwrap();
        assert_eq!(second.index, 1);
        assert_eq!(second.ts_ns, 1_700_000_001_654_321_000);
        assert!(reader.next_packet().is_none());
    }
}

/// A pcapng file: section header, one interface (with `if_tsresol` when
/// `nanos`), enhanced packet blocks.
fn pcapng(link: u16, nanos: bool, frames: &[Vec<u8>], ts_units: u64) -> Vec<u8> {
    let options: &[(u16, &[u8])] = if nanos { &[(OPT_TSRESOL, &[9])] } else { &[] };
    let mut file = Pcapng::new(false);
    file.section((1, 0)).interface(link, 0, options);
    for frame in frames {
        file.enhanced(0, ts_units, frame, frame.len());
    }
    file.out.bytes
}

#[test]
fn test_pcapng_nanosecond_and_microsecond_interfaces() {
    let dir = temp_dir();
    let frame = ethernet(0x0800, &ipv4_tcp(PAYLOAD));
    let cases = [
        (
            true,
            1_700_000_000_123_456_789u64,
            1_700_000_000_123_456_789i64,
        ),
        (
            false,
            1_700_000_000_123_456u64,
            1_700_000_000_123_456_000i64,
        ),
    ];
    for (nanos, units, want) in cases {
        let path = dir.path().join(format!("t-{nanos}.pcapng"));
        std::fs::write(&path, pcapng(1, nanos, std::slice::from_ref(&frame), units)).unwrap();
        let mut reader = CaptureReader::open(&path).unwrap();
        assert_eq!(reader.link_type(), LinkType::Ethernet);
        let p = reader.next_packet().unwrap().unwrap();
        assert_eq!(p.ts_ns, want);
        check_v4_segment(&parse_tcp(LinkType::Ethernet, &p).unwrap());
        assert!(reader.next_packet().is_none());
    }
}

#[test]
fn test_truncated_last_packet_yields_one_error_then_none() {
    let dir = temp_dir();
    let path = dir.path().join("cut.pcap");
    let mut writer = PcapWriter::create(&path, LinkType::RawIp, 0).unwrap();
    writer.write(&packet(0, ipv4_tcp(PAYLOAD))).unwrap();
    writer.write(&packet(1, ipv4_tcp(PAYLOAD))).unwrap();
    writer.finish().unwrap();
    let bytes = std::fs::read(&path).unwrap();
    for cut in [5, 30, 50] {
        std::fs::write(&path, &bytes[..bytes.len() - cut]).unwrap();
        let mut reader = CaptureReader::open(&path).unwrap();
        assert!(reader.next_packet().unwrap().is_ok());
        let error = reader.next_packet().unwrap().unwrap_err();
        let message = error.to_string();
        assert!(message.contains("cut.pcap"), "{message}");
        assert!(message.contains("packet 1"), "{message}");
        assert!(reader.next_packet().is_none());
        assert!(reader.next_packet().is_none());
    }
}

#[test]
fn test_corrupt_record_header_yields_one_error_then_none() {
    let dir = temp_dir();
    let path = dir.path().join("bad.pcap");
    let mut bytes = microsecond_pcap(false, &[ipv4_tcp(PAYLOAD), ipv4_tcp(PAYLOAD)]);
    // Second record's caplen: 0xFFFFFFF0.
    let second = 24 + 16 + ipv4_tcp(PAYLOAD).len();
    bytes[second + 8..second + 12].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
    std::fs::write(&path, bytes).unwrap();
    let mut reader = CaptureReader::open(&path).unwrap();
    assert!(reader.next_packet().unwrap().is_ok());
    assert!(reader.next_packet().unwrap().is_err());
    assert!(reader.next_packet().is_none());
}

#[test]
fn test_open_errors_name_the_file() {
    let dir = temp_dir();
    let missing = dir.path().join("missing.pcap");
    let message = CaptureReader::open(&missing).unwrap_err().to_string();
    assert!(message.starts_with("cannot open capture"), "{message}");
    assert!(message.contains("missing.pcap"), "{message}");

    let text = dir.path().join("notes.pcap");
    std::fs::write(&text, b"this is not a capture file at all").unwrap();
    let error = CaptureReader::open(&text).unwrap_err();
    assert!(matches!(error, CaptureError::Format { .. }), "{error}");
    assert!(error.to_string().contains("notes.pcap"));

    let empty = dir.path().join("empty.pcap");
    std::fs::write(&empty, b"").unwrap();
    assert!(CaptureReader::open(&empty).is_err());
}

#[test]
fn test_reading_from_an_open_file_as_for_stdin() {
    // `-` goes through the same descriptor path as this.
    let dir = temp_dir();
    let path = dir.path().join("fd.pcap");
    std::fs::write(&path, microsecond_pcap(false, &[ipv4_tcp(PAYLOAD)])).unwrap();
    let file = std::fs::File::open(&path).unwrap();
    let mut reader = CaptureReader::from_file(file, Path::new("<stdin>")).unwrap();
    assert_eq!(reader.path(), Path::new("<stdin>"));
    check_v4_segment(
        &parse_tcp(reader.link_type(), &reader.next_packet().unwrap().unwrap()).unwrap(),
    );
    assert!(reader.next_packet().is_none());

    let junk = dir.path().join("junk");
    std::fs::write(&junk, b"junk junk junk junk junk junk").unwrap();
    let file = std::fs::File::open(&junk).unwrap();
    assert!(CaptureReader::from_file(file, Path::new("<stdin>")).is_err());
}

#[test]
fn test_writer_keeps_other_link_types_and_rejects_bad_timestamps() {
    let packets = round_trip(LinkType::Other(147), vec![vec![1, 2, 3]]);
    assert_eq!(&packets[0].data[..], &[1, 2, 3]);
    let dir = temp_dir();
    let path = dir.path().join("neg.pcap");
    let mut writer = PcapWriter::create(&path, LinkType::RawIp, 0).unwrap();
    let mut p = packet(9, vec![0x45]);
    p.ts_ns = -1;
    let message = writer.write(&p).unwrap_err().to_string();
    assert!(
        message.contains("packet 9") && message.contains("neg.pcap"),
        "{message}"
    );
}

/// Per-file tallies of a real capture.
#[derive(Debug, Default)]
struct Tally {
    packets: u64,
    tcp: u64,
    snapped: u64,
    skips: BTreeMap<String, u64>,
    read_error: Option<String>,
    connections: u64,
    data_bytes: u64,
    gaps: u64,
}

fn tally_capture(path: &Path) -> (LinkType, Tally) {
    let mut reader = CaptureReader::open(path).unwrap_or_else(|e| panic!("{e}"));
    let link = reader.link_type();
    let mut tally = Tally::default();
    let mut reassembler = Reassembler::new(ReassemblyLimits::default());
    let mut events = Vec::new();
    // Bounded: a capture cannot hold more records than bytes.
    let limit = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    while let Some(next) = reader.next_packet() {
        assert!(tally.packets <= limit, "reader does not end");
        let packet = match next {
            Ok(packet) => packet,
            Err(e) => {
                tally.read_error = Some(e.to_string());
                continue;
            }
        };
        tally.packets += 1;
        match parse_tcp(link, &packet) {
            Ok(seg) => {
                tally.tcp += 1;
                tally.snapped += u64::from(seg.snapped);
                reassembler.push(seg, &mut events);
            }
            Err(reason) => {
                let key = match reason {
                    SkipReason::Malformed(_) => "malformed".to_string(),
                    other => other.to_string(),
                };
                *tally.skips.entry(key).or_default() += 1;
            }
        }
    }
    reassembler.finish(&mut events);
    // Every connection opens once and closes once, nothing in between after.
    let mut open = BTreeMap::new();
    for event in &events {
        match &event.kind {
            EventKind::Opened { .. } => {
                assert!(open.insert(event.connection, true).is_none());
                tally.connections += 1;
            }
            EventKind::Closed => {
                assert_eq!(open.insert(event.connection, false), Some(true));
            }
            other => {
                assert_eq!(
                    open.get(&event.connection),
                    Some(&true),
                    "{other:?} outside connection"
                );
                if let EventKind::Data { bytes, .. } = other {
                    assert!(!bytes.is_empty());
                    tally.data_bytes += bytes.len() as u64;
                }
                if let EventKind::Gap { .. } = other {
                    tally.gaps += 1;
                }
            }
        }
    }
    assert!(open.values().all(|still_open| !still_open));
    (link, tally)
}

/// The pcap and pcapng files in `dir`, sorted (none when it is missing).
pub(crate) fn capture_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.extension()
                        .is_some_and(|ext| ext == "pcap" || ext == "pcapng")
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

fn run_captures(dir: &Path) -> usize {
    let files = capture_files(dir);
    for path in &files {
        let (link, tally) = tally_capture(path);
        println!(
            "{}: {link}, {} packets, {} tcp ({} snapped), skipped {:?}, {} connections, {} bytes, {} gaps{}",
            path.file_name().unwrap().to_string_lossy(),
            tally.packets,
            tally.tcp,
            tally.snapped,
            tally.skips,
            tally.connections,
            tally.data_bytes,
            tally.gaps,
            tally
                .read_error
                .as_ref()
                .map(|e| format!(", read error: {e}"))
                .unwrap_or_default(),
        );
        assert!(tally.tcp > 0, "{}: no tcp segments", path.display());
        assert!(
            !tally.skips.contains_key("malformed"),
            "{}: malformed packets {:?}",
            path.display(),
            tally.skips
        );
    }
    files.len()
}

#[test]
fn test_shared_public_captures_parse_or_skip_every_packet() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/captures");
    assert!(
        dir.is_dir(),
        "{} is missing: the shared reference material must sit beside the repo",
        dir.display()
    );
    assert!(run_captures(&dir) > 0, "no captures in {}", dir.display());
}

#[test]
fn test_corpus_captures_parse_or_skip_every_packet() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/captures");
    assert!(run_captures(&dir) > 0, "no captures in {}", dir.display());
}

/// Runs `test_dash_reads_standard_input` again with `capture` on its
/// standard input, as a regular file or through a pipe; returns its output.
fn run_with_stdin(capture: &Path, pipe: bool) -> String {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "capture::tests::test_dash_reads_standard_input",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(STDIN_CHILD, capture)
        .stdin(if pipe {
            Stdio::piped()
        } else {
            Stdio::from(std::fs::File::open(capture).unwrap())
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A thread feeds the pipe: a capture can be larger than its buffer.
    let feeder = child.stdin.take().map(|mut stdin| {
        let bytes = std::fs::read(capture).unwrap();
        std::thread::spawn(move || stdin.write_all(&bytes))
    });
    let output = child.wait_with_output().unwrap();
    if let Some(feeder) = feeder {
        feeder.join().unwrap().unwrap();
    }
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}{stderr}");
    stdout
}

/// Tells the test's second run which capture is on its standard input.
const STDIN_CHILD: &str = "KWIRE_CAPTURE_STDIN_CHILD";

#[test]
fn test_dash_reads_standard_input() {
    // The test runs itself again with a capture on stdin; the child's half
    // opens `-` and compares what it reads with libpcap's reading of the
    // same file by name.
    if let Some(reference) = std::env::var_os(STDIN_CHILD) {
        let reference = PathBuf::from(reference);
        let reader = CaptureReader::open(Path::new("-")).unwrap();
        let direct = reads_directly(&reader);
        let ours = read_out(Ok(reader));
        let mut theirs = read_out(open_with_libpcap(&reference));
        let name = reference.display().to_string();
        theirs.error = theirs.error.map(|e| e.replace(&name, "<stdin>"));
        assert_same_readout("stdin", &ours, &theirs);
        println!("stdin packets={} direct={direct}", ours.packets.len());
        return;
    }
    let dir = temp_dir();
    let path = dir.path().join("stdin.pcap");
    let frames = vec![ipv4_tcp(PAYLOAD), ipv4_tcp(PAYLOAD), ipv4_tcp(PAYLOAD)];
    std::fs::write(&path, microsecond_pcap(false, &frames)).unwrap();
    let truncated = dir.path().join("truncated.pcap");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() - 5]).unwrap();
    let captures = [
        (path, 3),
        (truncated, 2),
        (
            Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/captures/python-sasl-tansu.pcap"),
            corpus_packets("python-sasl-tansu.pcap").len(),
        ),
        (
            shared_captures_dir().join("segmentio_kafka-go__v2c-v2c.pcapng"),
            85,
        ),
    ];
    for (capture, count) in &captures {
        // A regular file on stdin is read directly; a pipe only by libpcap.
        for pipe in [false, true] {
            let stdout = run_with_stdin(capture, pipe);
            let want = format!("stdin packets={count} direct={}", !pipe);
            assert!(stdout.contains(&want), "{}: {stdout}", capture.display());
        }
    }
}

// The direct reader (`savefile`) against libpcap.
//
// `savefile` promises that kwire's output never depends on which reader
// ran. libpcap itself is the reference here: every file below is read by
// the default reader and by libpcap alone, and both must hand out the same
// packets (index, time, lengths, bytes), link type and error text. Each
// case also states which reader the default one used, so that a direct
// reader that quietly declined everything could not pass.

/// Bytes in a chosen byte order, for building capture files.
struct Out {
    big_endian: bool,
    bytes: Vec<u8>,
}

impl Out {
    fn new(big_endian: bool) -> Out {
        Out {
            big_endian,
            bytes: Vec::new(),
        }
    }

    fn u16(&mut self, v: u16) -> &mut Out {
        self.ordered(v.to_be_bytes(), v.to_le_bytes())
    }

    fn u32(&mut self, v: u32) -> &mut Out {
        self.ordered(v.to_be_bytes(), v.to_le_bytes())
    }

    fn ordered<const N: usize>(&mut self, big: [u8; N], little: [u8; N]) -> &mut Out {
        self.raw(if self.big_endian { &big } else { &little })
    }

    fn raw(&mut self, bytes: &[u8]) -> &mut Out {
        self.bytes.extend_from_slice(bytes);
        self
    }

    fn pad4(&mut self) -> &mut Out {
        while self.bytes.len() % 4 != 0 {
            self.bytes.push(0);
        }
        self
    }
}

/// A classic pcap file header (pcap-savefile(5)).
#[derive(Clone, Copy)]
struct Classic {
    big_endian: bool,
    /// Magic `a1b23c4d`: the records' fractions are nanoseconds.
    nanos: bool,
    version: (u16, u16),
    snaplen: u32,
    link: u32,
}

impl Classic {
    const PLAIN: Classic = Classic {
        big_endian: false,
        nanos: false,
        version: (2, 4),
        snaplen: 262_144,
        link: 1,
    };

    fn file(self, records: &[PcapRecord]) -> Vec<u8> {
        let mut out = Out::new(self.big_endian);
        out.u32(if self.nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 })
            .u16(self.version.0)
            .u16(self.version.1)
            .u32(0)
            .u32(0)
            .u32(self.snaplen)
            .u32(self.link);
        for record in records {
            out.u32(record.sec)
                .u32(record.fraction)
                .u32(record.caplen)
                .u32(record.origlen)
                .raw(&record.data);
        }
        out.bytes
    }
}

/// A classic pcap record: its header fields as written, whatever the data.
#[derive(Clone)]
struct PcapRecord {
    sec: u32,
    fraction: u32,
    caplen: u32,
    origlen: u32,
    data: Vec<u8>,
}

impl PcapRecord {
    fn whole(sec: u32, fraction: u32, data: &[u8]) -> PcapRecord {
        let len = u32::try_from(data.len()).unwrap();
        PcapRecord {
            sec,
            fraction,
            caplen: len,
            origlen: len,
            data: data.to_vec(),
        }
    }

    /// The record of a packet read before, timed in micro- or nanoseconds.
    fn of(packet: &RawPacket, nanos: bool) -> PcapRecord {
        let (sec, ns) = (packet.ts_ns / 1_000_000_000, packet.ts_ns % 1_000_000_000);
        let fraction = if nanos { ns } else { ns / 1000 };
        PcapRecord {
            origlen: packet.origlen,
            ..PcapRecord::whole(
                u32::try_from(sec).unwrap(),
                u32::try_from(fraction).unwrap(),
                &packet.data,
            )
        }
    }
}

/// Interface description options (draft-ietf-opsawg-pcapng section 4.2).
const OPT_TSRESOL: u16 = 9;
const OPT_TSOFFSET: u16 = 14;
/// pcapng block types (section 11.1).
const BLOCK_SECTION: u32 = 0x0A0D_0D0A;
const BLOCK_INTERFACE: u32 = 1;
const BLOCK_ENHANCED: u32 = 6;

/// A pcapng file built block by block.
struct Pcapng {
    out: Out,
}

impl Pcapng {
    fn new(big_endian: bool) -> Pcapng {
        Pcapng {
            out: Out::new(big_endian),
        }
    }

    /// A block whose body `body` writes; padded, with its length around.
    fn block(&mut self, kind: u32, body: impl FnOnce(&mut Out)) -> &mut Pcapng {
        let mut inner = Out::new(self.out.big_endian);
        body(&mut inner);
        inner.pad4();
        let total = u32::try_from(12 + inner.bytes.len()).unwrap();
        self.out.u32(kind).u32(total).raw(&inner.bytes).u32(total);
        self
    }

    fn section(&mut self, version: (u16, u16)) -> &mut Pcapng {
        self.block(BLOCK_SECTION, |out| {
            out.u32(0x1a2b_3c4d)
                .u16(version.0)
                .u16(version.1)
                .raw(&[0xff; 8]);
        })
    }

    fn interface(&mut self, link: u16, snaplen: u32, options: &[(u16, &[u8])]) -> &mut Pcapng {
        self.block(BLOCK_INTERFACE, |out| {
            out.u16(link).u16(0).u32(snaplen);
            for (code, value) in options {
                out.u16(*code)
                    .u16(u16::try_from(value.len()).unwrap())
                    .raw(value)
                    .pad4();
            }
            if !options.is_empty() {
                out.u32(0);
            }
        })
    }

    fn enhanced(&mut self, interface: u32, ticks: u64, data: &[u8], origlen: usize) -> &mut Pcapng {
        self.block(BLOCK_ENHANCED, |out| {
            out.u32(interface)
                .u32(u32::try_from(ticks >> 32).unwrap())
                .u32(ticks as u32)
                .u32(u32::try_from(data.len()).unwrap())
                .u32(u32::try_from(origlen).unwrap())
                .raw(data);
        })
    }

    /// Enhanced packet blocks for `packets`, timed in `units` per second.
    fn packets(&mut self, interface: u32, units: u64, packets: &[RawPacket]) -> &mut Pcapng {
        for packet in packets {
            let ticks = u64::try_from(packet.ts_ns).unwrap() / (1_000_000_000 / units);
            self.enhanced(interface, ticks, &packet.data, to_usize(packet.origlen));
        }
        self
    }
}

/// One enhanced packet block of `data`, in 2023.
fn one_packet(file: &mut Pcapng, interface: u32, data: &[u8]) {
    file.enhanced(interface, 1_700_000_000_000_000, data, data.len());
}

fn to_usize(n: u32) -> usize {
    usize::try_from(n).unwrap()
}

/// Opens `path` with libpcap alone, never the direct reader: the reference.
fn open_with_libpcap(path: &Path) -> Result<CaptureReader, CaptureError> {
    let utf8 = path.to_str().expect("test paths are UTF-8");
    pcap::Capture::from_file_with_precision(utf8, pcap::Precision::Nano)
        .map(|capture| CaptureReader::with_capture(capture, path))
        .map_err(|error| CaptureError::Format {
            path: path.to_path_buf(),
            message: pcap_message(error),
        })
}

fn reads_directly(reader: &CaptureReader) -> bool {
    matches!(reader.source, Source::Savefile(_))
}

/// Which reader served a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Served {
    /// The direct reader, from the file header to the end.
    Direct,
    /// The direct reader first, then libpcap from a block it does not take.
    HandedOver,
    /// libpcap alone: the direct reader declined the file header, or the
    /// file could not be opened.
    Libpcap,
}

/// Everything a reader hands out for one file.
#[derive(Debug)]
struct Readout {
    link: Option<LinkType>,
    packets: Vec<RawPacket>,
    /// The text of the error that ended the reading, at open or at a packet.
    error: Option<String>,
    served: Served,
}

fn read_out(opened: Result<CaptureReader, CaptureError>) -> Readout {
    let mut reader = match opened {
        Ok(reader) => reader,
        Err(error) => {
            return Readout {
                link: None,
                packets: Vec::new(),
                error: Some(error.to_string()),
                served: Served::Libpcap,
            }
        }
    };
    let at_open = reads_directly(&reader);
    let mut packets = Vec::new();
    let mut error = None;
    while let Some(next) = reader.next_packet() {
        assert!(error.is_none(), "a packet after the error {error:?}");
        match next {
            Ok(packet) => packets.push(packet),
            Err(e) => error = Some(e.to_string()),
        }
    }
    assert!(reader.next_packet().is_none(), "a packet after the end");
    let served = match (at_open, reads_directly(&reader)) {
        (true, true) => Served::Direct,
        (true, false) => Served::HandedOver,
        (false, _) => Served::Libpcap,
    };
    Readout {
        link: Some(reader.link_type()),
        packets,
        error,
        served,
    }
}

/// Asserts that two readouts hand out the same; `what` names them.
fn assert_same_readout(what: &str, ours: &Readout, reference: &Readout) {
    assert_eq!(ours.link, reference.link, "{what}: link type");
    for (mine, theirs) in ours.packets.iter().zip(&reference.packets) {
        assert_eq!(mine, theirs, "{what}: packet {}", theirs.index);
    }
    assert_eq!(
        (ours.packets.len(), &ours.error),
        (reference.packets.len(), &reference.error),
        "{what}: packet count and error"
    );
}

/// Reads `path` with the default reader and with libpcap alone, asserts
/// that they hand out the same, and returns the default reader's readout.
fn compare_with_libpcap(path: &Path) -> Readout {
    let ours = read_out(CaptureReader::open(path));
    let reference = read_out(open_with_libpcap(path));
    assert_same_readout(&path.display().to_string(), &ours, &reference);
    ours
}

/// The packets of a corpus capture, as libpcap reads them.
fn corpus_packets(name: &str) -> Vec<RawPacket> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus/captures")
        .join(name);
    let readout = read_out(open_with_libpcap(&path));
    assert_eq!(readout.error, None, "{}", path.display());
    assert!(readout.packets.len() > 10, "{}", path.display());
    readout.packets
}

fn shared_captures_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/captures");
    assert!(
        dir.is_dir(),
        "{} is missing: the reader tests compare libpcap on these public captures",
        dir.display()
    );
    dir
}

/// Files the direct reader hands to libpcap part way: more than one
/// interface.
const HANDED_OVER: &[&str] = &["ntop_nDPI__kafka.pcapng"];

#[test]
fn test_real_captures_read_the_same_as_libpcap() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/captures");
    let mut files = capture_files(&corpus);
    let in_corpus = files.len();
    files.extend(capture_files(&shared_captures_dir()));
    assert!(
        in_corpus >= 10 && files.len() >= in_corpus + 20,
        "{files:?}"
    );
    for path in &files {
        let readout = compare_with_libpcap(path);
        let name = path.file_name().unwrap().to_string_lossy();
        let expected = if HANDED_OVER.contains(&name.as_ref()) {
            Served::HandedOver
        } else {
            Served::Direct
        };
        assert_eq!(readout.served, expected, "{name}");
        assert!(!readout.packets.is_empty(), "{name}");
        println!(
            "{name}: {:?}, {} packets, error {:?}",
            readout.served,
            readout.packets.len(),
            readout.error
        );
    }
}

/// Compares the readers on every prefix of `bytes`; returns how often
/// each reader served.
fn compare_prefixes(name: &str, bytes: &[u8]) -> BTreeMap<Served, usize> {
    compare_cuts(name, bytes, 0..=bytes.len())
}

/// Compares the readers on the prefixes of `bytes` cut at `cuts`; returns
/// how often each reader served.
fn compare_cuts(
    name: &str,
    bytes: &[u8],
    cuts: impl IntoIterator<Item = usize>,
) -> BTreeMap<Served, usize> {
    // Thousands of rewrites of one file: in memory where there is a tmpfs.
    let shm = Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        tempfile::tempdir_in(shm).unwrap()
    } else {
        temp_dir()
    };
    let path = dir.path().join(name);
    let mut served = BTreeMap::new();
    for cut in cuts {
        std::fs::write(&path, &bytes[..cut]).unwrap();
        let ours = read_out(CaptureReader::open(&path));
        let reference = read_out(open_with_libpcap(&path));
        assert_same_readout(&format!("{name} cut at {cut}"), &ours, &reference);
        *served.entry(ours.served).or_default() += 1;
    }
    served
}

/// The number of prefixes compared, when the direct reader opened nearly
/// all of them (the rest are cut inside the file header) and, for classic
/// pcap, never handed one over.
fn mostly_direct(served: &BTreeMap<Served, usize>, classic: bool) -> usize {
    let total: usize = served.values().sum();
    let count = |how| served.get(&how).copied().unwrap_or(0);
    assert!(count(Served::Libpcap) * 10 <= total, "{served:?}");
    assert!(!classic || count(Served::HandedOver) == 0, "{served:?}");
    total
}

/// Compares the readers on every prefix of each file; returns how often
/// each reader served, over all of them.
fn sweep_files(files: &[PathBuf]) -> BTreeMap<Served, usize> {
    let mut total = BTreeMap::new();
    for path in files {
        let bytes = std::fs::read(path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy();
        let served = compare_prefixes(&name, &bytes);
        println!("{name}: {served:?}");
        for (how, count) in served {
            *total.entry(how).or_default() += count;
        }
    }
    total
}

#[test]
fn test_every_truncation_of_classic_pcap_reads_the_same_as_libpcap() {
    let files = [
        Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/captures/python-sasl-tansu.pcap"),
        // Nanosecond magic, snapshot length 2048.
        shared_captures_dir().join("deepflowio_deepflow__01-fetch-v12-unknown.pcap"),
    ];
    let served = sweep_files(&files);
    println!("{} cuts: {served:?}", mostly_direct(&served, true));
}

#[test]
fn test_every_truncation_of_pcapng_reads_the_same_as_libpcap() {
    let shared = shared_captures_dir();
    let files = [
        shared.join("segmentio_kafka-go__v2c-v2c.pcapng"),
        // Two interfaces: handed over to libpcap.
        shared.join("ntop_nDPI__kafka.pcapng"),
    ];
    let served = sweep_files(&files);
    println!("{} cuts: {served:?}", mostly_direct(&served, false));
}

/// A file built from corpus packets, and what reading it must show.
struct Variant {
    name: String,
    bytes: Vec<u8>,
    served: Served,
    /// Whether reading ends in an error (at open or at a packet).
    fails: bool,
}

fn variant(name: impl Into<String>, bytes: Vec<u8>, served: Served, fails: bool) -> Variant {
    Variant {
        name: name.into(),
        bytes,
        served,
        fails,
    }
}

fn check_variants(variants: &[Variant]) {
    let dir = temp_dir();
    for variant in variants {
        let path = dir.path().join(&variant.name);
        std::fs::write(&path, &variant.bytes).unwrap();
        let readout = compare_with_libpcap(&path);
        assert_eq!(readout.served, variant.served, "{}", variant.name);
        assert_eq!(
            readout.error.is_some(),
            variant.fails,
            "{}: {:?}",
            variant.name,
            readout.error
        );
        println!(
            "{}: {:?}, {} packets, error {:?}",
            variant.name,
            readout.served,
            readout.packets.len(),
            readout.error
        );
    }
}

/// `packets` made jumbo, from 16 KB to 206 KB: records across the direct
/// reader's 64 KiB blocks and over its own-allocation threshold.
fn jumbo(packets: &[RawPacket]) -> Vec<RawPacket> {
    (0..)
        .zip(packets)
        .map(|(i, packet)| {
            let len = 16_000 + (i * 37_001) % 190_000;
            let data: Bytes = packet.data.iter().copied().cycle().take(len).collect();
            RawPacket {
                caplen: u32::try_from(len).unwrap(),
                origlen: u32::try_from(len).unwrap(),
                data,
                ..packet.clone()
            }
        })
        .collect()
}

/// A classic file of `packets` under `header`, each record changed by
/// `change` (given its position).
fn classic_variant(
    header: Classic,
    packets: &[RawPacket],
    change: impl Fn(usize, &mut PcapRecord),
) -> Vec<u8> {
    let records: Vec<PcapRecord> = packets
        .iter()
        .enumerate()
        .map(|(i, packet)| {
            let mut record = PcapRecord::of(packet, header.nanos);
            change(i, &mut record);
            record
        })
        .collect();
    header.file(&records)
}

#[test]
fn test_classic_pcap_variants_read_the_same_as_libpcap() {
    use Served::{Direct, Libpcap};
    let packets = corpus_packets("python-sasl-tansu.pcap");
    let keep = |_: usize, _: &mut PcapRecord| {};
    let plain = Classic::PLAIN;
    let big = Classic {
        big_endian: true,
        ..plain
    };
    let snap100 = Classic {
        snaplen: 100,
        ..plain
    };
    // Records cut at a snapshot length, as a capture with -s 100 writes them.
    let cut_at_100 = |_: usize, r: &mut PcapRecord| {
        r.data.truncate(100);
        r.caplen = u32::try_from(r.data.len()).unwrap();
    };
    // Every packet, under `plain` changed by `change`.
    let with_header = |change: fn(&mut Classic)| {
        let mut header = plain;
        change(&mut header);
        classic_variant(header, &packets, keep)
    };
    let odd_times = |i: usize, r: &mut PcapRecord| match i % 5 {
        0 => r.sec = 0xffff_fff0,
        1 => r.fraction = 0xffff_ffff,
        2 => r.fraction = 3_000_000_000,
        3 => (r.sec, r.fraction) = (0x8000_0000, 999_999_999),
        _ => {}
    };
    let mut variants = vec![
        // Records longer than the header's snapshot length: libpcap cuts
        // them to it and drops the rest.
        variant(
            "snaplen-100-whole-records",
            classic_variant(snap100, &packets, keep),
            Direct,
            false,
        ),
        variant(
            "snaplen-100-cut-records",
            classic_variant(snap100, &packets, cut_at_100),
            Direct,
            false,
        ),
        variant(
            "snaplen-0-means-maximum",
            with_header(|h| h.snaplen = 0),
            Direct,
            false,
        ),
        variant(
            "snaplen-huge-means-maximum",
            with_header(|h| h.snaplen = u32::MAX),
            Direct,
            false,
        ),
        variant(
            "caplen-over-maximum",
            classic_variant(plain, &packets, |i, r| {
                if i == 5 {
                    r.caplen = 262_145;
                }
            }),
            Direct,
            true,
        ),
        variant(
            "caplen-over-maximum-small-snaplen",
            classic_variant(snap100, &packets, |i, r| {
                if i == 5 {
                    r.caplen = u32::MAX;
                }
            }),
            Direct,
            true,
        ),
        variant(
            "jumbo-records",
            classic_variant(plain, &jumbo(&packets), keep),
            Direct,
            false,
        ),
        variant(
            "jumbo-records-snaplen-1000",
            classic_variant(
                Classic {
                    snaplen: 1000,
                    ..big
                },
                &jumbo(&packets),
                keep,
            ),
            Direct,
            false,
        ),
        variant(
            "trailing-partial-record-header",
            [classic_variant(plain, &packets, keep), vec![1; 7]].concat(),
            Direct,
            true,
        ),
        // What the direct reader leaves to libpcap.
        variant(
            "version-2-3",
            with_header(|h| h.version = (2, 3)),
            Libpcap,
            false,
        ),
        variant(
            "unknown-link-type",
            with_header(|h| h.link = 147),
            Libpcap,
            false,
        ),
        variant(
            "link-type-with-fcs-bits",
            with_header(|h| h.link = 0x1400_0001),
            Libpcap,
            false,
        ),
        variant(
            "linux-cooked-byte-swapped",
            with_header(|h| (h.link, h.big_endian) = (113, true)),
            Libpcap,
            false,
        ),
        // Its records have 24-byte headers: these 16-byte ones fail.
        variant(
            "kuznetzov-magic",
            [
                &[0x34, 0xcd, 0xb2, 0xa1][..],
                &classic_variant(plain, &packets, keep)[4..],
            ]
            .concat(),
            Libpcap,
            true,
        ),
    ];
    // Either byte order, either precision; the time fields are signed in
    // the host's byte order and not in the other: before 1970, and
    // fractions out of range either way.
    for (order, big_endian) in [("le", false), ("be", true)] {
        for (unit, nanos) in [("usec", false), ("nsec", true)] {
            let header = Classic {
                big_endian,
                nanos,
                ..plain
            };
            let name = format!("{order}-{unit}");
            let odd_name = format!("odd-timestamps-{name}");
            variants.push(variant(
                name,
                classic_variant(header, &packets, keep),
                Direct,
                false,
            ));
            variants.push(variant(
                odd_name,
                classic_variant(header, &packets, odd_times),
                Direct,
                false,
            ));
        }
    }
    check_variants(&variants);
}

/// A pcapng file of `packets` on one interface (Ethernet, snapshot length
/// 0, options `options`), with `middle` written after the first half of
/// them; timestamps in `units` per second.
fn pcapng_variant(
    big_endian: bool,
    options: &[(u16, &[u8])],
    units: u64,
    packets: &[RawPacket],
    middle: impl FnOnce(&mut Pcapng),
) -> Vec<u8> {
    let (first, second) = packets.split_at(packets.len() / 2);
    let mut file = Pcapng::new(big_endian);
    file.section((1, 0))
        .interface(1, 0, options)
        .packets(0, units, first);
    middle(&mut file);
    file.packets(0, units, second);
    file.out.bytes
}

/// A pcapng file of `packets`: one section of version `version`, one
/// interface without options, microsecond timestamps.
fn single_interface(
    big_endian: bool,
    version: (u16, u16),
    link: u16,
    snaplen: u32,
    packets: &[RawPacket],
) -> Vec<u8> {
    let mut file = Pcapng::new(big_endian);
    file.section(version)
        .interface(link, snaplen, &[])
        .packets(0, 1_000_000, packets);
    file.out.bytes
}

#[test]
fn test_pcapng_variants_read_the_same_as_libpcap() {
    use Served::{Direct, HandedOver, Libpcap};
    let packets = corpus_packets("python-sasl-tansu.pcap");
    let usec = 1_000_000;
    let plain = |middle: fn(&mut Pcapng)| pcapng_variant(false, &[], usec, &packets, middle);
    let nothing = |_: &mut Pcapng| {};
    let resolution = |value: u8, units: u64| {
        pcapng_variant(false, &[(OPT_TSRESOL, &[value])], units, &packets, nothing)
    };
    let variants = [
        variant("little-endian", plain(|_| {}), Direct, false),
        variant(
            "big-endian",
            pcapng_variant(true, &[], usec, &packets, nothing),
            Direct,
            false,
        ),
        variant("tsresol-10^-6", resolution(6, usec), Direct, false),
        variant("tsresol-10^-9", resolution(9, 1_000_000_000), Direct, false),
        variant(
            "tsresol-10^-9-big-endian",
            pcapng_variant(
                true,
                &[(OPT_TSRESOL, &[9])],
                1_000_000_000,
                &packets,
                nothing,
            ),
            Direct,
            false,
        ),
        // Blocks libpcap skips: name resolution (4), interface statistics
        // (5), a custom block (0x0BAD), decryption secrets (0x0A).
        variant(
            "other-blocks-skipped",
            plain(|file| {
                for kind in [4, 5, 0x0BAD, 0x0A] {
                    file.block(kind, |out| {
                        out.u32(0).raw(b"skipped");
                    });
                }
            }),
            Direct,
            false,
        ),
        variant(
            "packet-options",
            plain(|file| {
                file.block(BLOCK_ENHANCED, |out| {
                    // epb_flags (2) after 3 packet bytes and their padding.
                    out.u32(0).u32(0).u32(1).u32(3).u32(60).raw(b"abc").pad4();
                    out.u16(2).u16(4).u32(1).u32(0);
                });
            }),
            Direct,
            false,
        ),
        variant(
            "huge-timestamps",
            plain(|file| {
                file.enhanced(0, u64::MAX, b"late", 4);
                file.enhanced(0, 1 << 63, b"later", 5);
            }),
            Direct,
            false,
        ),
        variant(
            "jumbo-packets",
            pcapng_variant(false, &[], usec, &jumbo(&packets), nothing),
            Direct,
            false,
        ),
        // Blocks the direct reader leaves to libpcap mid-file.
        variant(
            "second-interface-same-link",
            plain(|file| {
                file.interface(1, 0, &[(OPT_TSRESOL, &[9])]);
                file.enhanced(1, 1_700_000_000_123_456_789, b"second", 6);
            }),
            HandedOver,
            false,
        ),
        variant(
            "second-interface-other-link",
            plain(|file| {
                file.interface(113, 0, &[]);
            }),
            HandedOver,
            true,
        ),
        variant(
            "snaplen-100-longer-packets",
            single_interface(false, (1, 0), 1, 100, &packets),
            HandedOver,
            true,
        ),
        variant(
            "second-section",
            plain(|file| {
                file.section((1, 0)).interface(1, 0, &[]);
            }),
            HandedOver,
            false,
        ),
        variant(
            "second-section-without-interface",
            plain(|file| {
                file.section((1, 0));
            }),
            HandedOver,
            true,
        ),
        variant(
            "packet-on-unknown-interface",
            plain(|file| one_packet(file, 1, b"nowhere")),
            HandedOver,
            true,
        ),
        variant(
            "packet-over-snaplen",
            pcapng_variant(false, &[], usec, &packets, |file| {
                // The interface's snapshot length is 0, the largest.
                one_packet(file, 0, &vec![7; 262_145]);
            }),
            HandedOver,
            true,
        ),
        variant(
            "simple-packet-block",
            plain(|file| {
                file.block(3, |out| {
                    out.u32(5).raw(b"plain");
                });
            }),
            HandedOver,
            false,
        ),
        variant(
            "obsolete-packet-block",
            plain(|file| {
                file.block(2, |out| {
                    out.u16(0).u16(0).u32(0).u32(1).u32(3).u32(3).raw(b"old");
                });
            }),
            HandedOver,
            false,
        ),
        variant(
            "trailer-mismatch",
            plain(|file| {
                one_packet(file, 0, b"mismatch");
                let at = file.out.bytes.len() - 4;
                file.out.bytes[at] ^= 4;
            }),
            HandedOver,
            true,
        ),
        variant(
            "length-not-multiple-of-4",
            plain(|file| {
                file.out.u32(BLOCK_ENHANCED).u32(34).raw(&[0; 22]).u32(34);
            }),
            HandedOver,
            true,
        ),
        variant(
            "packet-longer-than-block",
            plain(|file| {
                file.block(BLOCK_ENHANCED, |out| {
                    out.u32(0).u32(0).u32(0).u32(64).u32(64).raw(&[0; 8]);
                });
            }),
            HandedOver,
            true,
        ),
        // Interfaces the direct reader leaves to libpcap from the start.
        variant("tsresol-10^-3", resolution(3, 1000), Libpcap, false),
        variant(
            "tsresol-10^-12",
            resolution(12, 1_000_000_000),
            Libpcap,
            false,
        ),
        variant("tsresol-2^-20", resolution(0x80 | 20, usec), Libpcap, false),
        variant(
            "tsoffset",
            pcapng_variant(
                false,
                &[(OPT_TSOFFSET, &7u64.to_le_bytes())],
                usec,
                &packets,
                nothing,
            ),
            Libpcap,
            false,
        ),
        variant(
            "two-tsresol-options",
            pcapng_variant(
                false,
                &[(OPT_TSRESOL, &[6]), (OPT_TSRESOL, &[9])],
                usec,
                &packets,
                nothing,
            ),
            Libpcap,
            true,
        ),
        variant(
            "tsresol-two-bytes",
            pcapng_variant(false, &[(OPT_TSRESOL, &[6, 0])], usec, &packets, nothing),
            Libpcap,
            true,
        ),
        variant(
            "end-of-options-with-length",
            pcapng_variant(false, &[(0, &[9, 0, 0, 0])], usec, &packets, nothing),
            Libpcap,
            true,
        ),
        variant(
            "linux-cooked-byte-swapped",
            single_interface(!cfg!(target_endian = "big"), (1, 0), 113, 0, &packets),
            Libpcap,
            false,
        ),
        variant(
            "version-1-2",
            single_interface(false, (1, 2), 1, 0, &packets),
            Libpcap,
            false,
        ),
        variant(
            "statistics-before-interface",
            {
                let mut file = Pcapng::new(false);
                file.section((1, 0)).block(5, |out| {
                    out.u32(0);
                });
                file.interface(1, 0, &[]).packets(0, usec, &packets);
                file.out.bytes
            },
            Libpcap,
            false,
        ),
        variant(
            "packet-before-interface",
            {
                let mut file = Pcapng::new(false);
                file.section((1, 0));
                one_packet(&mut file, 0, b"early");
                file.interface(1, 0, &[]).packets(0, usec, &packets);
                file.out.bytes
            },
            Libpcap,
            true,
        ),
    ];
    check_variants(&variants);
}

#[test]
fn test_truncated_variants_read_the_same_as_libpcap() {
    // Truncations of what is rewritten above: records cut by the snapshot
    // length (the file may end in the part libpcap drops), byte-swapped
    // records, and a pcapng file whose second interface hands it over.
    let packets = corpus_packets("python-sasl-tansu.pcap");
    let few = &packets[..12];
    let snap100 = Classic {
        big_endian: true,
        snaplen: 100,
        ..Classic::PLAIN
    };
    let classic = classic_variant(snap100, few, |_, _| {});
    let served = compare_prefixes("snaplen-100.pcap", &classic);
    println!(
        "snaplen-100: {} cuts, {served:?}",
        mostly_direct(&served, true)
    );

    let pcapng = pcapng_variant(false, &[], 1_000_000, few, |file| {
        file.interface(1, 0, &[]);
    });
    let served = compare_prefixes("second-interface.pcapng", &pcapng);
    let handed_over = served.get(&Served::HandedOver).copied().unwrap_or(0);
    assert!(
        handed_over * 3 >= served.values().sum::<usize>(),
        "{served:?}"
    );
    println!("second-interface: {served:?}");
}

#[test]
fn test_truncation_at_record_edges_of_large_files_reads_the_same_as_libpcap() {
    // Small records share the direct reader's 64 KiB blocks, jumbo ones get
    // allocations of their own; cut around every record's edges, where
    // one block ends and the next read begins.
    let packets = corpus_packets("python-sasl-tansu.pcap");
    let large = jumbo(&packets[..24]);
    let mixed: Vec<RawPacket> = packets[..24]
        .iter()
        .zip(&large)
        .enumerate()
        .map(|(i, (small, large))| if i % 3 == 0 { large } else { small }.clone())
        .collect();
    let bytes = classic_variant(Classic::PLAIN, &mixed, |_, _| {});
    let mut cuts = Vec::new();
    let mut at = 24;
    for packet in &mixed {
        let data = at + 16;
        let end = data + packet.data.len();
        cuts.extend(at.saturating_sub(3)..=data + 3);
        cuts.extend([(data + end) / 2, end - 1]);
        at = end;
    }
    cuts.extend(at - 3..=at);
    cuts.extend((0..bytes.len()).step_by(4093));
    assert_eq!(at, bytes.len());
    let served = compare_cuts("mixed.pcap", &bytes, cuts);
    let count = mostly_direct(&served, true);
    println!("mixed, {} bytes, {count} cuts: {served:?}", bytes.len());
}

/// Every packet of a capture, or the reader's error text in its place.
fn read_all(path: &Path) -> Vec<Result<RawPacket, String>> {
    let reader = CaptureReader::open(path).unwrap();
    reader
        .map(|next| next.map_err(|error| error.to_string()))
        .collect()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// A file's name and bytes.
type Named = (String, Vec<u8>);

/// The corpus capture, a pcapng file and a file larger than a socket's
/// buffer (the decompressing thread then waits on the reader), each
/// compressed as a user would: gzip, gzip in two members
/// (`cat a.gz b.gz`), and zstd.
fn compressed_cases(dir: &Path) -> Vec<(PathBuf, Vec<Named>)> {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/captures/kcat-mock.pcap");
    let packets: Vec<Vec<u8>> = (0..3000u32)
        .map(|i| ipv4_tcp(&i.to_be_bytes().repeat(100)))
        .collect();
    let frames: Vec<Vec<u8>> = packets[..3]
        .iter()
        .map(|packet| ethernet(0x0800, packet))
        .collect();
    let plain = [
        ("kcat-mock.pcap", std::fs::read(corpus).unwrap()),
        (
            "small.pcapng",
            pcapng(1, true, &frames, 1_700_000_000_000_000_000),
        ),
        ("large.pcap", microsecond_pcap(false, &packets)),
    ];
    plain
        .into_iter()
        .map(|(name, bytes)| {
            let path = dir.join(name);
            std::fs::write(&path, &bytes).unwrap();
            let (head, tail) = bytes.split_at(bytes.len() / 3);
            let compressed = vec![
                (format!("{name}.gz"), gzip(&bytes)),
                (format!("{name}.2.gz"), [gzip(head), gzip(tail)].concat()),
                (
                    format!("{name}.zst"),
                    zstd::encode_all(&bytes[..], 3).unwrap(),
                ),
            ];
            (path, compressed)
        })
        .collect()
}

#[test]
fn test_compressed_captures_read_as_the_plain_file() {
    let dir = temp_dir();
    for (plain, compressed) in compressed_cases(dir.path()) {
        let want = read_all(&plain);
        assert!(
            want.len() >= 3 && want.iter().all(Result::is_ok),
            "{plain:?}"
        );
        assert_eq!(compression_of(&plain), None);
        for (name, bytes) in compressed {
            let path = dir.path().join(&name);
            std::fs::write(&path, bytes).unwrap();
            let format = if name.ends_with(".zst") {
                "zstd"
            } else {
                "gzip"
            };
            assert_eq!(compression_of(&path), Some(format), "{name}");
            let link = CaptureReader::open(&plain).unwrap().link_type();
            assert_eq!(
                CaptureReader::open(&path).unwrap().link_type(),
                link,
                "{name}"
            );
            assert!(
                read_all(&path) == want,
                "{name} reads otherwise than {plain:?}"
            );
        }
    }
}

/// A compressed file cut short gives the packets decompressed before the
/// cut, exactly, then one error naming the compression, then nothing.
#[test]
fn test_a_compressed_capture_cut_short_reads_up_to_the_cut_and_says_why() {
    let dir = temp_dir();
    for (plain, compressed) in compressed_cases(dir.path()) {
        let want = read_all(&plain);
        for (name, bytes) in compressed {
            let format = if name.ends_with(".zst") {
                "zstd"
            } else {
                "gzip"
            };
            for keep in [bytes.len() / 4, bytes.len() / 2, bytes.len() - 1] {
                let path = dir.path().join(format!("cut-{keep}-{name}"));
                std::fs::write(&path, &bytes[..keep]).unwrap();
                // zstd gives nothing of a block cut short: there may be
                // no header to open.
                let mut reader = match CaptureReader::open(&path) {
                    Ok(reader) => reader,
                    Err(error) => {
                        let message = error.to_string();
                        assert!(
                            message.contains(&format!("{format} decompression failed")),
                            "{name} cut at {keep}: {message}"
                        );
                        continue;
                    }
                };
                let mut read = 0;
                let message = loop {
                    match reader.next_packet() {
                        Some(Ok(packet)) => {
                            assert!(
                                want[read] == Ok(packet),
                                "{name} cut at {keep}: packet {read}"
                            );
                            read += 1;
                        }
                        Some(Err(error)) => break error.to_string(),
                        None => panic!("{name} cut at {keep}: no error after {read} packets"),
                    }
                };
                // Cut in its trailer, a file may give every packet first.
                assert!(read <= want.len(), "{name} cut at {keep}");
                assert!(
                    message.contains(&format!("{format} decompression failed"))
                        && message.contains(&format!("packet {read}")),
                    "{name} cut at {keep}: {message}"
                );
                assert!(reader.next_packet().is_none());
                assert!(reader.next_packet().is_none());
            }
        }
    }
}

/// Decompressing threads alive in this process, by their names.
fn decompressing_threads() -> usize {
    let tasks = std::fs::read_dir("/proc/self/task").unwrap();
    tasks
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|name| matches!(name.trim_end(), "kwire gzip" | "kwire zstd"))
        .count()
}

/// The decompressing thread of a file larger than the socket's buffer,
/// blocked writing, stops when its reader is dropped half way, and when
/// libpcap refuses what it decompressed (libpcap then keeps its end of
/// the socket open: only the shutdown on drop reaches the thread). Other
/// tests' threads end at their files' ends: none is left once these are.
#[test]
fn test_a_compressed_reader_dropped_half_way_stops_its_thread() {
    let dir = temp_dir();
    let (_, compressed) = compressed_cases(dir.path()).pop().unwrap();
    for (name, bytes) in compressed {
        let path = dir.path().join(&name);
        std::fs::write(&path, &bytes).unwrap();
        let mut reader = CaptureReader::open(&path).unwrap();
        assert!(reader.next_packet().unwrap().is_ok());
        drop(reader);
    }
    let not_a_capture = dir.path().join("text.gz");
    std::fs::write(&not_a_capture, gzip(&[b'x'; 4 << 20])).unwrap();
    let refused = CaptureReader::open(&not_a_capture).unwrap_err().to_string();
    assert!(refused.contains("after gzip decompression"), "{refused}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while decompressing_threads() > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "a decompressing thread was left running"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn test_compressed_files_that_hold_no_capture_say_so() {
    let dir = temp_dir();
    let cases: [(&str, Vec<u8>, &str); 3] = [
        (
            "text.gz",
            gzip(b"not a capture, just some text\n"),
            "unknown file format (after gzip decompression)",
        ),
        (
            "header.gz",
            b"\x1f\x8b\x08\x00garbage".to_vec(),
            "gzip decompression failed",
        ),
        (
            "frame.zst",
            b"\x28\xb5\x2f\xfd\xff\xff\xff\xff".to_vec(),
            "zstd decompression failed",
        ),
    ];
    for (name, bytes, wanted) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let message = CaptureReader::open(&path).unwrap_err().to_string();
        assert!(message.contains(name), "{message}");
        assert!(message.contains(wanted), "{name}: {message}");
    }
}
