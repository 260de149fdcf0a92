#!/usr/bin/env bash
# Measures the global allocator's effect on training speed: the same training job with the
# default build (mimalloc) and with glibc malloc, alternately, PAIRS times each.
# Usage: bash bench/allocator.sh [PAIRS] [extra `aekit train` flags]
# Prints samples/s (from metrics.jsonl, first epoch excluded) and peak RSS (KiB) per run, then
# the medians and the ratio mimalloc / glibc.
set -euo pipefail
cd "$(dirname "$0")/.."
pairs=${1:-3}
shift || true
cargo build --release --quiet --no-default-features
cp target/release/aekit target/aekit-glibc
cargo build --release --quiet
cp target/release/aekit target/aekit-mimalloc
job=(train --data shapes --shapes-train 20000 --hidden 1000,500,250 --latent 30 --epochs 3
     --batch-size 256 --quiet "$@")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rate() { python3 -c "import json,sys; m=[json.loads(l) for l in open(sys.argv[1])]; m=m[1:] or m; print(sum(x['samples_per_sec'] for x in m)/len(m))" "$1"; }
for i in $(seq "$pairs"); do
  for v in mimalloc glibc; do
    /usr/bin/time -f "%M" -o "$work/rss" "target/aekit-$v" "${job[@]}" --out "$work/$v-$i" >/dev/null 2>&1
    echo "$v $(rate "$work/$v-$i/metrics.jsonl") $(cat "$work/rss")"
  done
done | tee "$work/rates"
python3 - "$work/rates" <<'PY'
import sys, statistics
r = {}
for line in open(sys.argv[1]):
    k, v, rss = line.split(); r.setdefault(k, []).append((float(v), int(rss)))
med = lambda k, i: statistics.median(x[i] for x in r[k])
m, g = med("mimalloc", 0), med("glibc", 0)
print(f"median samples/s: mimalloc {m:.0f}, glibc {g:.0f}, ratio {m/g:.2f}")
print(f"median peak RSS: mimalloc {med('mimalloc', 1)/1024:.0f} MiB, glibc {med('glibc', 1)/1024:.0f} MiB")
PY
