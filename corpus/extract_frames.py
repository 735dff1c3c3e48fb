#!/usr/bin/env python3
"""Cut Kafka frames out of a pcap capture (stdlib only).

Usage: extract_frames.py CAPTURE.pcap [OUT.frames]
       extract_frames.py --all CAPTURES_DIR FRAMES_DIR

Reads a libpcap (or pcapng) file, reassembles both directions of every TCP
connection by sequence number (duplicates, retransmits and out-of-order
segments are tolerated), finds the client side (the side whose byte stream
starts with a plausible Kafka request header: int32 size, int16 api_key 0..100,
int16 api_version), cuts each direction into size-prefixed frames, and pairs
each response with its request by correlation id.

Output: one frame per line,

    <kind> <api_key> <api_version> <conn-index> <hex of the frame, size prefix included>

kind is `req`, `resp` or `sasl-raw`.  A response carries the api_key/version
of the request it answers; a response no request matches is written with
api_key -1 and api_version -1.  `sasl-raw` lines are the size-prefixed SASL
tokens exchanged without Kafka headers after a SaslHandshake v0; they carry
the handshake's api_key (17) and version and are preceded by a comment giving
their direction (c2s or s2c).  Lines starting with `#` are comments.

Lines are ordered by connection (connections numbered 0.. in the order their
first packet appears in the capture), then by request order; each response
follows its request.  Requests without a response (Produce with acks=0, or a
connection closed before the answer) are followed by a `# no response` comment.
"""

import os
import struct
import sys

MAX_API_KEY = 100
MAX_API_VERSION = 30
MAX_FRAME = 100 * 1024 * 1024
API_SASL_HANDSHAKE = 17
API_PRODUCE = 0


# ----------------------------------------------------------------- pcap reading

