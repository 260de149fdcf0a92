#!/usr/bin/env bash
# Streamed tables against data held in memory (BENCHMARKS.md, "Data larger than memory").
#   speed:  workload A's model (784-1000-500-250-30 ReLU, MSE, Adam 1e-3, batch 256), one epoch
#           of MNIST read whole from IDX and streamed from Parquet (`aekit data convert`),
#           in alternating pairs; samples/s from each run's summary.json.
#   images: the same epoch streamed from MNIST's 60,000 training images as PNG files in class
#           folders (written here with Python's zlib), against IDX in alternating pairs.
#   memory: the same model for one epoch on MNIST's rows repeated to ~1 GB and to ~3x a hard
#           memory limit (a cgroup v1 memory limit, root only), peak resident memory of each
#           (GNU time's maximum RSS).
#   outputs: peak resident memory of `aekit encode` (.npy, .csv, .parquet) and `aekit score`
#           (.npy) on MNIST's rows as 1 and 4 Parquet files, against encoding the same 60,000
#           rows read whole from IDX.
# Usage: bash bench/stream.sh [target/release/aekit] [speed|images|memory|outputs|all]
# Reads ../shared/data/mnist (or MNIST_DIR); skips with a message where it is absent.
set -euo pipefail
bin=$(realpath "${1:-target/release/aekit}")
what=${2:-all}
pairs=${PAIRS:-3}
mnist=${MNIST_DIR:-$(dirname "$0")/../../shared/data/mnist}
if [ ! -d "$mnist" ]; then
  echo "SKIP: $mnist not found (set MNIST_DIR)"
  exit 0
fi
mnist=$(realpath "$mnist")
work=$(mktemp -d)
trap 'rm -rf "$work"; [ -d /sys/fs/cgroup/memory/aekit-bench ] && rmdir /sys/fs/cgroup/memory/aekit-bench 2>/dev/null || true' EXIT
model=(--hidden 1000,500,250 --latent 30 --activation relu --loss mse --batch-size 256
  --lr 1e-3 --epochs 1 --seed 1 --quiet --no-report)
"$bin" data convert --data mnist --data-dir "$mnist" --out "$work/mnist.parquet" >/dev/null
echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores"
echo "# MNIST as Parquet: $(du -h "$work/mnist.parquet" | cut -f1)"

samples_per_sec() { python3 -c "import json,sys; print(round(json.load(open(sys.argv[1]))['samples_per_sec']))" "$1/summary.json"; }

if [ "$what" = speed ] || [ "$what" = all ]; then
  echo "pair idx_samples_per_s parquet_samples_per_s parquet/idx"
  for i in $(seq 1 "$pairs"); do
    "$bin" train --data mnist --data-dir "$mnist" "${model[@]}" --out "$work/idx-$i"
    "$bin" train --data "parquet:$work/mnist.parquet" "${model[@]}" --out "$work/pq-$i"
    a=$(samples_per_sec "$work/idx-$i"); b=$(samples_per_sec "$work/pq-$i")
    echo "$i $a $b $(python3 -c "print(f'{$b/$a:.3f}')")"
  done
fi

if [ "$what" = images ] || [ "$what" = all ]; then
  python3 - "$mnist" "$work/png" <<'PY'
import gzip, os, struct, sys, zlib
src, out = sys.argv[1], sys.argv[2]
def chunk(kind, data):
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))
for split, stem in (("train", "train"), ("test", "t10k")):
    images = gzip.open(f"{src}/{stem}-images-idx3-ubyte.gz").read()
    labels = gzip.open(f"{src}/{stem}-labels-idx1-ubyte.gz").read()
    n, h, w = struct.unpack(">III", images[4:16])
    for d in range(10):
        os.makedirs(f"{out}/{split}/{d}", exist_ok=True)
    for i in range(n):
        px = images[16 + i * h * w:16 + (i + 1) * h * w]
        raw = b"".join(b"\0" + px[r * w:(r + 1) * w] for r in range(h))
        png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
               + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
        with open(f"{out}/{split}/{labels[8 + i]}/{i:05d}.png", "wb") as f:
            f.write(png)
