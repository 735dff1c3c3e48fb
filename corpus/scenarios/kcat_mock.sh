#!/usr/bin/env bash
# Scenario kcat-mock: kcat (librdkafka) against a librdkafka mock cluster.
# Usage: kcat_mock.sh BOOTSTRAP
# Metadata listing, produce with every codec (keys + headers), consume each
# topic back (-C -e), a balanced consumer group (-G), and a transactional
# produce.  Every kcat call is bounded by `timeout`.
set -euo pipefail
B=${1:?bootstrap address}
K=(timeout 30 kcat -b "$B" -q -X client.id=kwire-corpus-kcat)

# sample records: "key:value", values repetitive enough to compress
records() {
    for i in 1 2 3 4 5 6 7 8; do
        printf 'key-%s:value %s %s\n' "$i" "$i" \
            "the quick brown fox jumps over the lazy dog, the quick brown fox jumps over the lazy dog"
    done
}

# 1. metadata
"${K[@]}" -L > /dev/null

# 2. produce with each codec, keys (-K:) and headers (-H), one topic per codec
for z in none gzip snappy lz4 zstd; do
    records | "${K[@]}" -P -t "kcat-$z" -p 0 -z "$z" -K: \
        -H "codec=$z" -H "trace-id=0123456789abcdef" -H "empty="
done

# 3. consume each topic back from the beginning; exit at end of partition
for z in none gzip snappy lz4 zstd; do
    "${K[@]}" -C -t "kcat-$z" -p 0 -o beginning -e -f '%k=%s %h\n' > /dev/null
done

# 4. balanced consumer group: join/sync/heartbeat/offset commit/leave.
#    -c bounds it: exit after the 8 records of kcat-gzip have been read.
"${K[@]}" -G kwire-kcat-group -X auto.offset.reset=earliest \
    -X enable.auto.commit=true -X auto.commit.interval.ms=200 \
    -c 8 -f '%t %p %o %k\n' kcat-gzip > /dev/null

# 5. transactional produce (InitProducerId, AddPartitionsToTxn, EndTxn)
records | "${K[@]}" -P -t kcat-txn -p 0 -K: -X transactional.id=kwire-kcat-txn

# 6. produce with acks=0 (no Produce response on the wire)
records | "${K[@]}" -P -t kcat-acks0 -p 0 -K: -X acks=0
