#!/usr/bin/env bash
# Builds kwire with profile-guided optimisation (PGO): the release build,
# laid out and inlined by how kwire really runs. `kwire read` then takes
# 6% to 13% fewer instructions per exchange (11% on the benchmark's mix)
# and about a fifth less CPU time than from a plain `cargo build
# --release`, with the same output byte for byte.
#
#   scripts/build-pgo.sh                 # writes target/pgo/kwire
#   PGO_DIR=/tmp/kwire-pgo scripts/build-pgo.sh
#
# Three steps, each in a target directory of its own under PGO_DIR, so
# that the plain build stays cached:
#   1. an instrumented build (-Cprofile-generate) that counts, as it runs,
#      how often each branch and call is taken;
#   2. training: it reads every capture in corpus/captures (real clients
#      and brokers, see corpus/README.md) as lines, statistics and JSON,
#      and decodes every corpus frame. Nothing generated is trained on, so
#      benches/read_vs_tshark.sh measures this build on traffic it has not
#      seen;
#   3. the counts merged (llvm-profdata) and the optimised build made with
#      them (-Cprofile-use).
#
# Needs llvm-profdata from the same LLVM as rustc: rustup's llvm-tools
# component, which this adds when rustup is there.

set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

PGO_DIR=${PGO_DIR:-target/pgo}
mkdir -p "$PGO_DIR"
PGO_DIR=$(cd "$PGO_DIR" && pwd)

host=$(rustc -vV | sed -n 's/^host: //p')
profdata=$(rustc --print sysroot)/lib/rustlib/$host/bin/llvm-profdata
if [[ ! -x $profdata ]]; then
    if ! command -v rustup >/dev/null; then
        echo "build-pgo: llvm-profdata for rustc's LLVM is missing, and so is rustup to add it (rustup component add llvm-tools)" >&2
        exit 2
    fi
    rustup component add llvm-tools >&2
fi
if [[ ! -x $profdata ]]; then
    echo "build-pgo: $profdata is missing after rustup component add llvm-tools" >&2
    exit 2
fi

echo "build-pgo: 1/3 instrumented build" >&2
RUSTFLAGS="-Cprofile-generate=$PGO_DIR/raw" \
    cargo build --release --locked --quiet --bin kwire --target-dir "$PGO_DIR/generate"

echo "build-pgo: 2/3 training on corpus/" >&2
# Build scripts ran instrumented too: only the training's counts are kept.
rm -rf "$PGO_DIR/raw"
mkdir -p "$PGO_DIR/raw"
instrumented=$PGO_DIR/generate/release/kwire
export LLVM_PROFILE_FILE=$PGO_DIR/raw/kwire-%p-%m.profraw
for capture in "$ROOT"/corpus/captures/*.pcap; do
    for mode in "" "--stats" "--json" "--json --threads 1"; do
        # shellcheck disable=SC2086 # the mode is words
        "$instrumented" read --no-progress $mode "$capture" >/dev/null
    done
done
# Some corpus frames are malformed on purpose (corpus/findings.txt): their
# files end with an error status, which is what they are for.
for frames in "$ROOT"/corpus/frames/*.frames; do
    "$instrumented" decode --frames "$frames" >/dev/null 2>&1 || true
    "$instrumented" decode --frames --json "$frames" >/dev/null 2>&1 || true
done
unset LLVM_PROFILE_FILE

echo "build-pgo: 3/3 optimised build" >&2
"$profdata" merge -o "$PGO_DIR/kwire.profdata" "$PGO_DIR"/raw/*.profraw
RUSTFLAGS="-Cprofile-use=$PGO_DIR/kwire.profdata" \
    cargo build --release --locked --quiet --bin kwire --target-dir "$PGO_DIR/use"
cp "$PGO_DIR/use/release/kwire" "$PGO_DIR/kwire"
echo "$PGO_DIR/kwire"
