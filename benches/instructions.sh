#!/usr/bin/env bash
# Instructions that `kwire read` executes (valgrind's callgrind) on small
# generated captures: a prefix of the benchmark's mix, small exchanges
# only, and one API at a time, each with its count per exchange. Unlike
# times, the counts repeat to the instruction on any machine, busy or not,
# so they compare two builds exactly; `read_vs_tshark.sh` gives the times.
#
#   benches/instructions.sh                      # summary lines
#   MODE=--stats benches/instructions.sh         # any `kwire read` flags
#   BIN=/tmp/kwire-before benches/instructions.sh
#   WORK=/tmp/kb benches/instructions.sh         # keep the captures there
#
# How the crate falls into codegen units moves these counts by a few per
# cent for changes far from the hot code: judge a change on several rows.
#
# Needs valgrind (Debian: apt-get install valgrind).

set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v valgrind >/dev/null; then
    echo "instructions: valgrind is missing: apt-get install valgrind" >&2
    exit 2
fi
WORK=${WORK:-$(mktemp -d /tmp/kwire-instructions.XXXXXX)}
mkdir -p "$WORK"
MODE=${MODE:-}
cargo build --release --quiet --bin kwire --example bench_capture
BIN=${BIN:-target/release/kwire}
GEN=target/release/examples/bench_capture

# name, the small exchange to repeat (bench_capture's ONLY; - for the
# mix), then bench_capture's MB and LARGE_EVERY.
captures=(
    "mix - 20 1000"
    "small - 20 1000000000"
    "produce 0 5 1000000000"
    "fetch-records 1 5 1000000000"
    "fetch-empty 2 5 1000000000"
    "metadata 3 5 1000000000"
    "list-offsets 5 5 1000000000"
    "offset-commit 7 5 1000000000"
    "heartbeat 8 5 1000000000"
)
printf '%-14s %9s %14s %12s   (kwire read %s)\n' capture exchanges instructions "per exch." "$MODE"
for capture in "${captures[@]}"; do
    read -r name only megabytes large_every <<<"$capture"
    file=$WORK/$name.pcap
    if [[ ! -f $file ]]; then
        if [[ $only == - ]]; then
            env -u ONLY "$GEN" "$file" "$megabytes" "$large_every" >/dev/null
        else
            ONLY=$only "$GEN" "$file" "$megabytes" "$large_every" >/dev/null
        fi
    fi
    exchanges=$("$BIN" read "$file" | grep -c . || true)
    # shellcheck disable=SC2086 # MODE is a list of flags
    total=$(valgrind --tool=callgrind --callgrind-out-file=/dev/null "$BIN" read $MODE "$file" \
        2>&1 >/dev/null | sed -n 's/.*Collected : \([0-9]*\).*/\1/p')
    printf '%-14s %9d %14d %12d\n' "$name" "$exchanges" "$total" "$((total / (exchanges > 0 ? exchanges : 1)))"
done
