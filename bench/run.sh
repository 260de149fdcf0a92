#!/usr/bin/env bash
# aekit against PyTorch at its best on the reference workloads of BENCHMARKS.md, alternately
# (aekit, then every PyTorch configuration, PAIRS rounds per workload), on all cores for both.
# PyTorch runs in each configuration a performance-minded user tries (eager with foreach or
# fused Adam, torch.compile of the step with either; for C eager or compiled; for the latencies
# eager under inference_mode, as the issue asks), and aekit is compared with the fastest.
# `aekit-bench limits` runs in every round: the samples/s of each workload's matrix products
# alone, which the aekit column is also read against.
# Prints every run as a JSON line, then the tables.
# Usage: bash bench/run.sh [PAIRS (default 3)] [WORKLOADS (default "A B C latency")]
# Environment: SAMPLES=n sets A's, B's and C's sample count (defaults: 60,000, 19,200, 60,000);
# DEVICE=gpu measures `--device gpu` against PyTorch on CUDA (no limits then);
# AEKIT_BENCH=path uses a prebuilt aekit-bench instead of building one; PEER_PYTHON=path a Python
# that has torch (default bench/.venv, created here with `pip install torch`; where torch cannot
# be installed, aekit runs alone and the script says so).
set -euo pipefail
cd "$(dirname "$0")/.."
pairs=${1:-3}
workloads=${2:-"A B C latency"}
device=${DEVICE:-cpu}
bench=${AEKIT_BENCH:-}
if [ -z "$bench" ]; then
  cargo build --release --quiet --bin aekit-bench
  bench=target/release/aekit-bench
fi
python=${PEER_PYTHON:-bench/.venv/bin/python}
peer_device=cpu
[ "$device" = gpu ] && peer_device=cuda
peer=1
if ! "$python" -c "import torch" 2>/dev/null; then
  if [ -n "${PEER_PYTHON:-}" ]; then
    echo "SKIP: $python has no torch; measuring aekit alone" >&2
    peer=0
  else
    echo "installing PyTorch into bench/.venv ..." >&2
    if ! { python3 -m venv bench/.venv && bench/.venv/bin/pip install -q torch; } >&2; then
      echo "SKIP: PyTorch could not be installed; measuring aekit alone" >&2
      peer=0
    fi
  fi
fi
configs_for() {
  case "$1" in
    A | B) echo "eager fused compile compile-fused" ;;
    C) echo "eager compile" ;;
    *) echo "eager" ;;
  esac
}
log=${BENCH_LOG:-$(mktemp)}
echo "date: $(date -u +%Y-%m-%dT%H:%MZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'), device $device, $(nproc) cores" | tee -a "$log"
for _ in $(seq "$pairs"); do
  for w in $workloads; do
    n=()
    [ "$w" != latency ] && [ -n "${SAMPLES:-}" ] && n=("$SAMPLES")
    "$bench" "$w" "${n[@]}" --device "$device" | tee -a "$log"
    if [ "$peer" = 1 ]; then
      for c in $(configs_for "$w"); do
        "$python" bench/peer_pytorch.py "$w" "${n[@]}" --config "$c" --device "$peer_device" | tee -a "$log" ||
          echo "{\"impl\": \"pytorch\", \"config\": \"$c\", \"workload\": \"$w\", \"failed\": true}" | tee -a "$log"
      done
    fi
  done
  if [ "$device" = cpu ]; then
    "$bench" limits | tee -a "$log"
  fi
done
python3 bench/report.py "$log"
