#!/usr/bin/env bash
# Inference with the rows split over the cores (each core its share through the whole network,
# single-threaded products) against the old path (every product split by gemm), alternately:
# `aekit-bench limits` once, then PAIRS pairs of workload C and of the latency workload.
# Optionally MIMALLOC_CHECK=1 adds pairs of B and A with mimalloc's purging off against on.
# Usage: bash bench/inference_split.sh [PAIRS (default 3)]
set -euo pipefail
cd "$(dirname "$0")/.."
pairs=${1:-3}
cargo build --release --quiet --bin aekit-bench
bench=target/release/aekit-bench
old_path=1000000000 # AEKIT_SHARE_ROWS larger than any input: one thread's path, as before
"$bench" limits
for _ in $(seq "$pairs"); do
  echo "C rows split:"; "$bench" C
  echo "C products split:"; AEKIT_SHARE_ROWS=$old_path "$bench" C
  echo "latency rows split:"; "$bench" latency
  echo "latency products split:"; AEKIT_SHARE_ROWS=$old_path "$bench" latency
done
if [ "${MIMALLOC_CHECK:-0}" = 1 ]; then
  for _ in $(seq "$pairs"); do
    for w in "B 12800" "A 30000"; do
      echo "$w purging:"; "$bench" $w
      echo "$w no purging:"; MIMALLOC_PURGE_DELAY=-1 "$bench" $w
    done
  done
fi
