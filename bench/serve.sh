#!/usr/bin/env bash
# `aekit serve` against FastAPI + PyTorch on one run (default: a 2-D VAE on MNIST, trained here
# if absent), then the explorer's decode round trip on the built-in shapes. Needs wrk (Debian's
# package) and PyTorch, FastAPI, uvicorn, orjson and safetensors in bench/.venv.
# Usage: bash bench/serve.sh [RUN_DIR] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
run=${1:-runs/vae2d}
rounds=${2:-2}
cargo build --release --quiet --bin aekit
venv=bench/.venv
if ! "$venv/bin/python" -c "import torch, fastapi, uvicorn, orjson, safetensors" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q torch fastapi uvicorn orjson safetensors numpy
fi
if [ ! -f "$run/model.safetensors" ]; then
  target/release/aekit train --data mnist --data-dir ../shared/data/mnist --model vae \
    --hidden 512 --latent 2 --epochs 10 --out "$run" --no-report --quiet
fi
echo "# $(date -u +%F) on $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
python3 bench/serve_bench.py "$run" --rounds "$rounds"

# The explorer decodes the point under the pointer: one request, one client, batch 1.
shapes=runs/bench-shapes-vae2d
if [ ! -f "$shapes/model.safetensors" ]; then
  target/release/aekit train --model vae --latent 2 --out "$shapes" --no-report --quiet
fi
port=18471
target/release/aekit serve "$shapes" --addr 127.0.0.1:$port >/dev/null 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null' EXIT
until curl -s "http://127.0.0.1:$port/healthz" >/dev/null; do sleep 0.1; done
lua=$(mktemp --suffix=.lua)
cat >"$lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"map": [[0.3, -0.7]]}'
LUA
echo "explorer decode round trip (shapes 2-D VAE, one client):"
wrk -t1 -c1 -d5s --latency -s "$lua" "http://127.0.0.1:$port/v1/runs/$(basename "$shapes")/decode" |
  grep -E "Requests/sec|^ +(50|99)%"
