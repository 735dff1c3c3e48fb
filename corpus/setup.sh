#!/usr/bin/env bash
# Install what corpus/make.sh needs, on Debian 12 (bookworm), as root.
#   - Debian: tcpdump, tshark, kcat, python3-kafka, python3-confluent-kafka
#     (librdkafka 2.0.2) and the codecs python3-kafka uses;
#   - a venv with PyPI clients (newer librdkafka, newer kafka-python):
#     $MODERN_VENV, default ~/.cache/kwire-corpus-venv (make.sh's MODERN_PY);
#   - tansu 0.6.0 from crates.io (a long build: ~30 min on 2 cores).
# Set SKIP_TANSU=1 to leave tansu out.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y tcpdump tshark kcat librdkafka1 python3-kafka python3-confluent-kafka \
    python3-snappy python3-lz4 python3-zstandard python3-xxhash python3-venv

VENV=${MODERN_VENV:-$HOME/.cache/kwire-corpus-venv}
[[ -x $VENV/bin/python ]] || python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet confluent-kafka==2.16.1 kafka-python==3.0.12 \
    lz4==4.4.5 zstandard==0.25.0 python-snappy==0.7.3

if [[ ${SKIP_TANSU:-0} != 1 ]] && ! command -v tansu > /dev/null \
        && [[ ! -x $HOME/.cargo/bin/tansu ]]; then
    cargo install tansu --version 0.6.0 --locked --features dynostore
fi
