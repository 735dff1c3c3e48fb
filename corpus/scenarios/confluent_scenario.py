#!/usr/bin/python3
"""Scenario confluent-*: confluent_kafka (librdkafka) against a broker.

Usage: PYTHON confluent_scenario.py BOOTSTRAP [--create-topics] [--no-txn] [--kip848]
                                             [--sasl-plain]

Runs with Debian's python3-confluent-kafka (librdkafka 2.0.2) or with a PyPI
confluent-kafka wheel (its own, newer librdkafka).  Idempotent producer;
transactional producer with a committed, an aborted and a
consume-transform-produce transaction (send_offsets_to_transaction);
consumers in read_committed and read_uncommitted isolation; a consumer group
with synchronous offset commits; admin calls (whatever the broker supports:
what it does not, librdkafka refuses locally, without a request).
--no-txn leaves the transactions out (for a broker without EndTxn);
--create-topics creates the topics first (for a broker that does not create
them on first use); --kip848 adds a consumer group with group.protocol=consumer
(ConsumerGroupHeartbeat, KIP-848); --sasl-plain connects with SASL_PLAINTEXT
and PLAIN, with obviously fake credentials.  Every wait is bounded.
"""

import sys
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

B = sys.argv[1]
KIP848 = "--kip848" in sys.argv[2:]
CREATE = "--create-topics" in sys.argv[2:]
TXN = "--no-txn" not in sys.argv[2:]
BASE = {"bootstrap.servers": B, "client.id": "kwire-corpus-confluent"}
if "--sasl-plain" in sys.argv[2:]:
    BASE.update({"security.protocol": "SASL_PLAINTEXT", "sasl.mechanisms": "PLAIN",
                 "sasl.username": "kwire-fake-user", "sasl.password": "kwire-fake-password"})
DEADLINE = time.monotonic() + 150


def log(*a):
    print("[confluent]", *a, file=sys.stderr, flush=True)


def value(i, tag):
    return (f"{tag} record {i}: " + "lorem ipsum dolor sit amet " * 4).encode()


def idempotent_producer():
    p = Producer({**BASE, "enable.idempotence": True, "compression.type": "zstd",
                  "linger.ms": 20})
    for i in range(10):
        p.produce("ck-idem", key=f"k{i}".encode(), value=value(i, "idem"),
                  partition=i % 2, headers=[("seq", str(i).encode())])
    left = p.flush(15)
    log("idempotent producer: unflushed", left)


def transactional_producer():
    p = Producer({**BASE, "transactional.id": "kwire-confluent-txn",
                  "compression.type": "lz4", "linger.ms": 5})
    p.init_transactions(15)
    # committed transaction
    p.begin_transaction()
    for i in range(5):
        p.produce("ck-txn", key=f"c{i}".encode(), value=value(i, "committed"), partition=0)
    p.commit_transaction(15)
    # aborted transaction
    p.begin_transaction()
    for i in range(5):
        p.produce("ck-txn", key=f"a{i}".encode(), value=value(i, "aborted"), partition=0)
    p.flush(15)  # make sure the records reach the log before the abort
    p.abort_transaction(15)
    # a last committed one, uncompressed, after the abort
    p.begin_transaction()
    p.produce("ck-txn", key=b"last", value=b"committed after abort", partition=0)
    p.commit_transaction(15)
    return p


def read_partition(topic, isolation, group):
    c = Consumer({**BASE, "group.id": group, "isolation.level": isolation,
                  "enable.auto.commit": False, "enable.partition.eof": True,
                  "auto.offset.reset": "earliest"})
    c.assign([TopicPartition(topic, 0, 0)])
    got = 0
    end = min(time.monotonic() + 15, DEADLINE)
    while time.monotonic() < end:
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error():
            if m.error().code() == -191:  # _PARTITION_EOF
                break
            log(topic, isolation, "error", m.error())
            continue
        got += 1
    c.close()
    log(f"{topic} {isolation}: {got} records")
    return got


