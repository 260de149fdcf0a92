"""Scoring and encoding on clusters: `aekit.BatchMapper` on a real local Dask cluster
(`LocalCluster`, two worker processes) and a real local Ray cluster (two CPUs), every row
compared with the single-process answer, the kept columns carried through. Ray and Dask are
heavy extras: each test skips, saying so, where its package is absent."""

import pickle

import numpy as np
import pytest

import aekit

pa = pytest.importorskip("pyarrow")


@pytest.fixture(scope="module")
def table_and_run(tmp_path_factory):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 6)).astype(np.float32)
    X[::50] += 6  # a few rows far from the rest
    run_dir = tmp_path_factory.mktemp("cluster") / "run"
    aekit.AutoEncoder(hidden=(16,), latent=2, epochs=3, seed=0).fit(X).save(run_dir)
    columns = {f"f{j}": X[:, j] for j in range(6)}
    table = pa.table({"id": [f"row-{i}" for i in range(len(X))], **columns})
    return table, str(run_dir)


def _by_id(ids, values):
    order = np.argsort(np.asarray(ids))
    return np.asarray(ids)[order], np.asarray(values)[order]


def test_a_batch_mapper_pickles_and_maps_like_the_run(table_and_run):
    table, run_dir = table_and_run
    mapper = pickle.loads(pickle.dumps(aekit.BatchMapper(run_dir, "encode", keep=["id"])))
    out = mapper(table.slice(10, 100))
    expected = aekit.Run.open(run_dir).encode_table(table.slice(10, 100), keep=["id"])
    assert out.equals(expected)
    empty = mapper(table.slice(0, 0))
    assert empty.num_rows == 0 and empty.column_names == ["id", "z"]
    with pytest.raises(ValueError, match="output='middle'"):
        aekit.BatchMapper(run_dir, "middle")


def test_dask_scores_every_partition_as_one_process_does(table_and_run):
    dd = pytest.importorskip("dask.dataframe", reason="dask is a heavy extra: pip install 'dask[distributed,dataframe]'")
    distributed = pytest.importorskip("distributed")
    table, run_dir = table_and_run
    expected = aekit.Run.open(run_dir).score_table(table, keep=["id"])
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster):
        ddf = dd.from_pandas(table.to_pandas(), npartitions=4)
        got = ddf.map_partitions(aekit.BatchMapper(run_dir, keep=["id"])).compute()
    ids, scores = _by_id(got["id"], got["score"])
    want_ids, want = _by_id(expected["id"].to_pylist(), expected["score"].to_numpy())
    assert list(ids) == list(want_ids)
    np.testing.assert_allclose(scores, want, rtol=1e-6)


def test_ray_data_encodes_every_block_as_one_process_does(table_and_run):
    ray = pytest.importorskip("ray", reason="ray is a heavy extra: pip install ray")
    table, run_dir = table_and_run
    expected = aekit.Run.open(run_dir).encode_table(table, keep=["id"])
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        ds = ray.data.from_arrow(table).repartition(4)
        got = pa.concat_tables(ray.get(ds.map_batches(
            aekit.BatchMapper(run_dir, "encode", keep=["id"]), batch_format="pyarrow").to_arrow_refs()))
    finally:
        ray.shutdown()
    ids, codes = _by_id(got["id"].to_pylist(), np.stack(got["z"].to_numpy(zero_copy_only=False)))
    want_ids, want = _by_id(expected["id"].to_pylist(), np.stack(expected["z"].to_numpy(zero_copy_only=False)))
    assert list(ids) == list(want_ids)
    np.testing.assert_allclose(codes, want, rtol=1e-5, atol=1e-6)
