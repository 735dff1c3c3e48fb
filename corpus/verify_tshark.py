#!/usr/bin/env python3
"""Cross-check a .frames file against Wireshark's Kafka dissector (stdlib + tshark).

Usage: verify_tshark.py CAPTURE.pcap FRAMES.frames

For every connection of the frames file, the sequence of requests
(api_key, api_version, correlation_id) must equal the one tshark decodes
from the capture when the connection's server port is decoded as Kafka.
Exit status 0 when all connections agree, 1 otherwise.  Requests sent
after a SaslHandshake v0 (raw SASL tokens) are not Kafka-framed and are
not decoded by tshark either, so they are left out on both sides.
"""

import re
import struct
import subprocess
import sys
from collections import defaultdict

CONN_RE = re.compile(r"^# conn (\d+) client (\S+):(\d+) -> server (\S+):(\d+)$")


def frames_requests(path):
    conns = {}          # idx -> (client port, server port)
    reqs = defaultdict(list)
    with open(path) as f:
        for line in f:
            m = CONN_RE.match(line.strip())
            if m:
                conns[int(m.group(1))] = (int(m.group(3)), int(m.group(5)))
                continue
            if line.startswith("req "):
                _, key, ver, idx, hexs = line.split()
                b = bytes.fromhex(hexs)
                corr = struct.unpack(">i", b[8:12])[0]
                reqs[int(idx)].append((int(key), int(ver), corr))
    return conns, reqs


def tshark_requests(pcap, server_ports):
    cmd = ["tshark", "-r", pcap, "-n"]
    for p in sorted(server_ports):
        cmd += ["-d", f"tcp.port=={p},kafka"]
    cmd += ["-Y", "kafka", "-T", "fields", "-E", "separator=/t",
            "-e", "tcp.srcport", "-e", "tcp.dstport",
            "-e", "kafka.request_key", "-e", "kafka.api_version",
            "-e", "kafka.correlation_id"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    reqs = defaultdict(list)  # (client port, server port) -> list
    for line in out.splitlines():
        cols = line.split("\t")
        if len(cols) < 5:
            continue
        sport, dport = int(cols[0]), int(cols[1])
        if dport not in server_ports:
            continue  # a response
        keys = [int(x) for x in cols[2].split(",") if x]
        vers = [int(x) for x in cols[3].split(",") if x]
        corrs = [int(x) for x in cols[4].split(",") if x]
        if not (len(keys) == len(vers) == len(corrs)):
            reqs[(sport, dport)].append(("tshark-fields-mismatch", cols))
            continue
        reqs[(sport, dport)].extend(zip(keys, vers, corrs))
    return reqs


def main(argv):
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    pcap, frames = argv[1], argv[2]
    conns, mine = frames_requests(frames)
    server_ports = {s for _, s in conns.values()}
    if not server_ports:
        print(f"{frames}: no connections")
        return 1
    theirs = tshark_requests(pcap, server_ports)
    ok = True
    total = 0
    for idx, (cport, sport) in sorted(conns.items()):
        a = mine.get(idx, [])
        b = theirs.get((cport, sport), [])
        # tshark cannot tell a raw SASL token from a request; drop what follows
        # a SaslHandshake v0 on its side until the next request we also have.
        if a != b:
            sa = set(a)
            b2 = [x for x in b if x in sa]
            if a == b2 and len(b) > len(b2):
                print(f"conn {idx}: tshark decoded {len(b) - len(b2)} extra PDU(s) "
                      f"(raw SASL tokens), ignored")
                b = b2
        if a != b:
            ok = False
            print(f"conn {idx} ({cport}->{sport}): MISMATCH\n  frames: {a}\n  tshark: {b}")
        total += len(a)
    print(f"{frames}: {len(conns)} connections, {total} requests, "
          f"{'agree with tshark' if ok else 'DISAGREE with tshark'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
