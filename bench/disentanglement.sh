#!/usr/bin/env bash
# The disentanglement table of RESULTS.md: models with a 10-d code trained on `shapes-grid`
# (the built-in dSprites-like shapes whose five factors — shape, scale, rotation, x, y — are
# known), several seeds each, then measured by `aekit eval --disentanglement` (MIG and SAP on
# the test split), with the test reconstruction error and the training time.
#
#   bash bench/disentanglement.sh [SEEDS] [EPOCHS] [OUT_DIR]    (defaults: 3, 30, runs/disentangle)
#
# Needs a release build (cargo build --release); no data download.
set -euo pipefail
cd "$(dirname "$0")/.."
SEEDS=${1:-3}
EPOCHS=${2:-30}
OUT=${3:-runs/disentangle}
AEKIT=${AEKIT:-target/release/aekit}
mkdir -p "$OUT"
COMMON=(--data shapes-grid --shapes-train 20000 --shapes-test 5000 --hidden 512 --latent 10
  --epochs "$EPOCHS" --batch-size 128 --quiet --no-report)
declare -A MODELS=(
  [vae]="--model vae"
  [beta-vae-4]="--model vae --beta 4"
  [btcvae-6]="--model btcvae --beta 6"
  [wae-mmd]="--model wae"
  [factorvae-10]="--model factorvae --tc-weight 10"
  [aae]="--model aae"
  [dense]="--model dense"
)
ORDER=(dense vae beta-vae-4 btcvae-6 factorvae-10 wae-mmd aae)
for name in "${ORDER[@]}"; do
  for seed in $(seq 1 "$SEEDS"); do
    run="$OUT/$name-s$seed"
    if [ ! -f "$run/summary.json" ]; then
      rm -rf "$run"
      # shellcheck disable=SC2086
      "$AEKIT" train ${MODELS[$name]} "${COMMON[@]}" --seed "$seed" --out "$run"
    fi
    if [ ! -f "$run/disentanglement.json" ]; then
      "$AEKIT" eval "$run" --disentanglement --json >"$run/disentanglement.json.tmp"
      mv "$run/disentanglement.json.tmp" "$run/disentanglement.json"
    fi
  done
done
python3 - "$OUT" "$SEEDS" "${ORDER[@]}" <<'PY'
import json, os, statistics, sys
out, seeds, names = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
def ms(v):
    return f"{statistics.mean(v):.3f} ± {statistics.stdev(v):.3f}" if len(v) > 1 else f"{v[0]:.3f}"
print(f"| model | MIG | SAP | test squared error / image | training time (s) | seeds |")
print("| --- | --- | --- | --- | --- | --- |")
for name in names:
    mig, sap, sse, secs = [], [], [], []
    for s in range(1, seeds + 1):
        run = os.path.join(out, f"{name}-s{s}")
        e = json.load(open(os.path.join(run, "disentanglement.json")))
        d = e["disentanglement"]
        mig.append(d["mig"]); sap.append(d["sap"]); sse.append(e["sse_per_image"])
        secs.append(json.load(open(os.path.join(run, "summary.json")))["train_seconds"])
    print(f"| {name} | {ms(mig)} | {ms(sap)} | {statistics.mean(sse):.2f} | {statistics.mean(secs):.0f} | {seeds} |")
PY
