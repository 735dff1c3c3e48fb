#!/usr/bin/env python3
"""Standalone librdkafka mock cluster, through ctypes (stdlib + a librdkafka).

Usage: PYTHON mockcluster.py NUM_BROKERS MAX_SECONDS [API_KEY:MIN:MAX]...

Loads the librdkafka that PYTHON's confluent_kafka uses (the one bundled in a
PyPI wheel, or Debian's librdkafka.so.1 for python3-confluent-kafka), creates
a mock cluster (rd_kafka_mock_cluster_new) in a handle that never connects
anywhere, prints the bootstrap address ("127.0.0.1:PORT,...") on stdout and
serves until SIGINT/SIGTERM or MAX_SECONDS.  Each API_KEY:MIN:MAX caps the
versions the mock brokers announce (rd_kafka_mock_set_apiversion).  The same
job as mockcluster.c, for a librdkafka that comes without headers.
"""

import ctypes
import glob
import os
import signal
import sys
import time


def find_librdkafka():
    try:
        import confluent_kafka
        base = os.path.dirname(os.path.dirname(confluent_kafka.__file__))
        bundled = glob.glob(os.path.join(base, "confluent_kafka.libs", "librdkafka*.so*"))
        if bundled:
            return bundled[0]
    except ImportError:
        pass
    return "librdkafka.so.1"


def main():
    brokers = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    lifetime = float(sys.argv[2]) if len(sys.argv) > 2 else 300
    lib = ctypes.CDLL(find_librdkafka())
    lib.rd_kafka_version_str.restype = ctypes.c_char_p
    lib.rd_kafka_conf_new.restype = ctypes.c_void_p
    lib.rd_kafka_conf_set.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p,
                                      ctypes.c_char_p, ctypes.c_size_t]
    lib.rd_kafka_new.restype = ctypes.c_void_p
    lib.rd_kafka_new.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p,
                                 ctypes.c_size_t]
    lib.rd_kafka_mock_cluster_new.restype = ctypes.c_void_p
    lib.rd_kafka_mock_cluster_new.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.rd_kafka_mock_cluster_bootstraps.restype = ctypes.c_char_p
    lib.rd_kafka_mock_cluster_bootstraps.argtypes = [ctypes.c_void_p]
    lib.rd_kafka_mock_set_apiversion.argtypes = [ctypes.c_void_p, ctypes.c_int16,
                                                 ctypes.c_int16, ctypes.c_int16]
    lib.rd_kafka_mock_cluster_destroy.argtypes = [ctypes.c_void_p]
    lib.rd_kafka_destroy.argtypes = [ctypes.c_void_p]

    errstr = ctypes.create_string_buffer(512)
    conf = lib.rd_kafka_conf_new()
    lib.rd_kafka_conf_set(conf, b"log_level", b"3", errstr, 512)
    rk = lib.rd_kafka_new(0, conf, errstr, 512)  # RD_KAFKA_PRODUCER
    if not rk:
        sys.exit(f"rd_kafka_new: {errstr.value.decode()}")
    mc = lib.rd_kafka_mock_cluster_new(rk, brokers)
    if not mc:
        sys.exit("rd_kafka_mock_cluster_new failed")
    for spec in sys.argv[3:]:
        key, vmin, vmax = (int(x) for x in spec.split(":"))
        lib.rd_kafka_mock_set_apiversion(mc, key, vmin, vmax)
    stop = []
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    print(lib.rd_kafka_mock_cluster_bootstraps(mc).decode(), flush=True)
    print(f"librdkafka {lib.rd_kafka_version_str().decode()}", file=sys.stderr, flush=True)
    end = time.monotonic() + lifetime
    while not stop and time.monotonic() < end:
        time.sleep(0.1)
    lib.rd_kafka_mock_cluster_destroy(mc)
    lib.rd_kafka_destroy(rk)


if __name__ == "__main__":
    main()
