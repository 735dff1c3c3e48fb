#!/usr/bin/env bash
# Scenario kcat-magic1: kcat (librdkafka) against a mock cluster that announces
# Produce v0-v2 and Fetch v0-v3 only (mockcluster 0:0:2 1:0:3), so librdkafka
# falls back to message format magic 1 (Produce v2, Fetch v3).  One produce
# per codec (the broker may refuse magic 1: the request frames are real
# either way), then a consume.
# Usage: kcat_magic1.sh BOOTSTRAP
set -euo pipefail
B=${1:?bootstrap address}
K=(timeout 20 kcat -b "$B" -q -X client.id=kwire-corpus-kcat-magic1)

records() {
    for i in 1 2 3 4; do
        printf 'key-%s:magic1 value %s %s\n' "$i" "$i" \
            "abcdefghijklmnopqrstuvwxyz abcdefghijklmnopqrstuvwxyz abcdefghijklmnopqrstuvwxyz"
    done
}

for z in none gzip snappy lz4; do
    records | "${K[@]}" -P -t "kcat-magic1-$z" -p 0 -z "$z" -K: \
        -X message.send.max.retries=0 \
        || echo "kcat-magic1: produce $z failed (exit $?)" >&2
done
"${K[@]}" -C -t "kcat-magic1-none" -p 0 -o beginning -e > /dev/null \
    || echo "kcat-magic1: consume failed (exit $?)" >&2
