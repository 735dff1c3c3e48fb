#!/usr/bin/env python3
"""Scenario *-sasl-*: SASL authentication attempts, with obviously fake credentials.

Usage: PYTHON sasl_scenario.py BOOTSTRAP CLIENT MECHANISM...

CLIENT is kafka-python (SaslHandshake v0 in kafka-python 2.0.2, then the SASL
tokens travel as bare size-prefixed frames without Kafka headers) or
confluent (librdkafka: SaslHandshake v1 then SaslAuthenticate requests).
For every MECHANISM (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER) one
client connects and asks for metadata.  The fake users do not exist on the
broker, so the authentication is expected to fail: the point is the SASL
exchange on the wire.  Each attempt is bounded to a few seconds.
"""

import logging
import subprocess
import sys
import time

B, CLIENT, MECHS = sys.argv[1], sys.argv[2], sys.argv[3:]
USER, PASSWORD = "kwire-fake-user", "kwire-fake-password"
logging.basicConfig(level=logging.CRITICAL, stream=sys.stderr)


def log(*a):
    print(f"[sasl {CLIENT}]", *a, file=sys.stderr, flush=True)


def kafka_python(mech):
    from kafka import KafkaConsumer
    conf = dict(bootstrap_servers=B, client_id="kwire-corpus-sasl", api_version=(2, 5, 0),
                security_protocol="SASL_PLAINTEXT", sasl_mechanism=mech,
                request_timeout_ms=3000, reconnect_backoff_ms=1000,
                reconnect_backoff_max_ms=1000)
    if mech == "OAUTHBEARER":
        class Token:  # kafka-python's AbstractTokenProvider interface
            def token(self):
                return "kwire.fake.token"

            def extensions(self):
                return {}
        conf["sasl_oauth_token_provider"] = Token()
    else:
        conf.update(sasl_plain_username=USER, sasl_plain_password=PASSWORD)
    c = KafkaConsumer(**conf)
    try:
        return sorted(c.topics())
    finally:
        c.close()


def confluent(mech):
    from confluent_kafka.admin import AdminClient
    conf = {"bootstrap.servers": B, "client.id": "kwire-corpus-sasl",
            "security.protocol": "SASL_PLAINTEXT", "sasl.mechanisms": mech,
            "reconnect.backoff.ms": 1000, "reconnect.backoff.max.ms": 1000}
    if mech == "OAUTHBEARER":
        conf.update({"enable.sasl.oauthbearer.unsecure.jwt": True,
                     "sasl.oauthbearer.config": f"principal={USER} scope=kwire"})
    else:
        conf.update({"sasl.username": USER, "sasl.password": PASSWORD})
    errors = []
    conf["error_cb"] = lambda e: errors.append(str(e))
    a = AdminClient(conf)
    try:
        return sorted(a.list_topics(timeout=1.5).topics)
    except Exception:
        raise RuntimeError(errors[0] if errors else "no answer") from None


def attempt(mech):
    try:
        r = (kafka_python if CLIENT == "kafka-python" else confluent)(mech)
        log(mech, "authenticated, topics:", r)
    except Exception as e:  # noqa: BLE001 - failure is the expected outcome
        log(mech, "failed as expected:", repr(e)[:200])


if MECHS and MECHS[0] == "--one":
    attempt(MECHS[1])
    sys.exit(0)
# one child process per mechanism, killed after ATTEMPT_SECONDS: a client
# whose handshake the broker drops may otherwise retry for ever
ATTEMPT_SECONDS = 6
for mech in MECHS:
    t = time.monotonic()
    try:
        subprocess.run([sys.executable, __file__, B, CLIENT, "--one", mech],
                       timeout=ATTEMPT_SECONDS, check=False)
    except subprocess.TimeoutExpired:
        log(mech, f"no outcome within {ATTEMPT_SECONDS}s, stopped")
    log(mech, f"took {time.monotonic() - t:.1f}s")
