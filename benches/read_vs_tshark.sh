#!/usr/bin/env bash
# kwire read against tshark's Kafka dissector on the same large generated
# capture: summary lines, full decode and statistics, with MB/s, ratios and
# peak RSS at two capture sizes.
#
#   benches/read_vs_tshark.sh              # sizes 200 and 800 MB
#   SIZES="100 400" PREFIX_MB=10 benches/read_vs_tshark.sh
#   KEEP=1 WORK=/tmp/kb benches/read_vs_tshark.sh   # keep the captures
#   RUNS=5 benches/read_vs_tshark.sh       # best of 5 runs (default 3)
#   PGO=0 benches/read_vs_tshark.sh        # the plain build only
#
# kwire is built by scripts/build-pgo.sh (profile-guided, trained on the
# corpus captures only, never on generated traffic; about 4 minutes), and
# the summary lines are timed with the plain `cargo build --release` too;
# PGO=0 times the plain build throughout and skips the profile-guided one.
#
# The capture comes from `examples/bench_capture.rs`: 16 loopback
# connections to port 9092 with many small exchanges (Produce, Fetch,
# Metadata, ListOffsets, OffsetCommit, Heartbeat) and, one in every 1000,
# a Produce request or Fetch response of 1 MiB of records in 8 partitions
# (one in four lz4): about half the bytes in small frames, half in large
# batches. Its versions are ones tshark 4.0 dissects completely.
#
# What is timed (each command RUNS times, output to /dev/null, under
# /usr/bin/time for CPU time and peak RSS, with the shell's microsecond
# clock for wall time, as time's own is in hundredths and a run on the
# prefix takes a few of them; the least wall time and the least CPU time
# of the runs are kept, each on its own):
#   summary:  kwire read FILE          vs  tshark -r FILE -d tcp.port==9092,kafka
#   decode:   kwire read --json FILE   vs  tshark -V ... on the first
#             PREFIX_MB MB of the same file (editcap -r): tshark -V on
#             hundreds of MB takes far too long, so its rate is measured on
#             the prefix and compared per MB; kwire runs on the prefix too,
#             for a ratio on the very same bytes.
#   stats:    kwire read --stats FILE  vs  tshark -q -z io,stat,0,kafka
#             -z conv,tcp (tshark has no Kafka statistics; this makes it
#             dissect every Kafka PDU and aggregate without printing).
# MB are 10^6 bytes of capture file. MB/s is file size over wall time;
# "cpu MB/s" over user+sys time, which is what one core does when the
# machine is busy with other work. kwire reads on one thread; --json
# decodes bodies on it and on worker threads (by default as many threads
# in all as there are cores, at most 4), and is timed a second time with
# --threads 1, all on one.
#
# Needs: cargo, tshark and editcap (Debian: apt-get install tshark), GNU
# time (/usr/bin/time; Debian: apt-get install time).

set -euo pipefail
cd "$(dirname "$0")/.."

SIZES=${SIZES:-"200 800"}
PREFIX_MB=${PREFIX_MB:-20}
RUNS=${RUNS:-3}
PORT=9092

for tool in tshark editcap capinfos /usr/bin/time; do
    if ! command -v "$tool" >/dev/null; then
        echo "read_vs_tshark: $tool is missing: apt-get install tshark time" >&2
        exit 2
    fi
done

if [[ -n ${WORK:-} ]]; then
    mkdir -p "$WORK"
else
    WORK=$(mktemp -d /tmp/kwire-bench.XXXXXX)
fi
if [[ -z ${KEEP:-} ]]; then
    trap 'rm -rf "$WORK"' EXIT
fi

cargo build --release --quiet --bin kwire --example bench_capture
PLAIN=target/release/kwire
KWIRE=$PLAIN
BUILD="cargo build --release"
if [[ ${PGO:-1} != 0 ]]; then
    KWIRE=$(bash scripts/build-pgo.sh)
    BUILD="scripts/build-pgo.sh (profile-guided, trained on corpus/)"
fi
GEN=target/release/examples/bench_capture

echo "kwire $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo ' (with local changes)'), $($KWIRE --version 2>/dev/null | head -1), built by $BUILD"
echo "$(tshark --version 2>/dev/null | head -1)"
echo "$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
echo

# run LABEL FILE COMMAND...: times COMMAND (stdout to /dev/null) RUNS
# times and prints one row with the least wall time and the least CPU
# time of the runs (a busy or virtual machine adds noise, never speed;
# with several threads the two need not come from the same run); sets
# WALL and CPU to them and RSS_MB to the largest peak of all runs.
run() {
    local label=$1 file=$2
    shift 2
    local bytes times start wall user sys rss cpu
    bytes=$(stat -c %s "$file")
    times=$WORK/time.txt
    CPU="" WALL="" RSS_MB=0
    for ((round = 0; round < RUNS; round++)); do
        start=$EPOCHREALTIME
        if ! /usr/bin/time -f '%U %S %M' -o "$times" "$@" >/dev/null 2>"$WORK/stderr.txt"; then
            echo "read_vs_tshark: failed: $*" >&2
            cat "$WORK/stderr.txt" >&2
            exit 1
        fi
        wall=$(echo "$EPOCHREALTIME - $start" | bc -l)
        read -r user sys rss <"$times"
        cpu=$(echo "$user + $sys" | bc -l)
        if [[ -z $CPU ]] || (($(echo "$cpu < $CPU" | bc -l))); then
            CPU=$cpu
        fi
        if [[ -z $WALL ]] || (($(echo "$wall < $WALL" | bc -l))); then
            WALL=$wall
        fi
        rss=$((rss / 1024))
        ((rss > RSS_MB)) && RSS_MB=$rss
    done
    awk -v l="$label" -v b="$bytes" -v w="$WALL" -v c="$CPU" -v r="$RSS_MB" 'BEGIN {
        mb = b / 1e6
        printf "  %-42s %8.1f MB %8.3f s %9.1f MB/s %9.1f cpu MB/s %7d MB RSS\n",
            l, mb, w, mb / (w > 0 ? w : 0.001), mb / (c > 0 ? c : 0.001), r
    }'
}

