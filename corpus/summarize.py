#!/usr/bin/env python3
"""Summarize .frames files (stdlib only).

Usage: summarize.py FRAMES...                 print the summary (markdown)
       summarize.py --readme README.md FRAMES...  replace the generated block
                                                  of README.md with it

For every frames file: a table of frame counts per (api_key, api_version),
requests and responses separately, and what the record data carried: record
batch magic (0, 1, 2), compression codec, transactional and control batches
(with the control record type, COMMIT or ABORT), LZ4 frame header checksum
flavour (standard, or the broken one of Kafka's old magic 0/1 LZ4 format),
Produce acks values and SASL mechanisms.  Record data is looked at in Produce
requests (v0-v13) and Fetch responses (v0-v17).
"""

import os
import re
import struct
import sys
from collections import Counter

API_NAMES = {
    0: "Produce", 1: "Fetch", 2: "ListOffsets", 3: "Metadata",
    4: "LeaderAndIsr", 5: "StopReplica", 6: "UpdateMetadata",
    7: "ControlledShutdown", 8: "OffsetCommit", 9: "OffsetFetch",
    10: "FindCoordinator", 11: "JoinGroup", 12: "Heartbeat", 13: "LeaveGroup",
    14: "SyncGroup", 15: "DescribeGroups", 16: "ListGroups",
    17: "SaslHandshake", 18: "ApiVersions", 19: "CreateTopics",
    20: "DeleteTopics", 21: "DeleteRecords", 22: "InitProducerId",
    23: "OffsetForLeaderEpoch", 24: "AddPartitionsToTxn", 25: "AddOffsetsToTxn",
    26: "EndTxn", 27: "WriteTxnMarkers", 28: "TxnOffsetCommit",
    29: "DescribeAcls", 30: "CreateAcls", 31: "DeleteAcls",
    32: "DescribeConfigs", 33: "AlterConfigs", 34: "AlterReplicaLogDirs",
    35: "DescribeLogDirs", 36: "SaslAuthenticate", 37: "CreatePartitions",
    38: "CreateDelegationToken", 39: "RenewDelegationToken",
    40: "ExpireDelegationToken", 41: "DescribeDelegationToken",
    42: "DeleteGroups", 43: "ElectLeaders", 44: "IncrementalAlterConfigs",
    45: "AlterPartitionReassignments", 46: "ListPartitionReassignments",
    47: "OffsetDelete", 48: "DescribeClientQuotas", 49: "AlterClientQuotas",
    50: "DescribeUserScramCredentials", 51: "AlterUserScramCredentials",
    60: "DescribeCluster", 61: "DescribeProducers", 64: "UnregisterBroker",
    65: "DescribeTransactions", 66: "ListTransactions",
    68: "ConsumerGroupHeartbeat", 69: "ConsumerGroupDescribe",
    71: "GetTelemetrySubscriptions", 72: "PushTelemetry",
    75: "DescribeTopicPartitions",
}
CODECS = {0: "none", 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}
PRODUCE_FLEX, FETCH_FLEX = 9, 12


class Reader:
    def __init__(self, b, off=0, flex=False):
        self.b, self.off, self.flex = b, off, flex

    def take(self, n):
        if n < 0 or self.off + n > len(self.b):
            raise ValueError("short read")
        v = self.b[self.off:self.off + n]
        self.off += n
        return v

    def i8(self):
        return struct.unpack(">b", self.take(1))[0]

    def i16(self):
        return struct.unpack(">h", self.take(2))[0]

    def i32(self):
        return struct.unpack(">i", self.take(4))[0]

    def i64(self):
        return struct.unpack(">q", self.take(8))[0]

    def uvarint(self):
        shift = val = 0
        while True:
            x = self.take(1)[0]
            val |= (x & 0x7F) << shift
            if not x & 0x80:
                return val
            shift += 7

    def varint(self):
        v = self.uvarint()
        return (v >> 1) ^ -(v & 1)

    def string(self):
        n = self.uvarint() - 1 if self.flex else self.i16()
        return None if n < 0 else self.take(n).decode("utf-8", "replace")

    def bytes_(self):
        n = self.uvarint() - 1 if self.flex else self.i32()
        return None if n < 0 else self.take(n)

    def array_len(self):
        return self.uvarint() - 1 if self.flex else self.i32()

    def tags(self):
        if self.flex:
            for _ in range(self.uvarint()):
                self.uvarint()
                self.take(self.uvarint())


