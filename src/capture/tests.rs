//! Capture tests: small capture files built here for each link type and
//! file format, edge cases of the file reader, and every real capture we
//! have run through the reader, the parser and the reassembler.

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
    let put32 = |out: &mut Vec<u8>, v: u32| {
        if big_endian {
            out.extend_from_slice(&v.to_be_bytes())
        } else {
            out.extend_from_slice(&v.to_le_bytes())
        }
    };
    let put16 = |out: &mut Vec<u8>, v: u16| {
        if big_endian {
            out.extend_from_slice(&v.to_be_bytes())
        } else {
            out.extend_from_slice(&v.to_le_bytes())
        }
    };
    let mut out = Vec::new();
    put32(&mut out, 0xa1b2_c3d4);
    put16(&mut out, 2);
    put16(&mut out, 4);
    put32(&mut out, 0);
    put32(&mut out, 0);
    put32(&mut out, 65535);
    put32(&mut out, 101);
    for (i, frame) in frames.iter().enumerate() {
        put32(&mut out, 1_700_000_000 + i as u32);
        put32(&mut out, 654_321);
        put32(&mut out, frame.len() as u32);
        put32(&mut out, frame.len() as u32);
        out.extend_from_slice(frame);
    }
    out
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
    fn block(out: &mut Vec<u8>, kind: u32, body: &[u8]) {
        let len = 12 + body.len() as u32;
        out.extend_from_slice(&kind.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(body);
        out.extend_from_slice(&len.to_le_bytes());
    }
    let mut out = Vec::new();
    let mut shb = Vec::new();
    shb.extend_from_slice(&0x1a2b_3c4du32.to_le_bytes());
    shb.extend_from_slice(&1u16.to_le_bytes());
    shb.extend_from_slice(&0u16.to_le_bytes());
    shb.extend_from_slice(&(-1i64).to_le_bytes());
    block(&mut out, 0x0a0d_0d0a, &shb);
    let mut idb = Vec::new();
    idb.extend_from_slice(&link.to_le_bytes());
    idb.extend_from_slice(&0u16.to_le_bytes());
    idb.extend_from_slice(&0u32.to_le_bytes());
    if nanos {
        // if_tsresol (9) = 10^-9, padded to 4 bytes; then opt_endofopt.
        idb.extend_from_slice(&[9, 0, 1, 0, 9, 0, 0, 0, 0, 0, 0, 0]);
    }
    block(&mut out, 1, &idb);
    for frame in frames {
        let mut epb = Vec::new();
        epb.extend_from_slice(&0u32.to_le_bytes());
        epb.extend_from_slice(&((ts_units >> 32) as u32).to_le_bytes());
        epb.extend_from_slice(&(ts_units as u32).to_le_bytes());
        epb.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        epb.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        epb.extend_from_slice(frame);
        while epb.len() % 4 != 0 {
            epb.push(0);
        }
        block(&mut out, 6, &epb);
    }
    out
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

fn capture_files(dir: &Path) -> Vec<PathBuf> {
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
    if !dir.is_dir() {
        println!(
            "skipping: {} is absent (public reference captures are not shipped with kwire)",
            dir.display()
        );
        return;
    }
    assert!(run_captures(&dir) > 0, "no captures in {}", dir.display());
}

#[test]
fn test_corpus_captures_parse_or_skip_every_packet() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/captures");
    if !dir.is_dir() {
        println!("skipping: {} is absent", dir.display());
        return;
    }
    run_captures(&dir);
}

#[test]
fn test_dash_reads_standard_input() {
    // The test runs itself again with a capture on stdin; the child's half
    // opens `-`.
    const CHILD: &str = "KWIRE_CAPTURE_STDIN_CHILD";
    if std::env::var_os(CHILD).is_some() {
        let mut reader = CaptureReader::open(Path::new("-")).unwrap();
        let mut count = 0;
        while let Some(p) = reader.next_packet() {
            check_v4_segment(&parse_tcp(reader.link_type(), &p.unwrap()).unwrap());
            count += 1;
        }
        println!("stdin packets={count}");
        return;
    }
    let dir = temp_dir();
    let path = dir.path().join("stdin.pcap");
    let frames = vec![ipv4_tcp(PAYLOAD), ipv4_tcp(PAYLOAD), ipv4_tcp(PAYLOAD)];
    std::fs::write(&path, microsecond_pcap(false, &frames)).unwrap();
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "capture::tests::test_dash_reads_standard_input",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .stdin(std::fs::File::open(&path).unwrap())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains("stdin packets=3"), "{stdout}");
}