def group_consumer(kip848=False):
    conf = {**BASE, "group.id": "kwire-confluent-group",
            "enable.auto.commit": False, "auto.offset.reset": "earliest"}
    if kip848:
        conf.update({"group.protocol": "consumer", "group.id": "kwire-confluent-kip848"})
    else:
        conf.update({"session.timeout.ms": 6000, "heartbeat.interval.ms": 500})
    c = Consumer(conf)
    c.subscribe(["ck-idem"])
    got = 0
    end = min(time.monotonic() + 20, DEADLINE)
    while time.monotonic() < end and got < 10:
        m = c.poll(0.5)
        if m is None or m.error():
            continue
        got += 1
        if got % 5 == 0:
            c.commit(asynchronous=False)
    # let at least one heartbeat go out, bounded
    t = time.monotonic() + 1.5
    while time.monotonic() < t:
        c.poll(0.2)
    log("group consumer" + (" (KIP-848)" if kip848 else ""), "got", got, "committed", c.committed([TopicPartition("ck-idem", 0)], 5))
    c.close()  # LeaveGroup


def consume_transform_produce(p):
    c = Consumer({**BASE, "group.id": "kwire-confluent-ctp", "enable.auto.commit": False,
                  "auto.offset.reset": "earliest", "isolation.level": "read_committed"})
    c.subscribe(["ck-idem"])
    got = []
    end = min(time.monotonic() + 20, DEADLINE)
    while time.monotonic() < end and len(got) < 3:
        m = c.poll(0.5)
        if m is None or m.error():
            continue
        got.append(m)
    p.begin_transaction()
    for m in got:
        p.produce("ck-ctp-out", key=m.key(), value=m.value().upper(), partition=0)
    p.send_offsets_to_transaction(c.position(c.assignment()),
                                  c.consumer_group_metadata(), 15)
    p.commit_transaction(15)
    log("consume-transform-produce moved", len(got))
    c.close()


def admin_calls():
    a = AdminClient({**BASE, "socket.timeout.ms": 5000})
    md = a.list_topics(timeout=10)
    log("topics:", sorted(md.topics))
    calls = [
        ("create_topics", lambda: a.create_topics(
            [NewTopic("ck-admin-created", num_partitions=2, replication_factor=1)],
            request_timeout=5)["ck-admin-created"].result(8)),
        ("describe_configs", lambda: [f.result(8) for f in a.describe_configs(
            [ConfigResource("topic", "ck-idem")], request_timeout=5).values()]),
        ("list_consumer_groups", lambda: a.list_consumer_groups(request_timeout=5).result(8)
         if hasattr(a, "list_consumer_groups") else a.list_groups(timeout=5)),
        ("describe_consumer_groups", lambda: [f.result(8) for f in a.describe_consumer_groups(
            ["kwire-confluent-group"], request_timeout=5).values()]
         if hasattr(a, "describe_consumer_groups") else None),
        ("describe_cluster", lambda: a.describe_cluster(request_timeout=5).result(8)
         if hasattr(a, "describe_cluster") else None),
        ("delete_topics", lambda: a.delete_topics(
            ["ck-admin-created"], request_timeout=5)["ck-admin-created"].result(8)),
    ]
    for name, fn in calls:
        try:
            fn()
            log("admin", name, "ok")
        except (KafkaException, Exception) as e:  # noqa: BLE001 - report and go on
            log("admin", name, "failed:", e)


def create_topics():
    a = AdminClient(BASE)
    futs = a.create_topics([NewTopic("ck-idem", num_partitions=2, replication_factor=1),
                            NewTopic("ck-txn", num_partitions=1, replication_factor=1),
                            NewTopic("ck-ctp-out", num_partitions=1, replication_factor=1)],
                           request_timeout=10)
    for t, f in futs.items():
        try:
            f.result(12)
            log("created topic", t)
        except KafkaException as e:
            log("create topic", t, "failed:", e)


def main():
    if CREATE:
        create_topics()
    idempotent_producer()
    p = transactional_producer() if TXN else None
    read_topic = "ck-txn" if TXN else "ck-idem"
    read_partition(read_topic, "read_committed", "kwire-confluent-rc")
    read_partition(read_topic, "read_uncommitted", "kwire-confluent-ru")
    group_consumer()
    if KIP848:
        group_consumer(kip848=True)
    if p is not None:
        consume_transform_produce(p)
        p.flush(5)
    admin_calls()


if __name__ == "__main__":
    main()