# ------------------------------------------------------------------ xxhash32

def xxh32(data, seed=0):
    P1, P2, P3, P4, P5 = 2654435761, 2246822519, 3266489917, 668265263, 374761393
    M = 0xFFFFFFFF

    def rotl(x, r):
        return ((x << r) | (x >> (32 - r))) & M

    n = len(data)
    i = 0
    if n >= 16:
        v = [(seed + P1 + P2) & M, (seed + P2) & M, seed & M, (seed - P1) & M]
        while i + 16 <= n:
            for j in range(4):
                lane = struct.unpack("<I", data[i + 4 * j:i + 4 * j + 4])[0]
                v[j] = (rotl((v[j] + lane * P2) & M, 13) * P1) & M
            i += 16
        h = (rotl(v[0], 1) + rotl(v[1], 7) + rotl(v[2], 12) + rotl(v[3], 18)) & M
    else:
        h = (seed + P5) & M
    h = (h + n) & M
    while i + 4 <= n:
        h = (rotl((h + struct.unpack("<I", data[i:i + 4])[0] * P3) & M, 17) * P4) & M
        i += 4
    while i < n:
        h = (rotl((h + data[i] * P5) & M, 11) * P1) & M
        i += 1
    h ^= h >> 15
    h = (h * P2) & M
    h ^= h >> 13
    h = (h * P3) & M
    h ^= h >> 16
    return h


def lz4_header_kind(frame):
    """'standard', 'kafka-legacy' (checksum over magic too) or 'bad'."""
    if len(frame) < 7 or frame[:4] != b"\x04\x22\x4d\x18":
        return "not-lz4-frame"
    flg = frame[4]
    end = 6 + (8 if flg & 0x08 else 0) + (4 if flg & 0x01 else 0)
    if len(frame) <= end:
        return "short"
    hc = frame[end]
    if hc == (xxh32(frame[4:end]) >> 8) & 0xFF:
        return "standard"
    if hc == (xxh32(frame[0:end]) >> 8) & 0xFF:
        return "kafka-legacy"
    return "bad"


# ------------------------------------------------------------- record data

def scan_records(data, stats, where, depth=0):
    """Walk a message set / record batch sequence and count what it holds."""
    off = 0
    while off + 17 <= len(data):
        base_offset, size = struct.unpack(">qi", data[off:off + 12])
        magic = data[off + 16]
        if size < 0 or off + 12 + size > len(data):
            stats[(where, "partial trailing batch (truncated by max bytes)")] += 1
            return
        entry = data[off:off + 12 + size]
        if magic == 2:
            attrs = struct.unpack(">h", entry[21:23])[0]
            codec = CODECS.get(attrs & 7, f"codec{attrs & 7}")
            count = struct.unpack(">i", entry[57:61])[0]
            desc = f"magic 2 batch, {codec}"
            if attrs & 0x10:
                desc += ", transactional"
            if attrs & 0x20:
                desc += ", control"
                ctype = control_type(entry[61:]) if attrs & 7 == 0 else "?"
                desc += f" ({ctype})"
            stats[(where, desc)] += 1
            stats[(where, "magic 2 records")] += count
            if attrs & 7 == 3:
                stats[(where, f"lz4 frame header checksum: {lz4_header_kind(entry[61:])}")] += 1
        elif magic in (0, 1):
            attrs = entry[17]
            codec = CODECS.get(attrs & 7, f"codec{attrs & 7}")
            label = "inner message" if depth else "message"
            stats[(where, f"magic {magic} {label}, {codec}")] += 1
            if attrs & 7:
                value = wrapper_value(entry, magic)
                if value is not None and attrs & 7 == 3:
                    stats[(where, f"lz4 frame header checksum: "
                                  f"{lz4_header_kind(value)}")] += 1
                inner = decompress(attrs & 7, value, magic) if value is not None else None
                if inner is not None:
                    scan_records(inner, stats, where, depth + 1)
        else:
            stats[(where, f"unknown magic {magic}")] += 1
            return
        off += 12 + size
    if off < len(data):
        stats[(where, "partial trailing batch (truncated by max bytes)")] += 1


