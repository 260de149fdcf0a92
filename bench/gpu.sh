#!/usr/bin/env bash
# The GPU measurement of BENCHMARKS.md, as one short run on a lent GPU machine that has a
# Python with CUDA PyTorch but no Rust toolchain and no network. Prepare here (both folders are
# ignored by git; the binary travels compressed, stripped it is still ~117 MB):
#   cargo build --release --features gpu --bin aekit-bench --target-dir target-gpu
#   mkdir -p .gpubin && cp target-gpu/release/aekit-bench .gpubin/ && strip .gpubin/aekit-bench \
#     && xz -6 .gpubin/aekit-bench
#   mkdir -p .gl && (cd .gl && apt-get download libvulkan1 libegl1 libglvnd0 libopengl0 \
#     libgl1 libglx0 libgles2)      # the Vulkan loader
# then run `bash bench/gpu.sh` there with .gl and .gpubin/aekit-bench.xz carried along.
# It unpacks the loader, checks that aekit finds the GPU, runs bench/run.sh with DEVICE=gpu
# (workloads A and B against PyTorch on CUDA in every configuration), then logs what burn's
# runtime compiles and autotunes during a short training run (to diagnose a slow GPU step).
# Everything lands in $OUT (or target/gpu-out).
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-target/gpu-out}
mkdir -p "$out"
samples=${SAMPLES:-12800}
bin=${AEKIT_BENCH:-}
if [ -z "$bin" ]; then
  bin=/tmp/aekit-bench
  python3 -c "import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], 'wb'))" \
    .gpubin/aekit-bench.xz "$bin" && chmod +x "$bin" || exit 1
fi

for f in .gl/*.deb; do dpkg -x "$f" /; done
ldconfig
if ! ls /usr/share/vulkan/icd.d/*nvidia* /etc/vulkan/icd.d/*nvidia* >/dev/null 2>&1; then
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader

echo "== does aekit see the GPU? (A, 512 samples)"
if ! timeout 120 "$bin" A 512 --device gpu; then
  echo "aekit-bench --device gpu failed; VK_DRIVER_FILES=${VK_DRIVER_FILES:-unset}"
  ls /usr/local/nvidia/share/vulkan/icd.d/ /usr/share/vulkan/icd.d/ /etc/vulkan/icd.d/ 2>&1
  exit 1
fi

echo "== aekit against PyTorch on the GPU ($samples samples)"
DEVICE=gpu AEKIT_BENCH="$bin" PEER_PYTHON=${PEER_PYTHON:-python3} SAMPLES=$samples \
  BENCH_LOG="$out/gpu-bench.log" timeout 360 bash bench/run.sh 1 "A B"

echo "== what burn's runtime compiles and autotunes in a short run (A, 2,560 samples)"
CUBECL_DEBUG_LOG="$out/cubecl.log" timeout 90 "$bin" A 2560 --device gpu
if [ -f "$out/cubecl.log" ]; then
  echo "cubecl log: $(wc -l <"$out/cubecl.log") lines"
  cut -c1-70 "$out/cubecl.log" | sed 's/[0-9]\+/N/g' | sort | uniq -c | sort -rn | head -25
  head -c 3000000 "$out/cubecl.log" >"$out/cubecl-head.log"
  rm -f "$out/cubecl.log"
fi
