#!/usr/bin/python3
"""Scenario legacy-*: python3-kafka (kafka-python) speaking old protocol versions.

Usage: /usr/bin/python3 legacy_python.py BOOTSTRAP API_VERSION [--group] [--create-topics]
                                        [--consume-limit SECONDS]

API_VERSION is a dotted broker version kafka-python pins its requests to,
without asking the broker (no ApiVersions): 0.8.2 -> Produce v0 / Fetch v0,
message format magic 0; 0.9 -> Produce v1 / Fetch v1, magic 0; 0.10 ->
Produce v2 / Fetch v2, magic 1.  For every codec (none, gzip, snappy, lz4)
it produces a few records into its own topic (one compressed wrapper message
per batch) and reads them back.  With magic 0, kafka-python writes LZ4 with
Kafka's old, broken frame header checksum.  --group also runs a consumer
group (0.9+ APIs: GroupCoordinator, JoinGroup, SyncGroup, Heartbeat,
OffsetCommit, OffsetFetch, LeaveGroup).  --create-topics first creates the
topics with an admin client that negotiates its versions (for a broker that
does not create topics on first use).  --consume-limit reads one topic back
only, in a thread abandoned after SECONDS (for a broker whose answers make
kafka-python retry without end), and skips the group.  Every wait is bounded.
"""

import logging
import os
import sys
import threading
import time

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

B = sys.argv[1]
VER = tuple(int(x) for x in sys.argv[2].split("."))
GROUP = "--group" in sys.argv[3:]
CREATE = "--create-topics" in sys.argv[3:]
LIMIT = (float(sys.argv[sys.argv.index("--consume-limit") + 1])
         if "--consume-limit" in sys.argv else None)
TAG = "".join(str(x) for x in VER)
CODECS = [None, "gzip", "snappy", "lz4"]
logging.basicConfig(level=logging.WARNING, stream=sys.stderr)


def log(*a):
    print(f"[legacy {sys.argv[2]}]", *a, file=sys.stderr, flush=True)


def topic(codec):
    return f"legacy{TAG}-{codec or 'none'}"


def produce():
    for codec in CODECS:
        p = KafkaProducer(bootstrap_servers=B, api_version=VER, compression_type=codec,
                          client_id=f"kwire-corpus-legacy-{TAG}", linger_ms=50,
                          request_timeout_ms=8000, max_block_ms=8000, retries=0)
        try:
            futs = [p.send(topic(codec), partition=0, key=f"k{i}".encode(),
                           value=(f"{codec} message {i} " + "abcdefgh" * 12).encode())
                    for i in range(4)]
        except Exception as e:  # noqa: BLE001 - e.g. no metadata for the topic
            log("produce", codec, "failed:", repr(e))
            p.close(5)
            continue
        p.flush(10)
        ok = 0
        for f in futs:
            try:
                f.get(timeout=1)
                ok += 1
            except Exception as e:  # noqa: BLE001 - the broker may refuse old versions
                log("produce", codec, "failed:", repr(e))
                break
        log("produce", codec, f"{ok}/{len(futs)} acknowledged")
        p.close(5)


def consume(codecs=(None, "gzip")):
    # The broker may have refused the produce (old message format): then the
    # fetches come back empty, so keep this short.
    for codec in codecs:
        c = KafkaConsumer(bootstrap_servers=B, api_version=VER, group_id=None,
                          client_id=f"kwire-corpus-legacy-{TAG}",
                          enable_auto_commit=False, consumer_timeout_ms=3000,
                          request_timeout_ms=8000, fetch_max_wait_ms=500)
        tp = TopicPartition(topic(codec), 0)
        c.assign([tp])
        c.seek_to_beginning(tp)
        got = 0
        end = time.monotonic() + 2
        while time.monotonic() < end and got < 4:
            for recs in c.poll(timeout_ms=500).values():
                got += len(recs)
        log("consume", codec, got, "records")
        c.close()


def group():
    c = KafkaConsumer(topic("gzip"), bootstrap_servers=B, api_version=VER,
                      group_id=f"kwire-legacy-{TAG}-group",
                      client_id=f"kwire-corpus-legacy-{TAG}",
                      auto_offset_reset="earliest", enable_auto_commit=False,
                      session_timeout_ms=6000, heartbeat_interval_ms=500,
                      request_timeout_ms=8000, fetch_max_wait_ms=500)
    got = 0
    end = time.monotonic() + 5
    while time.monotonic() < end and got < 4:
        for recs in c.poll(timeout_ms=500).values():
            got += len(recs)
    c.commit()
    end = time.monotonic() + 1.5  # let a heartbeat through
    while time.monotonic() < end:
        c.poll(timeout_ms=200)
    log("group consumed", got, "committed", c.committed(TopicPartition(topic("gzip"), 0)))
    c.close()


def create_topics():
    a = KafkaAdminClient(bootstrap_servers=B, client_id=f"kwire-corpus-legacy-{TAG}",
                         request_timeout_ms=8000)
    try:
        a.create_topics([NewTopic(topic(c), 1, 1) for c in CODECS], timeout_ms=5000)
        log("created topics")
    except Exception as e:  # noqa: BLE001 - report, go on
        log("create topics failed:", repr(e))
    a.close()


if CREATE:
    create_topics()
produce()
if LIMIT is None:
    consume()
    if GROUP:
        group()
else:
    t = threading.Thread(target=consume, args=((None,),), daemon=True)
    t.start()
    t.join(LIMIT)
    if t.is_alive():
        log(f"consume gave no result within {LIMIT}s, abandoned")
        sys.stderr.flush()
        os._exit(0)
