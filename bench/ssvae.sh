#!/usr/bin/env bash
# MNIST with few labels, the semi-supervised VAE rows of RESULTS.md's table (Kingma et al.
# 2014): M2 on the pixels, and M1+M2 — M2 on the 50-dimensional codes (posterior means) of a
# VAE (M1, 784-600-600-50) trained on all 60,000 training images. Test error from the model's
# own classifier q(y|x) (`aekit eval --json`, "classification"). Labelled rows: N drawn
# balanced over the classes by each seed; every training image is also an unlabelled row.
# M2 on the codes sees them with Gaussian noise (sd 0.3) as its input, the clean codes as its
# target: a stand-in for the paper's fresh draws of z1 ~ q(z1|x), which keeps 100 labelled
# codes from being learnt by heart (measured: 92.2% against 90.3% test accuracy at 100 labels).
#   bash bench/ssvae.sh [BIN] [MNIST_DIR] [OUT] [LABELS] [SEEDS] [M1M2_EPOCHS] [M2_EPOCHS]
# M2_EPOCHS 0 leaves M2 on the pixels out (about 30 s an epoch on 2 cores).
# PYTHON (default target/ci-venv/bin/python, with NumPy) packs the codes and labels as .npz.
set -euo pipefail
BIN=${1:-target/release/aekit}
MNIST=${2:-../shared/data/mnist}
OUT=${3:-target/ssvae}
LABELS=${4:-"100 1000 10000"}
SEEDS=${5:-"0 1 2"}
M1M2_EPOCHS=${6:-40}
M2_EPOCHS=${7:-8}
PYTHON=${PYTHON:-target/ci-venv/bin/python}
if [ ! -f "$MNIST/train-images-idx3-ubyte.gz" ]; then
    echo "skipped: MNIST is not in $MNIST" >&2
    exit 0
fi
mkdir -p "$OUT"
mnist=(--data mnist --data-dir "$MNIST")
accuracy() { python3 -c 'import json,sys; print(json.load(sys.stdin)["classification"]["accuracy"])'; }

# M1, then its codes of both splits with their labels, as .npz archives (x, y).
if [ ! -f "$OUT/m1/summary.json" ]; then
    "$BIN" train "${mnist[@]}" --model vae --hidden 600,600 --latent 50 --epochs 30 \
        --out "$OUT/m1" -q --no-report
fi
for split in train test; do
    if [ ! -f "$OUT/m1-$split.npz" ]; then
        "$BIN" encode "$OUT/m1" "${mnist[@]}" --split "$split" --out "$OUT/m1-$split.npy" \
            --labels-out "$OUT/m1-$split-labels.npy"
        "$PYTHON" -c 'import numpy as np, sys; np.savez(sys.argv[3], x=np.load(sys.argv[1]), y=np.load(sys.argv[2]))' \
            "$OUT/m1-$split.npy" "$OUT/m1-$split-labels.npy" "$OUT/m1-$split.npz"
    fi
done
codes=(--data "npz:$OUT/m1-train.npz" --test-data "npz:$OUT/m1-test.npz")

echo "labels seed method accuracy"
for n in $LABELS; do
    for seed in $SEEDS; do
        common=(--model ssvae --hidden 500 --latent 50 --labelled "$n" --seed "$seed" -q --no-report)
        if [ "$M1M2_EPOCHS" -gt 0 ]; then
            "$BIN" train "${codes[@]}" "${common[@]}" --noise gaussian:0.3 --epochs "$M1M2_EPOCHS" \
                --out "$OUT/m1m2-$n-$seed"
            echo "$n $seed m1+m2 $("$BIN" eval "$OUT/m1m2-$n-$seed" --json | accuracy)"
        fi
        if [ "$M2_EPOCHS" -gt 0 ]; then
            "$BIN" train "${mnist[@]}" "${common[@]}" --epochs "$M2_EPOCHS" --out "$OUT/m2-$n-$seed"
            echo "$n $seed m2 $("$BIN" eval "$OUT/m2-$n-$seed" --json | accuracy)"
        fi
    done
done