def read_packets(path):
    """Yield (timestamp, linktype, packet bytes) from a pcap or pcapng file."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 4:
        raise ValueError(f"{path}: too short to be a capture")
    magic = data[:4]
    if magic == b"\x0a\x0d\x0d\x0a":
        yield from _read_pcapng(data)
        return
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        endian = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        endian = ">"
    else:
        raise ValueError(f"{path}: not a pcap/pcapng file (magic {magic.hex()})")
    nanos = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    linktype = struct.unpack(endian + "I", data[20:24])[0] & 0x0FFFFFFF
    off = 24
    while off + 16 <= len(data):
        sec, frac, incl, _orig = struct.unpack(endian + "IIII", data[off:off + 16])
        off += 16
        pkt = data[off:off + incl]
        off += incl
        yield sec + frac / (1e9 if nanos else 1e6), linktype, pkt


def _read_pcapng(data):
    off = 0
    endian = "<"
    iface_links = []
    while off + 12 <= len(data):
        btype = struct.unpack(endian + "I", data[off:off + 4])[0]
        if btype == 0x0A0D0D0A:
            bom = data[off + 8:off + 12]
            endian = "<" if bom == b"\x4d\x3c\x2b\x1a" else ">"
            iface_links = []
        blen = struct.unpack(endian + "I", data[off + 4:off + 8])[0]
        if blen < 12:
            break
        body = data[off + 8:off + blen - 4]
        if btype == 1:  # interface description block
            iface_links.append(struct.unpack(endian + "H", body[:2])[0])
        elif btype == 6:  # enhanced packet block
            iface, th, tl, incl, _orig = struct.unpack(endian + "IIIII", body[:20])
            ts = ((th << 32) | tl) / 1e6
            link = iface_links[iface] if iface < len(iface_links) else 1
            yield ts, link, body[20:20 + incl]
        off += blen


def parse_tcp(linktype, pkt):
    """Return (src, sport, dst, dport, seq, flags, payload) or None."""
    if linktype == 1:  # Ethernet
        if len(pkt) < 14:
            return None
        etype = struct.unpack(">H", pkt[12:14])[0]
        off = 14
        while etype in (0x8100, 0x88A8) and len(pkt) >= off + 4:
            etype = struct.unpack(">H", pkt[off + 2:off + 4])[0]
            off += 4
        ip = pkt[off:]
    elif linktype == 113:  # Linux cooked SLL
        etype = struct.unpack(">H", pkt[14:16])[0]
        ip = pkt[16:]
    elif linktype == 276:  # Linux cooked SLL2
        etype = struct.unpack(">H", pkt[0:2])[0]
        ip = pkt[20:]
    elif linktype in (0, 108):  # BSD loopback
        fam = struct.unpack("<I" if linktype == 0 else ">I", pkt[:4])[0]
        etype = 0x0800 if fam == 2 else 0x86DD
        ip = pkt[4:]
    elif linktype in (101, 12, 14):  # raw IP
        etype = 0x0800 if ip_version(pkt) == 4 else 0x86DD
        ip = pkt
    else:
        return None
    if etype == 0x0800:
        if len(ip) < 20:
            return None
        ihl = (ip[0] & 0x0F) * 4
        total = struct.unpack(">H", ip[2:4])[0]
        if ip[9] != 6:
            return None
        src, dst = fmt_ip4(ip[12:16]), fmt_ip4(ip[16:20])
        tcp = ip[ihl:total] if total >= ihl else ip[ihl:]
    elif etype == 0x86DD:
        if len(ip) < 40:
            return None
        plen = struct.unpack(">H", ip[4:6])[0]
        nxt = ip[6]
        src, dst = fmt_ip6(ip[8:24]), fmt_ip6(ip[24:40])
        rest = ip[40:40 + plen]
        while nxt in (0, 43, 60) and len(rest) >= 8:  # hop-by-hop, routing, dest opts
            nxt, hlen = rest[0], (rest[1] + 1) * 8
            rest = rest[hlen:]
        if nxt != 6:
            return None
        tcp = rest
    else:
        return None
    if len(tcp) < 20:
        return None
    sport, dport, seq = struct.unpack(">HHI", tcp[:8])
    doff = (tcp[12] >> 4) * 4
    flags = tcp[13]
    return src, sport, dst, dport, seq, flags, bytes(tcp[doff:])


def ip_version(pkt):
    return pkt[0] >> 4 if pkt else 0


def fmt_ip4(b):
    return ".".join(str(x) for x in b)


def fmt_ip6(b):
    groups = [f"{x:x}" for x in struct.unpack(">8H", b)]
    s = ":".join(groups)
    # compress the longest run of zero groups, as usual
    best = (0, 0)
    i = 0
    while i < 8:
        if groups[i] == "0":
            j = i
            while j < 8 and groups[j] == "0":
                j += 1
            if j - i > best[1] - best[0]:
                best = (i, j)
            i = j
        else:
            i += 1
    if best[1] - best[0] > 1:
        s = ":".join(groups[:best[0]]) + "::" + ":".join(groups[best[1]:])
    return "[" + s + "]"


# ------------------------------------------------------------- TCP reassembly

SYN, FIN, RST, ACK = 0x02, 0x01, 0x04, 0x10


class Direction:
    def __init__(self, src, sport, dst, dport):
        self.endpoint = (src, sport, dst, dport)
        self.isn = None          # sequence number of the first payload byte
        self.segments = []       # (seq, timestamp, payload)
        self.first_data_ts = None
        self.syn_ts = None

    def add(self, ts, seq, flags, payload):
        if flags & SYN:
            if self.syn_ts is None:
                self.syn_ts = ts
            self.isn = (seq + 1) & 0xFFFFFFFF
        if payload:
            self.segments.append((seq, ts, payload))
            if self.first_data_ts is None:
                self.first_data_ts = ts

    def stream(self):
        """Return (bytes, [(stream offset, timestamp)], warnings)."""
        if not self.segments:
            return b"", [], []
        base = self.isn if self.isn is not None else self.segments[0][0]
        segs = sorted(((s - base) & 0xFFFFFFFF, ts, p) for s, ts, p in self.segments)
        out = bytearray()
        times = []
        warnings = []
        for rel, ts, p in segs:
            if rel > 0x7FFFFFFF:  # before base: retransmit of pre-capture data
                continue
            end = rel + len(p)
            if end <= len(out):
                continue  # full duplicate
            if rel > len(out):
                warnings.append(f"gap of {rel - len(out)} bytes at offset {len(out)}")
                break
            times.append((len(out), ts))
            out += p[len(out) - rel:]
        return bytes(out), times, warnings


class Connection:
    def __init__(self, index_hint, key, first_ts):
        self.order = index_hint
        self.key = key
        self.first_ts = first_ts
        self.dirs = {}
        self.closed = False

    def direction(self, src, sport, dst, dport):
        k = (src, sport, dst, dport)
        if k not in self.dirs:
            self.dirs[k] = Direction(src, sport, dst, dport)
        return self.dirs[k]


def reassemble(path):
    conns = []
    current = {}
    for ts, link, pkt in read_packets(path):
        t = parse_tcp(link, pkt)
        if t is None:
            continue
        src, sport, dst, dport, seq, flags, payload = t
        key = tuple(sorted([(src, sport), (dst, dport)]))
        conn = current.get(key)
        pure_syn = (flags & SYN) and not (flags & ACK)
        if conn is not None and pure_syn:
            d = conn.dirs.get((src, sport, dst, dport))
            if d is not None and d.isn is not None and d.isn != ((seq + 1) & 0xFFFFFFFF):
                conn = None  # tuple reused by a new connection
            elif any(x.segments for x in conn.dirs.values()):
                conn = None
        if conn is None:
            conn = Connection(len(conns), key, ts)
            conns.append(conn)
            current[key] = conn
        conn.direction(src, sport, dst, dport).add(ts, seq, flags, payload)
    return conns


# ------------------------------------------------------------- Kafka framing

def cut_frames(buf):
    """Split a byte stream into size-prefixed frames; return (frames, trailing)."""
    frames = []
    off = 0
    while off + 4 <= len(buf):
        size = struct.unpack(">i", buf[off:off + 4])[0]
        if size < 0 or size > MAX_FRAME or off + 4 + size > len(buf):
            break
        frames.append((off, buf[off:off + 4 + size]))
        off += 4 + size
    return frames, len(buf) - off


def looks_like_request(frame, min_corr=None):
    """Plausible Kafka request header v0+?  frame includes the size prefix."""
    if len(frame) < 12:
        return False
    api_key, ver, corr = struct.unpack(">hhi", frame[4:12])
    if not (0 <= api_key <= MAX_API_KEY and 0 <= ver <= MAX_API_VERSION):
        return False
    if min_corr is not None and not (min_corr < corr <= min_corr + 100000):
        return False
    if api_key == 7 and ver == 0:  # ControlledShutdown v0 has no client_id
        return True
    if len(frame) < 14:
        return False
    cid_len = struct.unpack(">h", frame[12:14])[0]
    return cid_len == -1 or 0 <= cid_len <= len(frame) - 14


def request_header(frame):
    api_key, ver, corr = struct.unpack(">hhi", frame[4:12])
    return api_key, ver, corr


def produce_acks(frame, ver):
    """acks of a Produce request, or None when it cannot be parsed."""
    try:
        off = 12
        cid_len = struct.unpack(">h", frame[off:off + 2])[0]
        off += 2 + max(cid_len, 0)
        if ver >= 9:  # flexible: header tagged fields, compact transactional_id
            off = skip_tagged_fields(frame, off)
            n, off = read_uvarint(frame, off)
            off += max(n - 1, 0)
        elif ver >= 3:
            n = struct.unpack(">h", frame[off:off + 2])[0]
            off += 2 + max(n, 0)
        return struct.unpack(">h", frame[off:off + 2])[0]
    except (struct.error, IndexError):
        return None


def read_uvarint(b, off):
    shift = 0
    val = 0
    while True:
        x = b[off]
        off += 1
        val |= (x & 0x7F) << shift
        if not x & 0x80:
            return val, off
        shift += 7


def skip_tagged_fields(b, off):
    n, off = read_uvarint(b, off)
    for _ in range(n):
        _tag, off = read_uvarint(b, off)
        size, off = read_uvarint(b, off)
        off += size
    return off


def sasl_mechanism(frame):
    try:
        off = 12
        cid_len = struct.unpack(">h", frame[off:off + 2])[0]
        off += 2 + max(cid_len, 0)
        n = struct.unpack(">h", frame[off:off + 2])[0]
        return frame[off + 2:off + 2 + n].decode("ascii", "replace")
    except (struct.error, IndexError):
        return "?"


def identify_client(conn):
    """Return (client Direction, server Direction) or None."""
    dirs = list(conn.dirs.values())
    cands = []
    for d in dirs:
        buf, _, _ = d.stream()
        frames, _ = cut_frames(buf)
        if frames and looks_like_request(frames[0][1]):
            cands.append(d)
    if not cands:
        return None
    if len(cands) > 1:
        # both look like requests: the one that sent first is the client
        cands.sort(key=lambda d: (d.first_data_ts, d.syn_ts is None))
    client = cands[0]
    others = [d for d in dirs if d is not client]
    if others:
        server = others[0]
    else:
        s, sp, dd, dp = client.endpoint
        server = Direction(dd, dp, s, sp)
    return client, server


def analyse(conn, idx):
    """Return the output lines (without trailing newline) for one connection."""
    lines = []
    pair = identify_client(conn)
    if pair is None:
        desc = " <-> ".join(f"{a}:{p}" for a, p in conn.key)
        lines.append(f"# conn {idx} {desc}: no Kafka request seen, skipped")
        return lines, None
    client, server = pair
    cs, _ct, cwarn = client.stream()
    ss, _st, swarn = server.stream()
    c_src, c_sport, c_dst, c_dport = client.endpoint
    lines.append(f"# conn {idx} client {c_src}:{c_sport} -> server {c_dst}:{c_dport}")
    for w in cwarn:
        lines.append(f"# conn {idx} c2s: {w}")
    for w in swarn:
        lines.append(f"# conn {idx} s2c: {w}")

    cframes, ctrail = cut_frames(cs)
    sframes, strail = cut_frames(ss)

    # --- client side: classify each frame as request or raw SASL token
    items = []  # dicts in client order
    raw_mode = False
    last_corr = None
    for _off, fr in cframes:
        if raw_mode and not looks_like_request(fr, last_corr):
            items.append({"kind": "sasl-raw", "dir": "c2s", "frame": fr,
                          "key": API_SASL_HANDSHAKE, "ver": raw_ver})
            continue
        if raw_mode:
            raw_mode = False
        if not looks_like_request(fr):
            items.append({"kind": "unparsed", "dir": "c2s", "frame": fr})
            continue
        key, ver, corr = request_header(fr)
        last_corr = corr
        it = {"kind": "req", "frame": fr, "key": key, "ver": ver, "corr": corr,
              "resp": None}
        if key == API_PRODUCE:
            it["acks"] = produce_acks(fr, ver)
        items.append(it)
        if key == API_SASL_HANDSHAKE and ver == 0:
            raw_mode = True
            raw_ver = ver
            it["sasl"] = sasl_mechanism(fr)

    # --- server side: match responses by correlation id (in request order)
    reqs = [it for it in items if it["kind"] == "req"]
    pending = list(reqs)
    server_raw = []          # raw SASL tokens from the server, in order
    unmatched = []
    after_handshake = False
    for _off, fr in sframes:
        corr = struct.unpack(">i", fr[4:8])[0] if len(fr) >= 8 else None
        match = None
        if corr is not None:
            for i, r in enumerate(pending):
                if r["corr"] == corr:
                    match = pending.pop(i)
                    break
        if match is not None:
            match["resp"] = fr
            after_handshake = (match["key"] == API_SASL_HANDSHAKE and match["ver"] == 0
                               and len(fr) >= 10 and fr[8:10] == b"\x00\x00")
            continue
        if after_handshake:
            server_raw.append(fr)
        else:
            unmatched.append(fr)

    # --- interleave server raw tokens after the client raw tokens
    raw_iter = iter(server_raw)
    for it in items:
        if it["kind"] == "req":
            lines.append(f"req {it['key']} {it['ver']} {idx} {it['frame'].hex()}")
            if it["resp"] is not None:
                lines.append(f"resp {it['key']} {it['ver']} {idx} {it['resp'].hex()}")
            elif it.get("acks") == 0:
                lines.append(f"# no response (acks=0), correlation id {it['corr']}")
            else:
                lines.append(f"# no response, correlation id {it['corr']}")
        elif it["kind"] == "sasl-raw":
            lines.append(f"# sasl-raw c2s conn {idx}")
            lines.append(f"sasl-raw {it['key']} {it['ver']} {idx} {it['frame'].hex()}")
            tok = next(raw_iter, None)
            if tok is not None:
                lines.append(f"# sasl-raw s2c conn {idx}")
                lines.append(f"sasl-raw {it['key']} {it['ver']} {idx} {tok.hex()}")
        else:
            lines.append(f"# conn {idx} c2s: frame that is not a Kafka request: "
                         f"{it['frame'][:64].hex()}")
    for tok in raw_iter:
        lines.append(f"# sasl-raw s2c conn {idx}")
        lines.append(f"sasl-raw {API_SASL_HANDSHAKE} 0 {idx} {tok.hex()}")
    for fr in unmatched:
        lines.append(f"resp -1 -1 {idx} {fr.hex()}")
    if ctrail:
        lines.append(f"# conn {idx} c2s: {ctrail} trailing bytes (incomplete frame)")
    if strail:
        lines.append(f"# conn {idx} s2c: {strail} trailing bytes (incomplete frame)")
    return lines, reqs


def extract(pcap, out_path):
    conns = reassemble(pcap)
    body = []
    nreq = nresp = 0
    idx = 0
    for conn in conns:
        lines, reqs = analyse(conn, idx)
        if reqs is None:
            continue  # not a Kafka connection: no index consumed
        idx += 1
        nreq += len(reqs)
        nresp += sum(1 for r in reqs if r["resp"] is not None)
        body.extend(lines)
    header = [
        f"# kwire corpus frames cut from captures/{os.path.basename(pcap)}",
        "# by corpus/extract_frames.py; format: <req|resp|sasl-raw> <api_key> "
        "<api_version> <conn-index> <hex frame incl. size prefix>",
        f"# {idx} Kafka connections, {nreq} requests, {nresp} responses paired",
    ]
    with open(out_path, "w") as f:
        f.write("\n".join(header + body) + "\n")
    return idx, nreq, nresp


def main(argv):
    if len(argv) >= 2 and argv[1] == "--all":
        if len(argv) != 4:
            print(__doc__, file=sys.stderr)
            return 2
        cap_dir, out_dir = argv[2], argv[3]
        os.makedirs(out_dir, exist_ok=True)
        for name in sorted(os.listdir(cap_dir)):
            if not name.endswith((".pcap", ".pcapng")):
                continue
            base = name.rsplit(".", 1)[0]
            res = extract(os.path.join(cap_dir, name),
                          os.path.join(out_dir, base + ".frames"))
            print(f"{name}: {res[0]} connections, {res[1]} requests, {res[2]} responses")
        return 0
    if len(argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    pcap = argv[1]
    out = argv[2] if len(argv) == 3 else os.path.splitext(pcap)[0] + ".frames"
    res = extract(pcap, out)
    print(f"{os.path.basename(pcap)}: {res[0]} connections, {res[1]} requests, "
          f"{res[2]} responses")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
