//! From a captured frame to a TCP segment: link, IP and TCP headers.
//!
//! Each link type is peeled down to an EtherType or a bare IP packet (the
//! fixed-size cooked and loopback headers are read here; Ethernet, VLAN tags,
//! IPv4 options, IPv6 extension headers and TCP are left to etherparse's lax
//! slicer, which accepts packets cut short by the snaplen). Anything that is
//! not one whole-header TCP segment is skipped with a [`SkipReason`]; nothing
//! here panics on wire data, and the payload handed on is a zero-copy slice of
//! the packet's buffer.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;

use bytes::{Buf, Bytes};
use etherparse::{EtherType, LaxNetSlice, LaxSlicedPacket, LenSource, TransportSlice};

use super::{LinkType, RawPacket};

/// One TCP segment as seen in the capture.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcpSegment {
    /// Index of the packet that carried it ([`RawPacket::index`]).
    pub packet: u64,
    /// Capture time in nanoseconds since the Unix epoch.
    pub ts_ns: i64,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    /// Sequence number (RFC 9293 section 3.1, "Sequence Number").
    pub seq: u32,
    /// Acknowledgment number, present only when the ACK bit is set
    /// (RFC 9293 section 3.1: the field is meaningful only with ACK).
    pub ack: Option<u32>,
    pub syn: bool,
    pub fin: bool,
    pub rst: bool,
    /// The captured payload, a slice of [`RawPacket::data`].
    pub payload: Bytes,
    /// The payload was cut by the snaplen: the IP length says more bytes were
    /// sent than the capture holds (`caplen < origlen`).
    pub snapped: bool,
    /// Length of the TCP payload on the wire, from the IP length fields;
    /// equal to `payload.len()` unless `snapped`. The reassembler needs it to
    /// account for the cut-off bytes as a gap instead of losing track of the
    /// sequence numbers.
    pub wire_len: u32,
}

/// Why a packet did not yield a TCP segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SkipReason {
    /// The link layer carries something other than IPv4/IPv6 (ARP, LLDP...).
    NotIp,
    /// IP, but not TCP (UDP, ICMP...).
    NotTcp,
    /// A header is damaged or cut off before the end of the TCP header.
    Malformed(String),
    /// An IP fragment; kwire does not reassemble IP fragments.
    Fragment,
    /// The capture's link type is not one kwire can parse.
    UnsupportedLink(i32),
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::NotIp => f.write_str("not ip"),
            SkipReason::NotTcp => f.write_str("not tcp"),
            SkipReason::Malformed(what) => write!(f, "malformed: {what}"),
            SkipReason::Fragment => f.write_str("ip fragment"),
            SkipReason::UnsupportedLink(number) => write!(f, "unsupported link type {number}"),
        }
    }
}

/// Address families found in `LINKTYPE_NULL` / `LINKTYPE_LOOP` headers.
/// AF_INET is 2 everywhere; AF_INET6 differs per OS (Linux 10, NetBSD and
/// OpenBSD 24, FreeBSD 28, Darwin 30).
const AF_INET: u32 = 2;
const AF_INET6: [u32; 4] = [10, 24, 28, 30];

/// Linux cooked header sizes (<https://www.tcpdump.org/linktypes/LINKTYPE_LINUX_SLL.html>,
/// `.../LINKTYPE_LINUX_SLL2.html`).
const SLL_LEN: usize = 16;
const SLL2_LEN: usize = 20;
/// ARPHRD_NETLINK: the cooked protocol field is a netlink protocol, not an
/// EtherType.
const ARPHRD_NETLINK: u16 = 824;

/// Parses the headers of one packet down to TCP.
pub fn parse_tcp(link: LinkType, packet: &RawPacket) -> Result<TcpSegment, SkipReason> {
    into_tcp(link, packet.clone())
}

/// [`parse_tcp`] for a packet that is done with: its segment's payload is
/// the packet's own view of its bytes, narrowed, rather than a second one
/// (each view costs an atomic count up and down).
pub fn into_tcp(link: LinkType, packet: RawPacket) -> Result<TcpSegment, SkipReason> {
    let (mut segment, payload) = tcp_headers(link, &packet)?;
    segment.payload = narrowed(packet.data, payload);
    Ok(segment)
}