# rate FILE: MB/s of the last run (wall)
rate() {
    awk -v b="$(stat -c %s "$1")" -v w="$WALL" 'BEGIN { printf "%.3f", b / 1e6 / (w > 0 ? w : 0.001) }'
}

# cpu_rate FILE: MB/s of CPU time (user+sys) of the last run
cpu_rate() {
    awk -v b="$(stat -c %s "$1")" -v c="$CPU" 'BEGIN { printf "%.3f", b / 1e6 / (c > 0 ? c : 0.001) }'
}

ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1fx", a / b }'
}

declare -A SUMMARY_RSS JSON_RSS STATS_RSS
for size in $SIZES; do
    file=$WORK/bench-$size.pcap
    [[ -s $file ]] || $GEN "$file" "$size" >/dev/null
    packets=$(capinfos -c -M "$file" | awk '/Number of packets/ { print $NF }')
    echo "== capture of $size MB: $(stat -c %s "$file") bytes, $packets packets"

    run "kwire read" "$file" $KWIRE read --no-progress "$file"
    kwire_summary=$(rate "$file")
    SUMMARY_RSS[$size]=$RSS_MB
    if [[ $KWIRE != "$PLAIN" ]]; then
        run "kwire read (cargo build --release)" "$file" $PLAIN read --no-progress "$file"
    fi
    run "tshark -r (summary lines)" "$file" tshark -r "$file" -n -d tcp.port==$PORT,kafka
    tshark_summary=$(rate "$file")
    echo "  summary: kwire is $(ratio "$kwire_summary" "$tshark_summary") faster"

    run "kwire read --json" "$file" $KWIRE read --no-progress --json "$file"
    kwire_json=$(rate "$file")
    JSON_RSS[$size]=$RSS_MB
    prefix=$WORK/prefix-$size.pcap
    take=$((packets * PREFIX_MB / size))
    editcap -r "$file" "$prefix" "1-$take"
    kwire_json_cpu=$(cpu_rate "$file")
    run "kwire read --json --threads 1" "$file" $KWIRE read --no-progress --json --threads 1 "$file"
    kwire_json_one=$(rate "$file")
    kwire_json_one_cpu=$(cpu_rate "$file")
    run "kwire read --json (prefix)" "$prefix" $KWIRE read --no-progress --json "$prefix"
    kwire_json_prefix=$(rate "$prefix")
    kwire_json_prefix_cpu=$(cpu_rate "$prefix")
    run "tshark -V (prefix)" "$prefix" tshark -r "$prefix" -n -d tcp.port==$PORT,kafka -V
    tshark_v=$(rate "$prefix")
    tshark_v_cpu=$(cpu_rate "$prefix")
    echo "  full decode vs tshark -V (goal 50x), by wall time / by CPU time:"
    echo "    kwire --json on the whole capture vs tshark -V on its first $PREFIX_MB MB: $(ratio "$kwire_json" "$tshark_v") / $(ratio "$kwire_json_cpu" "$tshark_v_cpu")"
    echo "    the same with --threads 1 (all on the reading thread):              $(ratio "$kwire_json_one" "$tshark_v") / $(ratio "$kwire_json_one_cpu" "$tshark_v_cpu")"
    echo "    both on the same first $PREFIX_MB MB:                                  $(ratio "$kwire_json_prefix" "$tshark_v") / $(ratio "$kwire_json_prefix_cpu" "$tshark_v_cpu")"

    run "kwire read --stats" "$file" $KWIRE read --no-progress --stats "$file"
    kwire_stats=$(rate "$file")
    STATS_RSS[$size]=$RSS_MB
    run "tshark -q -z io,stat,0,kafka -z conv,tcp" "$file" \
        tshark -r "$file" -n -d tcp.port==$PORT,kafka -q -z io,stat,0,kafka -z conv,tcp
    tshark_stats=$(rate "$file")
    echo "  stats: kwire is $(ratio "$kwire_stats" "$tshark_stats") faster"
    echo
done

echo "== kwire peak RSS by capture size (MB)"
for size in $SIZES; do
    echo "  $size MB capture: read ${SUMMARY_RSS[$size]}, --json ${JSON_RSS[$size]}, --stats ${STATS_RSS[$size]}"
done
echo
echo "Goals (issue 3): full decode >= 50x tshark -V; summary >= 1000 MB/s on one core; RSS flat as the capture grows."
