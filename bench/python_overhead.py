"""The Python front end's overhead over the CLI on the same core: training samples/s on
workload A's model (784-1000-500-250-30, batch 256, one epoch) over MNIST's 60,000 training
images, and encoding those 60,000 rows, alternately through `aekit.AutoEncoder` and `aekit
train`/`aekit encode`.

    python bench/python_overhead.py ../shared/data/mnist [PAIRS]
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

import aekit

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "aekit")


def main():
    mnist, pairs = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 3
    X, _, _, _ = aekit.datasets.load_mnist(mnist)
    tmp = tempfile.mkdtemp()
    npy = os.path.join(tmp, "x.npy")
    np.save(npy, X)
    params = dict(hidden=(1000, 500, 250), latent=30, epochs=1, batch_size=256, lr=1e-3, seed=1)
    rows = []
    for p in range(pairs):
        ae = aekit.AutoEncoder(run_dir=os.path.join(tmp, f"py{p}"), **params)
        t = time.perf_counter()
        ae.fit(X)
        py_fit = time.perf_counter() - t
        py_sps = json.load(open(os.path.join(ae.run_dir_, "summary.json")))["samples_per_sec"]
        t = time.perf_counter()
        ae.transform(X)
        py_enc = time.perf_counter() - t

        out = os.path.join(tmp, f"cli{p}")
        t = time.perf_counter()
        subprocess.run([BIN, "train", "--data", f"npy:{npy}", "--scale", "none", "--hidden", "1000,500,250",
                        "--latent", "30", "--epochs", "1", "--batch-size", "256", "--lr", "0.001", "--seed", "1",
                        "--quiet", "--no-report", "--out", out], check=True)
        cli_fit = time.perf_counter() - t
        cli_sps = json.load(open(os.path.join(out, "summary.json")))["samples_per_sec"]
        t = time.perf_counter()
        subprocess.run([BIN, "encode", out, "--data", f"npy:{npy}", "--split", "train", "--out",
                        os.path.join(tmp, "codes.npy")], check=True, stdout=subprocess.DEVNULL)
        cli_enc = time.perf_counter() - t
        row = dict(pair=p, py_samples_per_sec=py_sps, cli_samples_per_sec=cli_sps, py_fit_s=py_fit,
                   cli_fit_s=cli_fit, py_transform_s=py_enc, cli_encode_s=cli_enc)
        print(json.dumps(row), flush=True)
        rows.append(row)
    med = lambda k: statistics.median(r[k] for r in rows)
    print(f"training samples/s: Python {med('py_samples_per_sec'):,.0f}, CLI {med('cli_samples_per_sec'):,.0f}, "
          f"ratio {med('py_samples_per_sec') / med('cli_samples_per_sec'):.3f}")
    print(f"fit wall: Python {med('py_fit_s'):.2f} s, CLI {med('cli_fit_s'):.2f} s (process start and data load included)")
    print(f"encode 60,000 rows: Python transform {med('py_transform_s'):.3f} s, CLI encode {med('cli_encode_s'):.3f} s "
          f"(the CLI's includes start-up, reading the .npy and writing the codes)")


if __name__ == "__main__":
    main()
