#!/usr/bin/env bash
# One-class anomaly detection on MNIST: for each digit, train a dense autoencoder on that digit
# only, then score all 10,000 test digits (every other digit is an anomaly) and print the JSON
# summary (ROC AUC, average precision). Usage: examples/one_class_mnist.sh [MNIST_DIR]
set -euo pipefail
mnist=${1:-../shared/data/mnist}
aekit=${AEKIT:-target/release/aekit}
for c in 0 1 2 3 4 5 6 7 8 9; do
  out=runs/one-class-$c
  rm -rf "$out"
  "$aekit" train --data mnist --data-dir "$mnist" --train-classes "$c" --hidden 256 --latent 32 \
    --epochs 20 --out "$out" --quiet --no-report >/dev/null
  echo "$c $("$aekit" score "$out" --json | tr -d '\n ')"
done
