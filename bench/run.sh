#!/usr/bin/env bash
# aekit against PyTorch on the reference workloads of BENCHMARKS.md, alternately (aekit, then
# PyTorch, PAIRS times per workload), on all cores for both. Prints every run as a JSON line,
# then per workload the medians and the ratios aekit / PyTorch.
# Usage: bash bench/run.sh [PAIRS (default 3)] [WORKLOADS (default "A B C")]
# The PyTorch peer lives in bench/.venv (created here, `pip install torch`); where torch cannot
# be installed, aekit runs alone and the script says so.
set -euo pipefail
cd "$(dirname "$0")/.."
pairs=${1:-3}
workloads=${2:-"A B C"}
cargo build --release --quiet --bin aekit-bench
venv=bench/.venv
peer=1
if ! "$venv/bin/python" -c "import torch" 2>/dev/null; then
  echo "installing PyTorch into $venv ..." >&2
  if ! { python3 -m venv "$venv" && "$venv/bin/pip" install -q torch; } >&2; then
    echo "SKIP: PyTorch could not be installed; measuring aekit alone" >&2
    peer=0
  fi
fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for w in $workloads; do
  for _ in $(seq "$pairs"); do
    target/release/aekit-bench "$w" | tee -a "$log"
    if [ "$peer" = 1 ]; then
      "$venv/bin/python" bench/peer_pytorch.py "$w" | tee -a "$log"
    fi
  done
done
# The arithmetic limit: A's and C's matrix products alone, through the same gemm crate.
target/release/aekit-bench limits | tee -a "$log"
python3 - "$log" <<'PY'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
def med(impl, w, key):
    v = [r[key] for r in runs if r["impl"] == impl and r["workload"] == w and r[key] is not None]
    return statistics.median(v) if v else None
print(f"{'workload':<9}{'aekit/s':>10}{'torch/s':>10}{'ratio':>7}{'RSS aekit':>11}{'RSS torch':>11}{'RSS ratio':>10}{'1st step':>10}{'torch 1st':>10}")
workloads = sorted({r["workload"] for r in runs if r["impl"] != "gemm-limit"})
for w in workloads:
    a, t = med("aekit", w, "samples_per_sec"), med("pytorch", w, "samples_per_sec")
    ra, rt = med("aekit", w, "peak_rss_mib"), med("pytorch", w, "peak_rss_mib")
    fa, ft = med("aekit", w, "first_step_s"), med("pytorch", w, "first_step_s")
    f = lambda v, fmt: format(v, fmt) if v is not None else "-".rjust(int(fmt.split(".")[0]))
    ratio = a / t if a and t else None
    rss_ratio = ra / rt if ra and rt else None
    print(f"{w:<9}{f(a, '10.0f')}{f(t, '10.0f')}{f(ratio, '7.2f')}{f(ra, '10.0f')}M{f(rt, '10.0f')}M{f(rss_ratio, '10.2f')}{f(fa, '9.2f')}s{f(ft, '9.2f')}s")
for r in runs:
    if r["impl"] == "gemm-limit" and r["workload"] in workloads:
        print(f"{r['workload']}: its products alone (gemm, {r['threads']} threads) would run "
              f"{r['samples_per_sec']:.0f} samples/s ({r['gflop_per_sec']:.0f} GFLOP/s)")
PY