/// `data` cut to `range`; a range that runs to its end (nearly every
/// payload) costs no second view.
fn narrowed(mut data: Bytes, range: Range<usize>) -> Bytes {
    if range.end == data.len() {
        data.advance(range.start);
        data
    } else {
        data.slice(range)
    }
}

/// The segment a packet carries, its payload left empty, and where that
/// payload lies in the packet.
fn tcp_headers(
    link: LinkType,
    packet: &RawPacket,
) -> Result<(TcpSegment, Range<usize>), SkipReason> {
    if link == LinkType::Ethernet {
        if let Some(segment) = plain_ethernet_ipv4_tcp(packet) {
            return Ok(segment);
        }
    }
    let data: &[u8] = &packet.data;
    let sliced = match link {
        LinkType::Ethernet => LaxSlicedPacket::from_ethernet(data)
            .map_err(|e| SkipReason::Malformed(format!("ethernet header: {e}")))?,
        LinkType::LinuxSll => {
            let (arphrd, protocol) = match (be_u16(data, 2), be_u16(data, 14)) {
                (Some(arphrd), Some(protocol)) if data.len() >= SLL_LEN => (arphrd, protocol),
                _ => return Err(truncated_link("linux cooked v1", SLL_LEN, data.len())),
            };
            ether_payload(arphrd, protocol, data.get(SLL_LEN..).unwrap_or_default())?
        }
        LinkType::LinuxSll2 => {
            // SLL2: protocol type u16 at 0, reserved u16, interface index u32,
            // ARPHRD type u16 at 8, packet type, address length, address[8].
            let (protocol, arphrd) = match (be_u16(data, 0), be_u16(data, 8)) {
                (Some(protocol), Some(arphrd)) if data.len() >= SLL2_LEN => (protocol, arphrd),
                _ => return Err(truncated_link("linux cooked v2", SLL2_LEN, data.len())),
            };
            ether_payload(arphrd, protocol, data.get(SLL2_LEN..).unwrap_or_default())?
        }
        LinkType::Null | LinkType::Loop => {
            let raw = match data.get(..4) {
                Some(&[a, b, c, d]) => [a, b, c, d],
                _ => return Err(truncated_link("loopback", 4, data.len())),
            };
            let family = if link == LinkType::Loop {
                u32::from_be_bytes(raw)
            } else {
                // Host byte order of the machine that captured: families are
                // small numbers, so whichever order gives one is the right one
                // (the same trick libpcap's printers use).
                let little = u32::from_le_bytes(raw);
                if little & 0xFFFF_0000 == 0 {
                    little
                } else {
                    u32::from_be_bytes(raw)
                }
            };
            if family != AF_INET && !AF_INET6.contains(&family) {
                return Err(SkipReason::NotIp);
            }
            ip_packet(data.get(4..).unwrap_or_default())?
        }
        LinkType::RawIp | LinkType::Ipv4 | LinkType::Ipv6 => ip_packet(data)?,
        LinkType::Other(number) => return Err(SkipReason::UnsupportedLink(number)),
    };
    segment_from(&sliced, packet)
}

/// Ethernet II header length and the IPv4 EtherType.
const ETHERNET_LEN: usize = 14;
const ETHERTYPE_IPV4: u16 = 0x0800;
/// IPv4 header without options (RFC 791 section 3.1), and the TCP header's
/// smallest size (RFC 9293 section 3.1).
const IPV4_LEN: usize = 20;
const TCP_MIN_LEN: usize = 20;
/// IPv4 flags and fragment offset: More Fragments and the offset mark a
/// fragment (Don't Fragment does not).
const IPV4_FRAGMENT_BITS: u16 = 0x3FFF;
/// TCP flag bits (RFC 9293 section 3.1).
const TCP_FIN: u8 = 0x01;
const TCP_SYN: u8 = 0x02;
const TCP_RST: u8 = 0x04;
const TCP_ACK: u8 = 0x10;

