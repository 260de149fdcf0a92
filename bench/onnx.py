"""ONNX Runtime on an exported encoder against aekit's own inference (the Python module's
`Run.encode`, the same core as `aekit encode`): workload C's encoder (784-1000-500-250-30
ReLU) on MNIST's 60,000 training images, raw bytes in, the run's scaling inside both, in
alternating rounds on the same machine. Batch 1 and 64: the median latency of many calls;
60,000 rows: one call each, samples/s. Both on 2 threads (ONNX Runtime's intra-op pool,
aekit's worker pool on this machine's cores).

    python bench/onnx.py ../shared/data/mnist [ROUNDS]
"""

import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnxruntime as ort

import aekit

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "aekit")
THREADS = 2
CALLS = {1: 2000, 64: 300}


def latency(f, x, calls):
    for _ in range(20):
        f(x)
    times = []
    for _ in range(calls):
        t = time.perf_counter()
        f(x)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main():
    mnist, rounds = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 3
    tmp = tempfile.mkdtemp()
    run = os.path.join(tmp, "run")
    subprocess.run([BIN, "train", "--data", "mnist", "--data-dir", mnist, "--hidden", "1000,500,250",
                    "--latent", "30", "--activation", "relu", "--epochs", "1", "--limit", "2048",
                    "--quiet", "--no-report", "--out", run], check=True)
    X = aekit.datasets.load_mnist(mnist)[0]
    X = np.ascontiguousarray((X * 255 if X.max() <= 1 else X).astype(np.float32))
    path = aekit.Run.open(run).to_onnx(os.path.join(tmp, "encoder.onnx"), part="encoder")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = THREADS
    opts.inter_op_num_threads = 1
    session = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    r = aekit.Run.open(run)

    def onnx_encode(x):
        return session.run(["code"], {"x": x})[0]

    gap = float(np.abs(onnx_encode(X[:1024]) - r.encode(X[:1024])).max())
    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, onnxruntime {ort.__version__}, "
          f"{os.cpu_count()} cores; max |code difference| on 1,024 rows {gap:.1e}")
    print("round rows aekit ORT aekit/ORT(time) unit")
    for k in range(rounds):
        for rows, calls in CALLS.items():
            x = X[:rows]
            a = latency(r.encode, x, calls)
            o = latency(onnx_encode, x, calls)
            print(f"{k} {rows} {a * 1e6:.0f} {o * 1e6:.0f} {a / o:.2f} us/call(p50)")
        t = time.perf_counter()
        r.encode(X)
        a = time.perf_counter() - t
        t = time.perf_counter()
        onnx_encode(X)
        o = time.perf_counter() - t
        print(f"{k} 60000 {60000 / a:.0f} {60000 / o:.0f} {a / o:.2f} samples/s")


if __name__ == "__main__":
    main()