def wrapper_value(entry, magic):
    try:
        r = Reader(entry, 18 + (8 if magic == 1 else 0))
        r.bytes_()  # key
        return r.bytes_()
    except ValueError:
        return None


def decompress(codec, value, magic):
    """Inner message set of a legacy wrapper; gzip only (stdlib)."""
    if codec == 1:
        import gzip
        try:
            return gzip.decompress(value)
        except OSError:
            return None
    return None  # snappy/lz4 need non-stdlib codecs: inner messages not counted


def control_type(records):
    try:
        r = Reader(records)
        r.varint()          # record length
        r.i8()              # attributes
        r.varint()          # timestamp delta
        r.varint()          # offset delta
        klen = r.varint()
        key = r.take(klen)
        _ver, typ = struct.unpack(">hh", key[:4])
        return {0: "ABORT", 1: "COMMIT"}.get(typ, f"type {typ}")
    except (ValueError, struct.error):
        return "?"


def skip_request_header(frame, flex):
    r = Reader(frame, 12)
    r.i16() if False else None
    n = r.i16()  # client_id, always a classic nullable string
    if n > 0:
        r.take(n)
    r.flex = flex
    r.tags()
    return r


def produce_request(frame, ver, stats):
    r = skip_request_header(frame, ver >= PRODUCE_FLEX)
    txn = r.string() if ver >= 3 else None
    acks = r.i16()
    stats[("Produce request", f"acks={acks}")] += 1
    if txn is not None:
        stats[("Produce request", "with transactional_id")] += 1
    r.i32()
    for _ in range(r.array_len()):
        if ver >= 13:
            r.take(16)
        else:
            r.string()
        for _ in range(r.array_len()):
            r.i32()
            recs = r.bytes_()
            if recs:
                scan_records(recs, stats, "Produce request")
            r.tags()
        r.tags()


def fetch_response(frame, ver, stats):
    r = Reader(frame, 8, ver >= FETCH_FLEX)
    r.tags()
    if ver >= 1:
        r.i32()
    if ver >= 7:
        r.i16()
        r.i32()
    for _ in range(r.array_len()):
        if ver >= 13:
            r.take(16)
        else:
            r.string()
        for _ in range(r.array_len()):
            r.i32()
            r.i16()
            r.i64()
            if ver >= 4:
                r.i64()
                if ver >= 5:
                    r.i64()
                n = r.array_len()
                if n > 0:
                    stats[("Fetch response", "partitions with aborted_transactions")] += 1
                for _ in range(max(n, 0)):
                    r.i64()
                    r.i64()
                    r.tags()
            if ver >= 11:
                r.i32()
            recs = r.bytes_()
            if recs:
                scan_records(recs, stats, "Fetch response")
            r.tags()
        r.tags()


def fetch_request_isolation(frame, ver, stats):
    if ver < 4:
        return
    r = skip_request_header(frame, ver >= FETCH_FLEX)
    if ver <= 14:
        r.i32()  # replica_id
    r.i32()
    r.i32()
    if ver >= 3:
        r.i32()
    lvl = r.i8()
    stats[("Fetch request", f"isolation_level={'read_committed' if lvl else 'read_uncommitted'}")] += 1


def sasl_mechanism(frame):
    r = skip_request_header(frame, False)
    return r.string()


