#!/usr/bin/env bash
# Two builds of aekit-bench alternately on the same workloads (before, after, PAIRS times per
# workload), then the median samples/s of each and their ratio: how a change moved speed,
# without a peer in between.
#   git worktree add /tmp/before REV && (cd /tmp/before && cargo build --release --bin aekit-bench)
#   bash bench/before_after.sh /tmp/before/target/release/aekit-bench target/release/aekit-bench 3 "A B"
set -euo pipefail
before=$1
after=$2
pairs=${3:-3}
workloads=${4:-"A B"}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for w in $workloads; do
  for _ in $(seq "$pairs"); do
    echo "before $("$before" "$w")" | tee -a "$log"
    echo "after $("$after" "$w")" | tee -a "$log"
  done
done
python3 - "$log" <<'PY'
import json, statistics, sys
rows = [(l.split(" ", 1)[0], json.loads(l.split(" ", 1)[1])) for l in open(sys.argv[1])]
for w in sorted({r["workload"] for _, r in rows}):
    b = [r["samples_per_sec"] for k, r in rows if k == "before" and r["workload"] == w]
    a = [r["samples_per_sec"] for k, r in rows if k == "after" and r["workload"] == w]
    pairs = " ".join(f"{y / x:.3f}" for x, y in zip(b, a))
    print(f"{w}: before {statistics.median(b):.0f} samples/s, after {statistics.median(a):.0f}, "
          f"ratio {statistics.median(a) / statistics.median(b):.3f} (per pair {pairs})")
PY
