#!/usr/bin/env bash
# MNIST with few labels (RESULTS.md, "Unsupervised pretraining"): test accuracy of the same
# encoder trained from scratch, pretrained as a denoising autoencoder on all 60,000 training
# images and fine-tuned (every layer; or the head alone for the first third of the epochs),
# and of softmax regression on its frozen codes and on PCA codes of the same size (PCA fitted on
# every training image). Labelled rows: N drawn balanced over the classes by each seed.
#   bash bench/fewlabels.sh [BIN] [MNIST_DIR] [OUT]
set -euo pipefail
BIN=${1:-target/release/aekit}
MNIST=${2:-../shared/data/mnist}
OUT=${3:-target/fewlabels}
if [ ! -f "$MNIST/train-images-idx3-ubyte.gz" ]; then
    echo "skipped: MNIST is not in $MNIST" >&2
    exit 0
fi
mkdir -p "$OUT"
if [ ! -f "$OUT/dae/summary.json" ]; then
    "$BIN" train --data mnist --data-dir "$MNIST" --hidden 512,256 --latent 64 --epochs 10 \
        --noise masking:0.25 --out "$OUT/dae" -q --no-report
fi
accuracy() { python3 -c 'import json,sys; print(json.load(sys.stdin)["accuracy"])'; }
echo "labels seed method accuracy"
for n in 100 1000 10000; do
    # Epochs for about 500-1,600 steps of 64 rows; the probe's for as many of 256.
    case $n in
        100) epochs=300; probe=1000 ;;
        1000) epochs=60; probe=300 ;;
        *) epochs=10; probe=60 ;;
    esac
    for seed in 0 1 2; do
        common=(--labelled "$n" --seed "$seed" --epochs "$epochs" -q --no-report --json --force)
        echo "$n $seed scratch $("$BIN" finetune "$OUT/dae" --out "$OUT/c" "${common[@]}" --from-scratch | accuracy)"
        echo "$n $seed finetuned $("$BIN" finetune "$OUT/dae" --out "$OUT/c" "${common[@]}" | accuracy)"
        echo "$n $seed head-first $("$BIN" finetune "$OUT/dae" --out "$OUT/c" "${common[@]}" --freeze-epochs $((epochs / 3)) | accuracy)"
        "$BIN" probe "$OUT/dae" --labelled "$n" --seed "$seed" --probe-epochs "$probe" --json |
            python3 -c 'import json,sys; r=json.load(sys.stdin); a=sys.argv[1]; print(a, "frozen-codes", r["autoencoder"]["softmax_accuracy"]); print(a, "pca", r["pca"]["softmax_accuracy"])' "$n $seed"
    done
done
