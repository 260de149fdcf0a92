"""Scoring a Parquet table on local Ray and Dask clusters against plain `aekit score`, on this
machine: 1,600,000 rows of 32 float columns and a string id, a 32-64-8 dense run; rows/s of
`aekit score RUN --data parquet:T --out S.parquet --keep-columns id` (the CLI, streamed),
of one Python process (`Run.score_table` on the whole table), of Dask (`LocalCluster`, 2
workers x 1 thread, `read_parquet` + `map_partitions(aekit.BatchMapper)`) and of Ray Data
(`ray.init(num_cpus=2)`, `read_parquet` + `map_batches`), each end to end from the file, in
alternating rounds. Cluster start-up is timed apart.

    python bench/cluster.py [ROUNDS]
"""

import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

import aekit

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "aekit")
ROWS, COLS = 1_600_000, 32


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    tmp = tempfile.mkdtemp()
    rng = np.random.default_rng(0)
    X = rng.normal(size=(ROWS, COLS)).astype(np.float32)
    columns = {f"f{j}": X[:, j] for j in range(COLS)}
    table = pa.table({"id": [f"row-{i}" for i in range(ROWS)], **columns})
    path = os.path.join(tmp, "t.parquet")
    pq.write_table(table, path, row_group_size=50_000)
    run = os.path.join(tmp, "run")
    aekit.AutoEncoder(hidden=(64,), latent=8, epochs=1, seed=0).fit(X[:20_000]).save(run)
    mapper = aekit.BatchMapper(run, keep=["id"])

    import dask.dataframe as dd
    import distributed
    import ray

    t = time.perf_counter()
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None)
    client = distributed.Client(cluster)
    dask_start = time.perf_counter() - t
    t = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    ray_start = time.perf_counter() - t

    def cli():
        subprocess.run([BIN, "score", run, "--data", f"parquet:{path}", "--threshold", "1",
                        "--keep-columns", "id", "--out", os.path.join(tmp, "s.parquet")],
                       check=True, capture_output=True)

    def one_process():
        aekit.Run.open(run).score_table(pq.read_table(path), keep=["id"])

    def dask():
        dd.read_parquet(path).map_partitions(mapper).compute()

    def ray_data():
        ds = ray.data.read_parquet(path).map_batches(mapper, batch_format="pyarrow")
        sum(r.num_rows for r in ray.get(ds.to_arrow_refs()))

    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores; "
          f"{ROWS} rows x {COLS} floats; start-up: Dask {dask_start:.1f} s, Ray {ray_start:.1f} s")
    print("round cli one_process dask ray (rows/s)")
    for k in range(rounds):
        rates = []
        for f in (cli, one_process, dask, ray_data):
            t = time.perf_counter()
            f()
            rates.append(ROWS / (time.perf_counter() - t))
        print(k, " ".join(f"{r:.0f}" for r in rates))
    client.close()
    cluster.close()
    ray.shutdown()


if __name__ == "__main__":
    main()
