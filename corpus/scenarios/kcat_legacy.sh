#!/usr/bin/env bash
# Scenario kcat-legacy: kcat (librdkafka) told the broker is old, so it does not
# ask for ApiVersions and speaks the old protocol and message formats:
#   broker.version.fallback=0.8.2.2  -> Produce v0, message format magic 0
#   broker.version.fallback=0.9.0.1  -> Produce v1, magic 0
# librdkafka writes magic 0 LZ4 with Kafka's old broken frame header checksum.
# (A fallback of 0.10 or later makes librdkafka ask for ApiVersions anyway:
# magic 1 is covered by kcat_magic1.sh.)  For each fallback: metadata, one
# produce per codec (the broker may refuse the old format: reported, not
# fatal), one consume.
# Usage: kcat_legacy.sh BOOTSTRAP
set -euo pipefail
B=${1:?bootstrap address}

records() {
    for i in 1 2 3 4; do
        printf 'key-%s:legacy value %s %s\n' "$i" "$i" \
            "abcdefghijklmnopqrstuvwxyz abcdefghijklmnopqrstuvwxyz abcdefghijklmnopqrstuvwxyz"
    done
}

for v in 0.8.2.2 0.9.0.1; do
    tag=${v//./}
    K=(timeout 20 kcat -b "$B" -q -X client.id="kwire-corpus-kcat-legacy-$tag"
       -X api.version.request=false -X broker.version.fallback="$v")
    "${K[@]}" -L > /dev/null || echo "kcat-legacy $v: metadata failed" >&2
    for z in none gzip snappy lz4; do
        # the broker may refuse the old message format: report and go on
        records | "${K[@]}" -P -t "kcat-legacy$tag-$z" -p 0 -z "$z" -K: \
            -X message.send.max.retries=0 \
            || echo "kcat-legacy $v: produce $z failed (exit $?)" >&2
    done
    "${K[@]}" -C -t "kcat-legacy$tag-none" -p 0 -o beginning -e > /dev/null \
        || echo "kcat-legacy $v: consume failed (exit $?)" >&2
done
