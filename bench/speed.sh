#!/usr/bin/env bash
# Speed of adGAN against the plain-PyTorch reference, measured in one run on
# one device, printed as ratios (ours / reference; > 1 means adGAN is faster).
#   bench/speed.sh [cpu|cuda] [iterations] [reference.py]
# The reference is ../shared/reference/ref_adgan.py unless given.
set -euo pipefail
cd "$(dirname "$0")/.."
DEVICE=${1:-cpu}
ITERS=${2:-5}
REF=${3:-../shared/reference/ref_adgan.py}
PY=${PYTHON:-.venv/bin/python}
BIN=${ADGAN_BIN:-target/release/adgan}
THREADS=${THREADS:-$(nproc)}
[ -x "$BIN" ] || { echo "build first: make build" >&2; exit 1; }
[ -f "$REF" ] || { echo "reference not found: $REF" >&2; exit 1; }
ours_t=$("$BIN" bench --what train --device "$DEVICE" --iters "$ITERS" --threads "$THREADS")
ref_t=$("$PY" "$REF" bench --device "$DEVICE" --iters "$ITERS" --threads "$THREADS")
ours_v=$("$BIN" bench --what volume --device "$DEVICE" --stride 8 --threads "$THREADS")
ref_v=$("$PY" "$REF" bench-volume --device "$DEVICE" --stride 8 --threads "$THREADS")
"$PY" - "$ours_t" "$ref_t" "$ours_v" "$ref_v" "$DEVICE" "$ITERS" <<'PY'
import json, sys, datetime, platform
ot, rt, ov, rv = (json.loads(a) for a in sys.argv[1:5])
dev, iters = sys.argv[5], sys.argv[6]
rows = [
    ("phase-1 iterations/s (batch 64, n_critic 5)", ot["phase1_it_per_s"], rt["phase1_it_per_s"], True),
    ("phase-2 iterations/s (batch 64)", ot["phase2_it_per_s"], rt["phase2_it_per_s"], True),
    ("critic patches/s (batches of 512)", ot["score_patches_per_s"], rt["score_patches_per_s"], True),
    ("volume 240x240x155 stride 8, seconds", ov["volume_seconds"], rv["volume_seconds"], False),
]
print(f"# adGAN speed vs reference, {dev}, {iters} timed iterations, {datetime.date.today()}, {platform.node()}, torch {rt.get('torch')}")
print(f"| measure | adGAN | reference | ratio (speed-up) |")
print(f"|---|---|---|---|")
for name, o, r, higher in rows:
    ratio = (o / r) if higher else (r / o)
    print(f"| {name} | {o:.4g} | {r:.4g} | {ratio:.2f}x |")
PY
