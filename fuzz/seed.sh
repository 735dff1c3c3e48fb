#!/usr/bin/env bash
# Seeds the `decode` fuzz target's corpus from the real frames in
# corpus/frames: one file per frame, named by content hash, holding the
# response selector (API key and version, big-endian int16 each) and then
# the frame itself, as fuzz_targets/decode.rs reads it.
#
# Usage: fuzz/seed.sh [frames-dir]   (default: corpus/frames)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
frames="${1:-$here/../corpus/frames}"
out="$here/corpus/decode"
mkdir -p "$out"
shopt -s nullglob
files=("$frames"/*.frames)
if [ ${#files[@]} -eq 0 ]; then
    echo "seed.sh: no .frames files in $frames" >&2
    exit 2
fi
python3 - "$out" "${files[@]}" <<'PY'
import hashlib, struct, sys
out, paths = sys.argv[1], sys.argv[2:]
written = 0
for path in paths:
    for line in open(path):
        fields = line.split()
        if len(fields) != 5 or fields[0] not in ("req", "resp"):
            continue
        key, version = int(fields[1]), int(fields[2])
        data = struct.pack(">hh", key, version) + bytes.fromhex(fields[4])
        name = hashlib.sha1(data).hexdigest()
        with open(f"{out}/{name}", "wb") as f:
            f.write(data)
        written += 1
print(f"seed.sh: {written} frames into {out}")
PY
