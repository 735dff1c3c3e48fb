#!/usr/bin/python3
"""Scenario python-*: kafka-python with broker version detection.

Usage: PYTHON kafka_python.py BOOTSTRAP

Runs with Debian's python3-kafka (kafka-python 2.0.2, /usr/bin/python3) or a
PyPI kafka-python 3.x (in a venv).
kafka-python probes the broker (ApiVersions) and picks its request
versions from the answer.  The scenario: admin (create topics, list, describe
configs, list groups, delete a topic), produce with every codec the detected
broker version allows (none, gzip, snappy, lz4, zstd) with keys and headers,
an acks=0 producer, a consumer reading every topic back, and a consumer group
(FindCoordinator, JoinGroup, SyncGroup, Heartbeat, OffsetCommit,
OffsetFetch, LeaveGroup), then group admin calls (list, describe, offsets,
delete) where the client has them.  Failures of single steps are reported
and the scenario goes on; every wait is bounded.
"""

import logging
import sys
import time

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic

B = sys.argv[1]
COMMON = {"bootstrap_servers": B, "client_id": "kwire-corpus-kafka-python",
          "request_timeout_ms": 8000}
CODECS = [None, "gzip", "snappy", "lz4", "zstd"]
logging.basicConfig(level=logging.ERROR, stream=sys.stderr)


def log(*a):
    print("[kafka-python]", *a, file=sys.stderr, flush=True)


def step(name, fn):
    try:
        r = fn()
        log(name, "ok", "" if r is None else repr(r)[:200])
        return r
    except Exception as e:  # noqa: BLE001 - report, go on
        log(name, "FAILED", repr(e)[:300])
        return None


def topic(codec):
    return f"kp-{codec or 'none'}"


def admin():
    a = KafkaAdminClient(**COMMON)
    log("detected broker api_version", a.config["api_version"])
    step("create_topics", lambda: a.create_topics(
        [NewTopic(topic(c), 1, 1) for c in CODECS] + [NewTopic("kp-scratch", 2, 1)],
        timeout_ms=5000))
    step("list_topics", a.list_topics)
    step("describe_configs", lambda: a.describe_configs(
        [ConfigResource(ConfigResourceType.TOPIC, topic("gzip"))]))
    step("delete_topics", lambda: a.delete_topics(["kp-scratch"], timeout_ms=5000))
    a.close()


def produce():
    for codec in CODECS:
        p = step(f"producer {codec}", lambda: KafkaProducer(
            **COMMON, compression_type=codec, linger_ms=50, max_block_ms=8000, retries=1))
        if p is None:
            continue
        futs = [p.send(topic(codec), partition=0, key=f"key-{i}".encode(),
                       value=(f"{codec} value {i} " + "kafka wire protocol " * 6).encode(),
                       headers=[("codec", (codec or "none").encode()), ("n", str(i).encode())]
                       if p.config["api_version"] >= (0, 11) else None)
                for i in range(6)]
        p.flush(10)
        step(f"produce {codec}", lambda: [f.get(timeout=1).offset for f in futs])
        p.close(5)
    p = step("producer acks=0", lambda: KafkaProducer(**COMMON, acks=0, max_block_ms=8000))
    if p is not None:
        for i in range(3):
            p.send(topic(None), partition=0, value=f"fire and forget {i}".encode())
        p.flush(10)
        p.close(5)


def consume():
    c = KafkaConsumer(**COMMON, group_id=None, enable_auto_commit=False,
                      fetch_max_wait_ms=300)
    tps = [TopicPartition(topic(codec), 0) for codec in CODECS]
    c.assign(tps)
    c.seek_to_beginning(*tps)
    got = 0
    end = time.monotonic() + 8
    while time.monotonic() < end and got < 33:
        for recs in c.poll(timeout_ms=500).values():
            got += len(recs)
    log("consumed", got, "records")
    c.close()


def group():
    c = KafkaConsumer(topic("gzip"), **COMMON, group_id="kwire-kafka-python-group",
                      auto_offset_reset="earliest", enable_auto_commit=False,
                      session_timeout_ms=6000, heartbeat_interval_ms=500,
                      fetch_max_wait_ms=300)
    got = 0
    end = time.monotonic() + 15
    while time.monotonic() < end and got < 6:
        try:
            for recs in c.poll(timeout_ms=500).values():
                got += len(recs)
        except Exception as e:  # noqa: BLE001 - e.g. a JoinGroup error the client can't handle
            log("group poll FAILED", repr(e)[:300])
            break
    step("commit", c.commit)
    end = time.monotonic() + 1.5  # let a heartbeat through
    while time.monotonic() < end:
        try:
            c.poll(timeout_ms=200)
        except Exception:  # noqa: BLE001 - reported above
            break
    step("committed", lambda: c.committed(TopicPartition(topic("gzip"), 0)))
    log("group consumed", got)
    c.close()  # LeaveGroup
    a = step("admin for groups", lambda: KafkaAdminClient(**COMMON))
    if a is not None:
        # method names differ between kafka-python 2.0 and 3.x
        lcg = getattr(a, "list_consumer_groups", None) or getattr(a, "list_groups", None)
        dcg = getattr(a, "describe_consumer_groups", None) or getattr(a, "describe_groups", None)
        lgo = (getattr(a, "list_consumer_group_offsets", None)
               or getattr(a, "list_group_offsets", None))
        step("list_consumer_groups", lambda: lcg())
        step("describe_consumer_groups", lambda: dcg(["kwire-kafka-python-group"]))
        step("list_consumer_group_offsets", lambda: lgo("kwire-kafka-python-group"))
        if hasattr(a, "delete_groups"):  # kafka-python 3.x
            step("delete_groups", lambda: a.delete_groups(["kwire-kafka-python-group"]))
        a.close()


admin()
produce()
consume()
group()