/// The common case read by hand, at a fraction of etherparse's cost per
/// packet: untagged Ethernet II, IPv4 without options, not a fragment, TCP,
/// and the IP packet whole in the capture with a usable total length.
/// `None` for anything else (VLAN tags, options, IPv6, a snapped or damaged
/// packet...), which etherparse then parses as it does every packet; what
/// both accept they read the same.
fn plain_ethernet_ipv4_tcp(packet: &RawPacket) -> Option<(TcpSegment, Range<usize>)> {
    let data: &[u8] = &packet.data;
    if be_u16(data, 12)? != ETHERTYPE_IPV4 {
        return None;
    }
    let ip = data.get(ETHERNET_LEN..)?;
    // Version 4, header length 5 words: no options.
    if *ip.first()? != 0x45
        || be_u16(ip, 6)? & IPV4_FRAGMENT_BITS != 0
        || *ip.get(9)? != etherparse::ip_number::TCP.0
    {
        return None;
    }
    // The total length cuts off Ethernet padding; a packet longer than the
    // capture (snapped) or shorter than its headers goes the slow way.
    let ip = ip.get(..usize::from(be_u16(ip, 2)?))?;
    let tcp = ip.get(IPV4_LEN..)?;
    let header_len = usize::from(*tcp.get(12)? >> 4) * 4;
    if header_len < TCP_MIN_LEN {
        return None;
    }
    let payload = range_in(&packet.data, tcp.get(header_len..)?)?;
    let address = |at: usize| -> Option<IpAddr> {
        match ip.get(at..at + 4)? {
            &[a, b, c, d] => Some(IpAddr::from([a, b, c, d])),
            _ => None,
        }
    };
    let be_u32 = |at: usize| -> Option<u32> {
        match tcp.get(at..at + 4)? {
            &[a, b, c, d] => Some(u32::from_be_bytes([a, b, c, d])),
            _ => None,
        }
    };
    let flags = *tcp.get(13)?;
    let segment = TcpSegment {
        packet: packet.index,
        ts_ns: packet.ts_ns,
        src: SocketAddr::new(address(12)?, be_u16(tcp, 0)?),
        dst: SocketAddr::new(address(16)?, be_u16(tcp, 2)?),
        seq: be_u32(4)?,
        ack: if flags & TCP_ACK != 0 {
            Some(be_u32(8)?)
        } else {
            None
        },
        syn: flags & TCP_SYN != 0,
        fin: flags & TCP_FIN != 0,
        rst: flags & TCP_RST != 0,
        snapped: false,
        wire_len: u32::try_from(payload.len()).ok()?,
        payload: Bytes::new(),
    };
    Some((segment, payload))
}

fn truncated_link(what: &str, need: usize, have: usize) -> SkipReason {
    SkipReason::Malformed(format!(
        "{what} header needs {need} bytes, packet has {have}"
    ))
}

fn be_u16(data: &[u8], at: usize) -> Option<u16> {
    match data.get(at..at.checked_add(2)?) {
        Some(&[a, b]) => Some(u16::from_be_bytes([a, b])),
        _ => None,
    }
}

/// The payload of a cooked header whose protocol field is an EtherType.
fn ether_payload(
    arphrd: u16,
    protocol: u16,
    payload: &[u8],
) -> Result<LaxSlicedPacket<'_>, SkipReason> {
    if arphrd == ARPHRD_NETLINK {
        return Err(SkipReason::NotIp);
    }
    // Values up to 1500 are 802.3 lengths / Linux pseudo-protocols
    // (ETH_P_802_2 and friends), never IP.
    if protocol <= 1500 {
        return Err(SkipReason::NotIp);
    }
    Ok(LaxSlicedPacket::from_ether_type(
        EtherType(protocol),
        payload,
    ))
}

fn ip_packet(data: &[u8]) -> Result<LaxSlicedPacket<'_>, SkipReason> {
    LaxSlicedPacket::from_ip(data).map_err(|e| SkipReason::Malformed(format!("ip header: {e}")))
}

