"""`fit` on a table against `fit` on a NumPy array (BENCHMARKS.md, "Data larger than memory",
Python): 1,000,000 rows of 32 float32 features, one epoch of a small dense autoencoder, each
fit in a fresh process (peak resident memory is per process), in alternating rounds.

    target/ci-venv/bin/python bench/python_tables.py [rounds]

The data is the same in every form: a NumPy matrix, a pandas DataFrame and a pyarrow Table of
its columns; the time is `fit`'s wall time, the memory the process's peak RSS less the RSS
before the data was made (so the interpreter and libraries are left out).
"""

import json
import subprocess
import sys

ROWS, COLS = 1_000_000, 32

CHILD = r"""
import json, resource, sys, time
import numpy as np
import aekit
kind = sys.argv[1]
def rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
def current_mib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20
import pyarrow, pandas  # loaded before the baseline in every kind
base = current_mib()
rng = np.random.default_rng(0)
latent = rng.standard_normal((ROWS, 4)).astype(np.float32)
X = np.ascontiguousarray(latent @ rng.standard_normal((4, COLS)).astype(np.float32))
del latent
if kind == "pandas":
    X = pandas.DataFrame({f"c{i}": X[:, i].copy() for i in range(COLS)})
elif kind == "pyarrow":
    X = pyarrow.table({f"c{i}": X[:, i].copy() for i in range(COLS)})
data_mib = current_mib() - base
ae = aekit.AutoEncoder(hidden=(64,), latent=4, epochs=1, batch_size=256, seed=1)
t = time.perf_counter()
ae.fit(X)
seconds = time.perf_counter() - t
print(json.dumps({"kind": kind, "seconds": seconds, "data_mib": data_mib,
                  "peak_above_base_mib": rss_mib() - base}))
""".replace("ROWS", str(ROWS)).replace("COLS", str(COLS))


def run(kind):
    out = subprocess.run([sys.executable, "-c", CHILD, kind], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    try:
        import pandas  # noqa: F401
        import pyarrow  # noqa: F401
    except ImportError:
        print("SKIP: needs pandas and pyarrow (pip install pandas pyarrow)")
        return
    print(f"# {ROWS} rows x {COLS} float32 features ({ROWS * COLS * 4 / 2**20:.0f} MiB), one epoch")
    print("round kind seconds ratio_to_numpy data_MiB peak_above_base_MiB")
    for r in range(1, rounds + 1):
        numpy = run("numpy")
        for res in (numpy, run("pandas"), run("pyarrow")):
            print(f"{r} {res['kind']} {res['seconds']:.2f} {res['seconds'] / numpy['seconds']:.3f} "
                  f"{res['data_mib']:.0f} {res['peak_above_base_mib']:.0f}")


if __name__ == "__main__":
    main()
