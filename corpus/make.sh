#!/usr/bin/env bash
# Regenerate kwire's corpus of real Kafka traffic (see README.md).
#
#   corpus/make.sh              every capture, then frames and README tables
#   corpus/make.sh NAME...      only the named captures (e.g. kcat-mock), then
#                               frames and README tables for all captures
#   corpus/make.sh --frames     no capture, only frames and README tables
#
# Every broker is started here on free loopback ports and stopped at the end;
# every client runs under tcpdump on `lo`, filtered to the broker's ports.
# Needs root (tcpdump), tcpdump, tshark, kcat; /usr/bin/python3 with
# Debian's kafka (python3-kafka), confluent_kafka, snappy, lz4, zstandard,
# xxhash; a venv with PyPI's confluent-kafka and kafka-python (MODERN_PY);
# tansu 0.6.0 for the *-tansu captures.  corpus/setup.sh installs them all.
# Environment: TANSU= path of the tansu binary, MODERN_PY= the venv's python;
# SKIP_TANSU=1 / SKIP_MODERN=1 leave those captures as they are.
set -euo pipefail

CORPUS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SCEN=$CORPUS/scenarios
CAPS=$CORPUS/captures
FRAMES=$CORPUS/frames
PY=/usr/bin/python3
MODERN_PY=${MODERN_PY:-$HOME/.cache/kwire-corpus-venv/bin/python}
TANSU=${TANSU:-$(command -v tansu || echo "$HOME/.cargo/bin/tansu")}
SCENARIO_TIMEOUT=240     # seconds, per capture
BROKER_LIFETIME=600      # seconds; the mock cluster exits by itself after that

die() { echo "make.sh: error: $*" >&2; exit 1; }
say() { echo "make.sh: $*" >&2; }

# ------------------------------------------------------------ prerequisites
ONLY=()
FRAMES_ONLY=0
for a in "$@"; do
    case $a in
        --frames) FRAMES_ONLY=1 ;;
        -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
        -*) die "unknown option $a" ;;
        *) ONLY+=("$a") ;;
    esac
done

[[ -x $PY ]] || die "$PY not found (Debian's python3)"
if [[ $FRAMES_ONLY == 0 ]]; then
    [[ $EUID -eq 0 ]] || die "capturing on lo needs root"
    for c in tcpdump tshark kcat timeout; do
        command -v "$c" > /dev/null || die "$c not found (see corpus/setup.sh)"
    done
    for m in kafka confluent_kafka snappy lz4.frame zstandard xxhash; do
        $PY -c "import $m" 2> /dev/null \
            || die "python module $m missing for $PY (see corpus/setup.sh)"
    done
    if [[ ${SKIP_MODERN:-0} != 1 ]]; then
        for m in kafka confluent_kafka snappy lz4.frame zstandard; do
            "$MODERN_PY" -c "import $m" 2> /dev/null \
                || die "python module $m missing for $MODERN_PY (set MODERN_PY=, SKIP_MODERN=1, or see corpus/setup.sh)"
        done
    fi
    if [[ ${SKIP_TANSU:-0} != 1 ]]; then
        [[ -x $TANSU ]] || die "tansu not found at $TANSU (set TANSU=, SKIP_TANSU=1, or see corpus/setup.sh)"
        "$TANSU" --version 2> /dev/null | grep -q '0\.6\.0' \
            || say "warning: $("$TANSU" --version 2>&1 | head -1) is not tansu 0.6.0"
    fi
fi

# ------------------------------------------------------------ process control
WORK=$(mktemp -d /tmp/kwire-corpus.XXXXXX)
PIDS=()          # every background process started here

stop_pid() {     # stop_pid PID: SIGINT, wait up to 5 s, then SIGKILL
    local pid=$1 i
    kill -INT "$pid" 2> /dev/null || return 0
    for i in $(seq 50); do
        kill -0 "$pid" 2> /dev/null || { wait "$pid" 2> /dev/null || true; return 0; }
        sleep 0.1
    done
    kill -KILL "$pid" 2> /dev/null || true
    wait "$pid" 2> /dev/null || true
}

cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
    rm -rf "$WORK"
    rm -f "$CAPS"/*.pcap.tmp
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    $PY -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_port() {    # wait_port PORT SECONDS
    $PY - "$1" "$2" <<'EOF'
import socket, sys, time
port, limit = int(sys.argv[1]), time.monotonic() + float(sys.argv[2])
while time.monotonic() < limit:
    try:
        socket.create_connection(("127.0.0.1", port), 0.5).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.2)
sys.exit(1)
EOF
}

# start_mock PYTHON NBROKERS [API:MIN:MAX...] -> sets BOOT (bootstrap), PORTS,
# BROKER_PID; the mock cluster of the librdkafka PYTHON's confluent_kafka uses
start_mock() {
    local py=$1 out=$WORK/mock.$RANDOM i
    BROKER_ERR=$out.err
    shift
    "$py" "$SCEN/mockcluster.py" "$1" "$BROKER_LIFETIME" "${@:2}" > "$out" 2> "$out.err" &
    BROKER_PID=$!
    PIDS+=("$BROKER_PID")
    for i in $(seq 100); do [[ -s $out ]] && break; sleep 0.1; done
    BOOT=$(head -1 "$out")
    [[ -n $BOOT ]] || die "mock cluster did not start: $(cat "$out.err")"
    PORTS=$(tr ',' '\n' <<< "$BOOT" | sed 's/.*://' | paste -sd' ')
    BROKER="$(head -1 "$out.err") mock cluster ($1 broker(s)${2:+, API version caps ${*:2}})"
}

# start_tansu [extra tansu broker args...] -> sets BOOT, PORTS, BROKER_PID
start_tansu() {
    local port
    port=$(free_port)
    "$TANSU" broker --storage-engine memory://tansu/ \
        --listener-url "tcp://127.0.0.1:$port" \
        --advertised-listener-url "tcp://127.0.0.1:$port" "$@" \
        > "$WORK/tansu.$port.log" 2>&1 &
    BROKER_PID=$!
    BROKER_ERR=$WORK/tansu.$port.log
    PIDS+=("$BROKER_PID")
    wait_port "$port" 30 || die "tansu did not listen on $port: $(tail -5 "$WORK/tansu.$port.log")"
    BOOT=127.0.0.1:$port
    PORTS=$port
    BROKER="$("$TANSU" --version 2>&1 | head -1) (memory storage)"
}

stop_broker() { stop_pid "$BROKER_PID"; }

# capture NAME CMD ARGS... : run CMD (with BOOT appended by the caller) under
# tcpdump filtered to $PORTS, writing captures/NAME.pcap
capture() {
    local name=$1 filter="" p i tpid rc
    shift
    for p in $PORTS; do filter+="${filter:+ or }tcp port $p"; done
    local err=$WORK/tcpdump.$name.err
    tcpdump --immediate-mode -B 32768 -Z root -i lo -s 0 -U -n -w "$CAPS/$name.pcap.tmp" "$filter" 2> "$err" &
    tpid=$!
    PIDS+=("$tpid")
    for i in $(seq 100); do grep -q 'listening on' "$err" 2> /dev/null && break; sleep 0.1; done
    grep -q 'listening on' "$err" || die "tcpdump did not start: $(cat "$err")"
    say "$name: $* (broker $BOOT)"
    rc=0
    timeout "$SCENARIO_TIMEOUT" "$@" > "$WORK/$name.out" 2> "$WORK/$name.log" || rc=$?
    # let the last packets reach tcpdump: with TPACKET_V3, packets still in an
    # unretired ring block are lost at SIGINT (--immediate-mode avoids most)
    sleep 1.5
    stop_pid "$tpid"
    sed 's/^/    /' "$WORK/$name.log" >&2
    kill -0 "$BROKER_PID" 2> /dev/null \
        || say "warning: $name: the broker exited during the scenario: $(tail -3 "$BROKER_ERR")"
    grep -h 'packets captured\|received by filter\|dropped by kernel' "$err" | sed "s/^/make.sh: $name: tcpdump: /" >&2 || true
    [[ $rc == 0 ]] || die "$name: scenario failed with exit $rc"
    mv "$CAPS/$name.pcap.tmp" "$CAPS/$name.pcap"
    { echo "capture: $name"; echo "broker: $BROKER"; echo "command: ${*##*/}";
      echo "--- scenario log (stderr)"; cat "$WORK/$name.log"; } > "$CAPS/$name.log"
}

