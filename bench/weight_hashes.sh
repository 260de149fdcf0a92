#!/usr/bin/env bash
# Fixed-seed tiny runs of every variant and preset, and the sha256 of each weight tensor they
# write (tensor bytes only, so metadata changes do not count). Used to show that a refactor
# leaves training bit-identical: run before and after, then diff the outputs.
#   bash bench/weight_hashes.sh target/release/aekit > before.txt
set -euo pipefail
bin=${1:-target/release/aekit}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# A small two-class corpus for the text runs.
for c in space hockey; do mkdir -p "$work/corpus/$c"; done
for i in $(seq 0 29); do
  echo "orbit rocket launch nasa moon $i shuttle orbit" > "$work/corpus/space/$i"
  echo "goal puck ice team season $i player goal" > "$work/corpus/hockey/$i"
done
data=(--data shapes --shapes-train 256 --shapes-test 64 --batch-size 32 --seed 7 --threads 2 -q --no-report)
common=("${data[@]}" --epochs 2)
run() {
  local name=$1; shift
  "$bin" train "$@" --out "$work/runs/$name" >/dev/null 2>&1 || { echo "$name FAILED"; return; }
  python3 - "$work/runs/$name/model.safetensors" "$name" <<'PY'
import hashlib, json, struct, sys
path, name = sys.argv[1], sys.argv[2]
b = open(path, 'rb').read()
n = struct.unpack('<Q', b[:8])[0]
header = json.loads(b[8:8 + n])
data = b[8 + n:]
for k in sorted(k for k in header if k != '__metadata__'):
    s, e = header[k]['data_offsets']
    print(name, k, hashlib.sha256(data[s:e]).hexdigest()[:16])
PY
}
run dense "${common[@]}"
run dense-deep "${common[@]}" --hidden 64,32 --latent 4 --activation tanh
run conv "${common[@]}" --model conv
run conv-latent "${common[@]}" --model conv --latent 6
run vae "${common[@]}" --model vae --hidden 64 --latent 4 --beta 2 --kl-warmup-epochs 1
run conv-vae "${common[@]}" --model vae --encoder conv:8:3:s2,conv:8:3:s2 --hidden 16 --latent 2
run denoising "${common[@]}" --noise gaussian:0.3
run hidden-noise "${common[@]}" --hidden-noise masking:0.2
run sparse-l1 "${common[@]}" --code-l1 0.001
run sparse-kl "${common[@]}" --code-activation sigmoid --sparsity-target 0.05 --sparsity-weight 0.5
run contractive "${common[@]}" --hidden --code-activation sigmoid --contractive 0.1
run contractive-deep "${common[@]}" --contractive 0.1 --contractive-projections 2
run upscale "${common[@]}" --task upscale:2 --residual
run inpaint-conv "${common[@]}" --model conv --task inpaint:6
run sgd "${common[@]}" --optimizer sgd --lr 0.05 --nesterov --schedule cosine --clip-grad-norm 1
run text --data "text:$work/corpus" --vocabulary 12 --epochs 2 --batch-size 8 --seed 7 --threads 2 -q --no-report
for p in hinton2006 pytorch-vae keras-dense keras-deep keras-conv keras-denoise keras-conv-vae; do
  run "preset-$p" --preset "$p" "${data[@]}" --epochs 1
done
run preset-hinton2006-docs --preset hinton2006-docs --data "text:$work/corpus" --vocabulary 12 --epochs 1 --seed 7 --threads 2 -q --no-report
