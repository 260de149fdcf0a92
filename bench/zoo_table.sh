#!/usr/bin/env bash
# The model comparison table of RESULTS.md: every aekit model family on MNIST with a 16-d code
# (the VQ-VAE's code is a grid, so it has a row of its own), trained the same way, then
# measured the same way: test reconstruction error, NLL where defined, Fréchet distance of
# samples from the prior and from a 10-component Gaussian mixture on the training codes,
# 5-NN accuracy of the codes, training time.
#
#   bash bench/zoo_table.sh [EPOCHS] [OUT_DIR]      (defaults: 10, runs/zoo)
#
# Needs ../shared/data/mnist (or MNIST_DIR) and a release build (cargo build --release).
set -euo pipefail
cd "$(dirname "$0")/.."
EPOCHS=${1:-10}
OUT=${2:-runs/zoo}
MNIST=${MNIST_DIR:-../shared/data/mnist}
AEKIT=${AEKIT:-target/release/aekit}
[ -d "$MNIST" ] || { echo "no MNIST at $MNIST (set MNIST_DIR)" >&2; exit 2; }
mkdir -p "$OUT"
DATA=(--data mnist --data-dir "$MNIST")
COMMON=("${DATA[@]}" --epochs "$EPOCHS" --batch-size 128 --quiet)
declare -A MODELS=(
  [dense]="--model dense --hidden 512 --latent 16"
  [denoise]="--model dense --hidden 512 --latent 16 --noise gaussian:0.3"
  [sparse]="--model dense --hidden 512 --latent 16 --code-l1 1e-4"
  [contractive]="--model dense --hidden 512 --latent 16 --contractive 0.01"
  [conv]="--model conv --encoder conv:32:3:s2,conv:64:3:s2,dense:16"
  [vae]="--model vae --hidden 512 --latent 16"
  [iwae-k5]="--model iwae --hidden 512 --latent 16 --importance-samples 5"
  [rae-l2]="--model rae --hidden 512 --latent 16"
  [rae-gp]="--model rae --hidden 512 --latent 16 --decoder-regularizer gp"
  [vqvae]="--preset keras-vqvae"
  [wae-mmd]="--model wae --hidden 512 --latent 16"
  [infovae]="--model infovae --hidden 512 --latent 16"
  [btcvae-6]="--model btcvae --hidden 512 --latent 16 --beta 6"
  [factorvae-10]="--model factorvae --hidden 512 --latent 16 --tc-weight 10"
  [aae]="--model aae --hidden 512 --latent 16"
)
ORDER=(dense denoise sparse contractive conv vae iwae-k5 rae-l2 rae-gp vqvae wae-mmd infovae btcvae-6 factorvae-10 aae)
for name in "${ORDER[@]}"; do
  run="$OUT/$name"
  if [ ! -f "$run/summary.json" ]; then
    # shellcheck disable=SC2086
    "$AEKIT" train ${MODELS[$name]} "${COMMON[@]}" --out "$run"
  fi
  if [ ! -f "$run/zoo.json" ]; then
    extra=()
    case "$name" in vae | iwae-k5 | infovae | btcvae-6 | factorvae-10) extra=(--nll-samples 1000) ;; esac
    case "$name" in
    vae | iwae-k5 | infovae | btcvae-6 | factorvae-10 | wae-mmd | aae)
      "$AEKIT" eval "$run" --json --frechet-samples 10000 --sampler prior >"$run/prior.json"
      ;;
    esac
    gmm=(--frechet-samples 10000 --sampler gmm:10)
    if [ "$name" = vqvae ]; then gmm=(); fi
    "$AEKIT" eval "$run" --json "${extra[@]}" "${gmm[@]}" >"$run/eval.json"
    "$AEKIT" probe "$run" -k 5 --json >"$run/probe.json"
    echo '{}' >"$run/zoo.json"
  fi
done
python3 - "$OUT" "${ORDER[@]}" <<'EOF'
import json, os, sys
out, names = sys.argv[1], sys.argv[2:]
def load(run, f):
    p = os.path.join(out, run, f)
    return json.load(open(p)) if os.path.exists(p) else {}
print("| model | code | test squared error / image | NLL (nats, K=1000) | Fréchet, prior | Fréchet, GMM-10 | 5-NN accuracy | training time |")
print("| --- | --- | --- | --- | --- | --- | --- | --- |")
for n in names:
    e, p, pr, s = load(n, "eval.json"), load(n, "probe.json"), load(n, "prior.json"), load(n, "summary.json")
    fmt = lambda v, d=2: "—" if v is None else f"{v:.{d}f}"
    nll = (e.get("nll") or {}).get("nll_per_image")
    fd_prior = (pr.get("sample_quality") or {}).get("frechet_distance")
    fd_gmm = (e.get("sample_quality") or {}).get("frechet_distance")
    code = p.get("autoencoder", {}).get("dims")
    print(f"| {n} | {code} | {fmt(e.get('sse_per_image'))} | {fmt(nll, 1)} | {fmt(fd_prior)} | {fmt(fd_gmm)} | "
          f"{fmt(p.get('autoencoder', {}).get('knn_accuracy'), 3)} | {fmt(s.get('train_seconds'), 0)} s |")
floor = next((load(n, "eval.json").get("sample_quality", {}).get("floor") for n in names
              if load(n, "eval.json").get("sample_quality")), None)
print(f"\nFréchet floor (test vs training images): {floor:.2f}" if floor is not None else "")
EOF