want() {         # want NAME: is NAME selected?
    [[ $FRAMES_ONLY == 1 ]] && return 1
    [[ ${#ONLY[@]} == 0 ]] && return 0
    local n
    for n in "${ONLY[@]}"; do [[ $n == "$1" ]] && return 0; done
    return 1
}

mkdir -p "$CAPS" "$FRAMES"

# ------------------------------------------------------------ librdkafka mock
if want kcat-mock; then
    start_mock $PY 1
    capture kcat-mock "$SCEN/kcat_mock.sh" "$BOOT"
    stop_broker
fi
if want kcat-legacy-mock; then
    start_mock $PY 1
    capture kcat-legacy-mock "$SCEN/kcat_legacy.sh" "$BOOT"
    stop_broker
fi
if want kcat-magic1-mock; then
    start_mock $PY 1 0:0:2 1:0:3
    capture kcat-magic1-mock "$SCEN/kcat_magic1.sh" "$BOOT"
    stop_broker
fi
if want confluent-mock; then
    start_mock $PY 3
    capture confluent-mock $PY "$SCEN/confluent_scenario.py" "$BOOT"
    stop_broker
fi
if want python-mock; then
    start_mock $PY 1
    capture python-mock $PY "$SCEN/kafka_python.py" "$BOOT"
    stop_broker
fi
for v in 0.8.2 0.9 0.10; do
    if want "python-legacy-$v-mock"; then
        start_mock $PY 1
        group=--group
        [[ $v == 0.8.2 ]] && group=""    # no consumer groups before 0.9
        capture "python-legacy-$v-mock" $PY "$SCEN/legacy_python.py" "$BOOT" "$v" $group
        stop_broker
    fi
done

# ------------------------------------------------------------ PyPI clients
if [[ ${SKIP_MODERN:-0} != 1 ]] && want confluent-modern-mock; then
    start_mock "$MODERN_PY" 3
    capture confluent-modern-mock "$MODERN_PY" "$SCEN/confluent_scenario.py" "$BOOT" --kip848
    stop_broker
fi

# ------------------------------------------------------------ Tansu
if [[ ${SKIP_TANSU:-0} != 1 ]]; then
    if want python-tansu; then
        start_tansu
        capture python-tansu $PY "$SCEN/kafka_python.py" "$BOOT"
        stop_broker
    fi
    if want python-legacy-0.10-tansu; then
        start_tansu
        capture python-legacy-0.10-tansu $PY "$SCEN/legacy_python.py" "$BOOT" 0.10 --create-topics --consume-limit 3
        stop_broker
    fi
    if want python-sasl-tansu; then
        start_tansu --authentication
        capture python-sasl-tansu $PY "$SCEN/sasl_scenario.py" "$BOOT" kafka-python \
            SCRAM-SHA-256 SCRAM-SHA-512 OAUTHBEARER PLAIN
        stop_broker
    fi
    if [[ ${SKIP_MODERN:-0} != 1 ]]; then
        if want python-modern-tansu; then
            start_tansu
            capture python-modern-tansu "$MODERN_PY" "$SCEN/kafka_python.py" "$BOOT"
            stop_broker
        fi
        if want confluent-modern-tansu; then
            start_tansu
            capture confluent-modern-tansu "$MODERN_PY" "$SCEN/confluent_scenario.py" "$BOOT" \
                --create-topics --no-txn
            stop_broker
        fi
        if want confluent-modern-sasl-tansu; then
            start_tansu --authentication
            capture confluent-modern-sasl-tansu "$MODERN_PY" "$SCEN/sasl_scenario.py" "$BOOT" \
                confluent SCRAM-SHA-256 SCRAM-SHA-512 OAUTHBEARER PLAIN
            stop_broker
        fi
    fi
fi

# ------------------------------------------------------------ frames + tables
rm -f "$CAPS"/*.pcap.tmp
say "extracting frames"
$PY "$CORPUS/extract_frames.py" --all "$CAPS" "$FRAMES"
fail=0
for f in "$FRAMES"/*.frames; do
    n=$(basename "$f" .frames)
    if command -v tshark > /dev/null; then
        $PY "$CORPUS/verify_tshark.py" "$CAPS/$n.pcap" "$f" | tail -1 || fail=1
    fi
done
$PY "$CORPUS/summarize.py" --readme "$CORPUS/README.md" "$FRAMES"/*.frames
if grep -l 'gap of' "$FRAMES"/*.frames; then
    fail=1
    say "the frames files above have TCP gaps (packets lost by the capture): regenerate them"
fi
[[ $fail == 0 ]] || die "frames disagree with tshark or have gaps (see above)"
say "done: $(ls "$CAPS"/*.pcap | wc -l) captures, $(du -sh "$CORPUS" | cut -f1) in corpus/"