/// Bytes of the IP packet that the capture does not hold. The IP length
/// field says how long the packet was; when it is unusable (0, as in
/// captures of TSO/GSO super-segments) the pcap record's original length is
/// the fallback.
fn missing_ip_bytes(net: &LaxNetSlice<'_>, packet: &RawPacket) -> usize {
    let unknown_len = net
        .ip_payload_ref()
        .is_some_and(|p| p.len_source == LenSource::Slice && !p.incomplete);
    if unknown_len {
        let cut = packet.origlen.saturating_sub(packet.caplen);
        return usize::try_from(cut).unwrap_or(usize::MAX);
    }
    match net {
        LaxNetSlice::Ipv4(v4) => {
            if !v4.payload().incomplete {
                return 0;
            }
            let claimed = usize::from(v4.header().total_len());
            let auth = v4.extensions().auth.map_or(0, |a| a.slice().len());
            let held = v4.header().slice().len() + auth + v4.payload().payload.len();
            claimed.saturating_sub(held)
        }
        LaxNetSlice::Ipv6(v6) => {
            if !v6.payload().incomplete {
                return 0;
            }
            let claimed = 40 + usize::from(v6.header().payload_length());
            let held = v6.header().slice().len()
                + v6.extensions().slice().len()
                + v6.payload().payload.len();
            claimed.saturating_sub(held)
        }
        LaxNetSlice::Arp(_) => 0,
    }
}

fn segment_from(
    sliced: &LaxSlicedPacket<'_>,
    packet: &RawPacket,
) -> Result<(TcpSegment, Range<usize>), SkipReason> {
    let net = match &sliced.net {
        Some(net) => net,
        None => {
            return Err(match &sliced.stop_err {
                Some((error, layer)) => SkipReason::Malformed(format!("{layer}: {error}")),
                None => SkipReason::NotIp,
            })
        }
    };
    let (src_ip, dst_ip, ip_payload) = match net {
        LaxNetSlice::Ipv4(v4) => (
            IpAddr::V4(v4.header().source_addr()),
            IpAddr::V4(v4.header().destination_addr()),
            v4.payload(),
        ),
        LaxNetSlice::Ipv6(v6) => (
            IpAddr::V6(v6.header().source_addr()),
            IpAddr::V6(v6.header().destination_addr()),
            v6.payload(),
        ),
        LaxNetSlice::Arp(_) => return Err(SkipReason::NotIp),
    };
    if ip_payload.fragmented {
        return Err(SkipReason::Fragment);
    }
    let tcp = match &sliced.transport {
        Some(TransportSlice::Tcp(tcp)) => tcp,
        Some(_) => return Err(SkipReason::NotTcp),
        None => {
            return Err(match &sliced.stop_err {
                Some((error, layer)) => SkipReason::Malformed(format!("{layer}: {error}")),
                None if ip_payload.ip_number != etherparse::ip_number::TCP => SkipReason::NotTcp,
                None => SkipReason::Malformed("tcp header missing".to_string()),
            })
        }
    };
    let payload = range_in(&packet.data, tcp.payload())
        .ok_or_else(|| SkipReason::Malformed("tcp payload outside the packet".to_string()))?;
    let missing = missing_ip_bytes(net, packet);
    let wire_len = payload
        .len()
        .checked_add(missing)
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| SkipReason::Malformed("tcp payload longer than 4 GiB".to_string()))?;
    let segment = TcpSegment {
        packet: packet.index,
        ts_ns: packet.ts_ns,
        src: SocketAddr::new(src_ip, tcp.source_port()),
        dst: SocketAddr::new(dst_ip, tcp.destination_port()),
        seq: tcp.sequence_number(),
        ack: tcp.ack().then(|| tcp.acknowledgment_number()),
        syn: tcp.syn(),
        fin: tcp.fin(),
        rst: tcp.rst(),
        payload: Bytes::new(),
        snapped: missing > 0,
        wire_len,
    };
    Ok((segment, payload))
}

/// Where `part` lies in `whole`, if it lies inside it.
fn range_in(whole: &[u8], part: &[u8]) -> Option<Range<usize>> {
    let start = (part.as_ptr() as usize).checked_sub(whole.as_ptr() as usize)?;
    let end = start.checked_add(part.len())?;
    (end <= whole.len()).then_some(start..end)
}