def summarize(path):
    counts = Counter()
    stats = Counter()
    conns = set()
    source = None
    errors = Counter()
    with open(path) as f:
        for line in f:
            if line.startswith("#"):
                m = re.match(r"# kwire corpus frames cut from (\S+)", line)
                if m:
                    source = m.group(1)
                continue
            parts = line.split()
            if len(parts) != 5:
                continue
            kind, key, ver, conn, hexs = parts
            key, ver = int(key), int(ver)
            conns.add(conn)
            counts[(key, ver, kind)] += 1
            frame = bytes.fromhex(hexs)
            try:
                if kind == "req" and key == 0:
                    produce_request(frame, ver, stats)
                elif kind == "resp" and key == 1:
                    fetch_response(frame, ver, stats)
                elif kind == "req" and key == 1:
                    fetch_request_isolation(frame, ver, stats)
                elif kind == "req" and key == 17:
                    stats[("SASL", f"SaslHandshake v{ver} mechanism {sasl_mechanism(frame)}")] += 1
                elif kind == "sasl-raw":
                    stats[("SASL", "raw SASL token frames (no Kafka header)")] += 1
            except (ValueError, struct.error, IndexError):
                errors[(key, ver, kind)] += 1
    return source, conns, counts, stats, errors


def render(paths):
    out = []
    total = Counter()
    for path in paths:
        name = os.path.basename(path).rsplit(".", 1)[0]
        source, conns, counts, stats, errors = summarize(path)
        out.append(f"### {name}\n")
        out.append(f"`frames/{os.path.basename(path)}` cut from `{source}`: "
                   f"{len(conns)} connections, "
                   f"{sum(v for (k, v2, kd), v in counts.items() if kd == 'req')} requests, "
                   f"{sum(v for (k, v2, kd), v in counts.items() if kd == 'resp')} responses.\n")
        out.append("| api_key | name | version | requests | responses |")
        out.append("|---:|---|---:|---:|---:|")
        keys = sorted({(k, v) for k, v, _ in counts})
        for k, v in keys:
            if k < 0:
                name_ = "(unmatched response)"
            else:
                name_ = API_NAMES.get(k, "?")
            out.append(f"| {k} | {name_} | {v} | {counts.get((k, v, 'req'), 0)} | "
                       f"{counts.get((k, v, 'resp'), 0)} |")
            total[(k, v, "req")] += counts.get((k, v, "req"), 0)
            total[(k, v, "resp")] += counts.get((k, v, "resp"), 0)
        raw = sum(v for (k, v2, kd), v in counts.items() if kd == "sasl-raw")
        if raw:
            out.append(f"| - | raw SASL tokens | - | {raw} (both directions) | |")
        out.append("")
        if stats:
            out.append("Record data and other features:\n")
            for (where, what), n in sorted(stats.items()):
                out.append(f"- {where}: {what}: {n}")
            out.append("")
        if errors:
            out.append("Frames the summarizer could not parse: " + ", ".join(
                f"{API_NAMES.get(k, k)} v{v} {kd} x{n}" for (k, v, kd), n in sorted(errors.items())))
            out.append("")
    out.append("### All captures: (api_key, version) coverage\n")
    out.append("| api_key | name | version | requests | responses |")
    out.append("|---:|---|---:|---:|---:|")
    for k, v in sorted({(k, v) for k, v, _ in total}):
        out.append(f"| {k} | {API_NAMES.get(k, '?') if k >= 0 else '(unmatched response)'} | {v} | "
                   f"{total[(k, v, 'req')]} | {total[(k, v, 'resp')]} |")
    out.append("")
    return "\n".join(out)


BEGIN = "<!-- BEGIN GENERATED by summarize.py; do not edit by hand -->"
END = "<!-- END GENERATED -->"


def main(argv):
    args = argv[1:]
    if args and args[0] == "--readme":
        readme, paths = args[1], args[2:]
        text = open(readme).read()
        if BEGIN not in text or END not in text:
            print(f"{readme}: generated-block markers missing", file=sys.stderr)
            return 1
        head, rest = text.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        with open(readme, "w") as f:
            f.write(head + BEGIN + "\n\n" + render(paths) + "\n" + END + tail)
        return 0
    if not args:
        print(__doc__, file=sys.stderr)
        return 2
    print(render(args))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