PY
  echo "# MNIST as PNG files: $(find "$work/png/train" -name '*.png' | wc -l) training images, $(du -sh "$work/png/train" | cut -f1)"
  echo "pair idx_samples_per_s png_samples_per_s png/idx"
  for i in $(seq 1 "$pairs"); do
    "$bin" train --data mnist --data-dir "$mnist" "${model[@]}" --out "$work/idx-img-$i"
    "$bin" train --data "images:$work/png" --stream "${model[@]}" --out "$work/png-$i"
    a=$(samples_per_sec "$work/idx-img-$i"); b=$(samples_per_sec "$work/png-$i")
    echo "$i $a $b $(python3 -c "print(f'{$b/$a:.3f}')")"
  done
fi

if [ "$what" = outputs ] || [ "$what" = all ]; then
  small=(--hidden 64 --latent 8 --epochs 1 --seed 1 --quiet --no-report)
  "$bin" train --data "parquet:$work/mnist.parquet" "${small[@]}" --out "$work/out-run"
  mkdir -p "$work/four"
  for k in 1 2 3 4; do ln "$work/mnist.parquet" "$work/four/part-$k.parquet"; done
  rss() { /usr/bin/time -f "%M" -o "$work/rss" "$@" >/dev/null; echo $(( $(tail -1 "$work/rss") / 1024 )); }
  echo "command rows peak_RSS_MiB"
  echo "encode-idx-whole.npy 60000 $(rss "$bin" encode "$work/out-run" --data mnist --data-dir "$mnist" --split train --out "$work/w.npy")"
  for table in mnist.parquet four; do
    rows=$([ "$table" = four ] && echo 240000 || echo 60000)
    for ext in npy csv parquet; do
      echo "encode-table.$ext $rows $(rss "$bin" encode "$work/out-run" --data "parquet:$work/$table" --out "$work/z.$ext")"
    done
    echo "score-table.npy $rows $(rss "$bin" score "$work/out-run" --data "parquet:$work/$table" --out "$work/s.npy")"
  done
fi

if [ "$what" = memory ] || [ "$what" = all ]; then
  if [ "$(id -u)" != 0 ] || [ ! -d /sys/fs/cgroup/memory ]; then
    echo "SKIP memory: needs root and a cgroup v1 memory controller"
    exit 0
  fi
  limit_mib=${LIMIT_MIB:-1024}
  # A directory of copies is one table (its files are read in turn, row groups shuffled).
  decoded_mib=$((60000 * 784 / 1048576))
  small=$(( (1024 + decoded_mib - 1) / decoded_mib ))
  big=$(( (3 * limit_mib + decoded_mib - 1) / decoded_mib ))
  for n in "$small" "$big"; do
    mkdir -p "$work/lake-$n"
    for k in $(seq 1 "$n"); do ln "$work/mnist.parquet" "$work/lake-$n/part-$k.parquet"; done
  done
  mkdir -p /sys/fs/cgroup/memory/aekit-bench
  echo $((limit_mib * 1048576)) > /sys/fs/cgroup/memory/aekit-bench/memory.limit_in_bytes
  echo 0 > /sys/fs/cgroup/memory/aekit-bench/memory.swappiness 2>/dev/null || true
  echo "copies rows decoded_GiB on_disk limit_MiB peak_RSS_MiB samples_per_s exit"
  for n in "$small" "$big"; do
    lim="-"
    cmd=("$bin" train --data "parquet:$work/lake-$n" "${model[@]}" --out "$work/mem-$n")
    set +e
    if [ "$n" = "$big" ]; then
      lim=$limit_mib
      # The run joins the limited cgroup before it starts.
      /usr/bin/time -f "%M" -o "$work/rss-$n" sh -c 'echo $$ > /sys/fs/cgroup/memory/aekit-bench/cgroup.procs && exec "$@"' sh "${cmd[@]}"
    else
      /usr/bin/time -f "%M" -o "$work/rss-$n" "${cmd[@]}"
    fi
    code=$?
    set -e
    rss=$(( $(tail -1 "$work/rss-$n") / 1024 ))
    sps=$([ -f "$work/mem-$n/summary.json" ] && samples_per_sec "$work/mem-$n" || echo -)
    echo "$n $((n * 60000)) $(python3 -c "print(f'{$n*60000*784/2**30:.2f}')") $(du -shl "$work/lake-$n" | cut -f1) $lim $rss $sps $code"
  done
fi
