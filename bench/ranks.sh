#!/usr/bin/env bash
# Two MPI ranks × one thread against one process × two threads (BENCHMARKS.md, "More than one
# machine"): workload A's model (784-1000-500-250-30 ReLU, MSE, Adam 1e-3, batch 256), one
# epoch of MNIST, in alternating pairs. samples/s from each run's summary.json (the training
# loop alone) and each command's wall time (with start-up: MPI's, reading MNIST), and a check
# that the pair ended in the same weights. Bytes moved per step: what each rank sends in the
# step's one exchange (every parameter's gradient as f32, one flag word per tensor, four words
# of header) and receives from the other.
# Usage: [PAIRS=3] [BATCH=256] bash bench/ranks.sh [target/release/aekit built with --features mpi]
# Reads ../shared/data/mnist (or MNIST_DIR); skips with a message where it or mpirun is absent.
set -euo pipefail
bin=$(realpath "${1:-target/release/aekit}")
pairs=${PAIRS:-3}
mnist=${MNIST_DIR:-$(dirname "$0")/../../shared/data/mnist}
if [ ! -d "$mnist" ]; then
  echo "SKIP: $mnist not found (set MNIST_DIR)"
  exit 0
fi
if ! command -v mpirun >/dev/null; then
  echo "SKIP: mpirun not found (Debian: openmpi-bin libopenmpi-dev)"
  exit 0
fi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mnist=$(realpath "$mnist")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
batch=${BATCH:-256}
job=(train --data mnist --data-dir "$mnist" --hidden 1000,500,250 --latent 30 --activation relu
  --loss mse --batch-size "$batch" --lr 1e-3 --epochs 1 --seed 1 --quiet --no-report)
echo "# batch $batch; $(date -u +%Y-%m-%dT%H:%MZ) $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores, $(mpirun --version | head -1)"

samples_per_sec() { python3 -c "import json,sys; print(round(json.load(open(sys.argv[1]))['samples_per_sec']))" "$1/summary.json"; }
now() { date +%s.%N; }

echo "pair one_process_samples_per_s two_ranks_samples_per_s ranks/process one_process_wall_s two_ranks_wall_s same_weights"
for i in $(seq 1 "$pairs"); do
  t0=$(now)
  "$bin" --threads 2 "${job[@]}" --out "$work/one-$i"
  t1=$(now)
  mpirun --oversubscribe -np 2 "$bin" --threads 1 "${job[@]}" --out "$work/two-$i"
  t2=$(now)
  a=$(samples_per_sec "$work/one-$i"); b=$(samples_per_sec "$work/two-$i")
  same=$(cmp -s "$work/one-$i/model.safetensors" "$work/two-$i/model.safetensors" && echo yes || echo NO)
  python3 -c "print($i, $a, $b, f'{$b/$a:.3f}', f'{$t1-$t0:.1f}', f'{$t2-$t1:.1f}', '$same')"
done
python3 - "$work/one-1" <<'PY'
import json, sys
from pathlib import Path
run = Path(sys.argv[1])
params = json.load(open(run / "summary.json"))["parameters"]
tensors = len(json.loads((run / "model.safetensors").read_bytes()[8:8 + int.from_bytes((run / "model.safetensors").read_bytes()[:8], "little")]).keys() - {"__metadata__"})
words = 4 + tensors + params
print(f"# parameters {params:,} in {tensors} tensors; each rank sends {4 * words / 1e6:.2f} MB per step and receives the same from the other")
PY
