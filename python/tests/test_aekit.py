"""Tests of `import aekit`: the scikit-learn and PyOD conventions, pickling, errors, Ctrl-C, and
that the Python front end and the command line train the same bytes."""

import _thread
import json
import os
import pickle
import shutil
import subprocess
import time

import numpy as np
import pytest

import aekit

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def shapes():
    X, y = aekit.datasets.shapes(600, seed=1)
    return X, y


def small(**kw):
    params = dict(hidden=(32,), latent=4, epochs=3, batch_size=50, seed=7)
    params.update(kw)
    return aekit.AutoEncoder(**params)


def test_fit_transform_and_shapes(shapes):
    X, _ = shapes
    ae = small().fit(X)
    assert ae.n_features_in_ == 784
    assert len(ae.history_) == 3 and "train_loss" in ae.history_[0]
    Z = ae.transform(X)
    assert Z.shape == (600, 4) and Z.dtype == np.float32
    assert ae.inverse_transform(Z).shape == (600, 784)
    R = ae.predict(X)
    assert R.shape == X.shape
    # Training must have learnt something: better than reconstructing the mean image.
    baseline = ((X - X.mean(axis=0)) ** 2).sum(axis=1).mean()
    assert -ae.score(X) < baseline
    assert np.allclose(ae.score_samples(X), -((R - X) ** 2).sum(axis=1), rtol=1e-4)


def test_training_is_reproducible_and_pickle_round_trips_exactly(shapes):
    X, _ = shapes
    a, b = small().fit(X), small().fit(X)
    assert np.array_equal(a.transform(X), b.transform(X))
    c = pickle.loads(pickle.dumps(a))
    assert np.array_equal(c.transform(X), a.transform(X))
    assert c.run_dir_ != a.run_dir_


def test_sklearn_pipeline_grid_search_and_clone(shapes):
    sklearn = pytest.importorskip("sklearn")
    from sklearn.base import clone
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = shapes
    pipe = make_pipeline(StandardScaler(), small(latent=8), LogisticRegression(max_iter=500))
    pipe.fit(X[:400], y[:400])
    assert pipe.score(X[400:], y[400:]) > 0.5  # four classes: chance is 0.25
    grid = GridSearchCV(small(), {"latent": [2, 8]}, cv=2).fit(X[:300])
    assert grid.best_params_["latent"] in (2, 8)
    twin = clone(small(latent=5))
    assert twin.get_params()["latent"] == 5 and not hasattr(twin, "run_")
    assert sklearn.__version__


def test_sklearn_estimator_checks():
    pytest.importorskip("sklearn")
    from sklearn.utils.estimator_checks import check_estimator

    # Checks that cannot apply, with the reason; every other check must pass.
    expected_failed = {
        # Training holds out a validation split, so one or two samples cannot be fitted.
        "check_fit2d_1sample": "fitting needs at least 2 samples",
        # A sample's result agrees across batches to float32 rounding (2e-7 relative), not to
        # the 1e-7 these checks ask: the matrix-product kernel blocks its inner loop by the
        # size of the whole batch.
        "check_methods_subset_invariance": "float32 rounding differs with the batch size",
        "check_methods_sample_order_invariance": "float32 rounding differs with the batch size",
    }
    check_estimator(aekit.AutoEncoder(epochs=2, hidden=(8,), latent=2), expected_failed_checks=expected_failed)


def test_pyod_interface_matches_the_cli_scores(shapes, tmp_path):
    X, _ = shapes
    det = aekit.AnomalyDetector(contamination=0.1, hidden=(32,), latent=4, epochs=3, seed=7).fit(X)
    assert det.decision_scores_.shape == (600,)
    assert det.labels_.sum() == pytest.approx(60, abs=2)
    assert np.array_equal(det.predict(X), det.labels_)
    # The core's threshold rule: NumPy's (PyOD's) linear quantile; 0 is the largest score; a
    # contamination outside [0, 0.5] refused before training.
    assert det.threshold_ == pytest.approx(np.percentile(det.decision_scores_, 90), rel=1e-12)
    assert aekit._aekit.threshold_of(det.decision_scores_.astype(np.float64), 0.0) == det.decision_scores_.max()
    with pytest.raises(ValueError, match=r"contamination must lie in \[0, 0.5\], got 0.7"):
        aekit.AnomalyDetector(contamination=0.7, epochs=1).fit(X)
    for method in ("linear", "unify"):
        p = det.predict_proba(X, method=method)
        assert p.shape == (600, 2) and np.allclose(p.sum(axis=1), 1) and (p >= 0).all()
    with pytest.raises(ValueError, match="method"):
        det.predict_proba(X, method="nope")
    # The same numbers as the library's detector over the saved run.
    run = aekit.Run.open(det.save(tmp_path / "run"))
    assert np.array_equal(run.score_samples(X), det.decision_function(X))


def test_run_open_reads_what_save_wrote(shapes, tmp_path):
    X, _ = shapes
    ae = small(model="vae", latent=2).fit(X)
    run = aekit.Run.open(ae.save(tmp_path / "vae"))
    assert run.info["kind"] == "vae" and run.latent == 2
    assert np.array_equal(run.encode(X[:5]), ae.transform(X[:5]))
    assert run.sample(6, seed=1).shape == (6, 784)
    pixel, latent = run.blend(X[0], X[1], steps=5)
    assert pixel.shape == latent.shape == (5, 784)
    assert np.allclose(pixel[0], X[0], atol=1e-5)
    assert run.traverse(X[0], dims=[0, 1], deltas=[-1, 1]).shape == (4, 784)
    metrics = run.evaluate(X[:50])
    assert metrics["samples"] == 50 and metrics["mse_per_pixel"] > 0


def test_figures_come_back_as_rgb_arrays(tmp_path):
    # A run on the built-in shapes, so the figure finds its test data.
    binary = os.environ.get("AEKIT_BIN", os.path.join(ROOT, "target", "release", "aekit"))
    if not os.path.exists(binary):
        pytest.skip(f"{binary} not built (cargo build --release)")
    subprocess.run([binary, "train", "--model", "vae", "--latent", "2", "--epochs", "1",
                    "--quiet", "--no-report", "--out", str(tmp_path / "run")], check=True)
    run = aekit.Run.open(tmp_path / "run")
    for kind in ("reconstructions", "manifold"):
        img = run.figure(kind)
        assert img.ndim == 3 and img.shape[2] == 3 and img.dtype == np.uint8
        assert img.shape[0] > 28 and img.std() > 0
    assert run.threshold is not None  # `aekit train` stores it
    with pytest.raises(ValueError, match="no figure"):
        run.figure("nope")


def test_the_mnist_homework_example_on_a_subset(tmp_path):
    mnist = os.path.join(ROOT, "..", "shared", "data", "mnist")
    if not os.path.isdir(mnist):
        pytest.skip(f"{mnist} not found: the example needs MNIST")
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "homework", os.path.join(ROOT, "python", "examples", "mnist_homework.py"))
    homework = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(homework)
    _, codes, error = homework.main([mnist, "--limit", "10000", "--epochs", "5",
                                     "--out", str(tmp_path / "codes.png")])
    assert codes.shape == (10000, 2)
    # Against reconstructing every test image by the mean training image (about 52.7): a
    # trained 2-D code must do clearly better even on 10,000 images and 5 epochs.
    X_train, _, X_test, _ = aekit.datasets.load_mnist(mnist)
    baseline = ((X_test - X_train.mean(axis=0)) ** 2).sum(axis=1).mean()
    assert error < 0.85 * baseline, (error, baseline)


def test_errors_arrive_as_python_exceptions(shapes, tmp_path):
    X, _ = shapes
    with pytest.raises(ValueError, match="NaN"):
        small().fit(np.full((10, 3), np.nan))
    with pytest.raises(ValueError, match="2-?D"):
        small().fit(np.zeros(10))
    with pytest.raises(ValueError, match="nonsense.*adam"):
        small(optimizer="nonsense").fit(X)
    with pytest.raises(ValueError, match=r"dropout must lie in \[0, 1\)"):
        small(dropout=1.5).fit(X)
    ae = small().fit(X)
    with pytest.raises(ValueError, match="784"):
        ae.transform(np.zeros((2, 5)))
    with pytest.raises(OSError):
        aekit.Run.open(tmp_path / "missing")
    with pytest.raises(ValueError, match="(?i)invalid parameter"):
        small().set_params(nonsense=1)


def test_keyboard_interrupt_stops_training_and_keeps_the_best_weights(shapes):
    X, _ = shapes
    # Far more epochs than run before the interrupt, even on a loaded machine: training must
    # still be going when the first epoch's line is delivered.
    X = np.tile(X, (20, 1))
    ae = small(epochs=2000)
    seen = []

    def interrupt_after_first_epoch(m):
        seen.append(m)
        if len(seen) == 1:
            # SIGINT as Python receives it, on the main thread while it runs this callback: the
            # KeyboardInterrupt surfaces here, deterministically (a timer thread's interrupt could
            # land after training had ended, or be lost on a loaded machine).
            _thread.interrupt_main()

    ae.set_params(callback=interrupt_after_first_epoch)
    with pytest.raises(KeyboardInterrupt):
        ae.fit(X)
    assert 1 <= len(ae.history_) < 2000
    assert ae.transform(X[:3]).shape == (3, 4)


def test_an_exception_in_the_callback_stops_training_and_reaches_the_caller(shapes, tmp_path):
    X, _ = shapes
    X = np.tile(X, (20, 1))
    run_dir = tmp_path / "stopped"
    ae = small(epochs=2000, run_dir=str(run_dir))

    def fail_at_the_second_epoch(m):
        if m["epoch"] == 2:
            raise ValueError("enough")

    ae.set_params(callback=fail_at_the_second_epoch)
    with pytest.raises(ValueError, match="enough"):
        ae.fit(X)
    # The trainer stopped too (it does not run on behind the caller's back): a checkpoint at a
    # step boundary, far fewer than 2,000 epochs in the metrics, and nothing written afterwards.
    epochs = len((run_dir / "metrics.jsonl").read_text().splitlines())
    assert 2 <= epochs < 2000
    time.sleep(0.5)
    assert len((run_dir / "metrics.jsonl").read_text().splitlines()) == epochs


def test_the_python_front_end_and_the_cli_train_identical_weights(shapes, tmp_path):
    binary = os.environ.get("AEKIT_BIN", os.path.join(ROOT, "target", "release", "aekit"))
    if not os.path.exists(binary):
        pytest.skip(f"{binary} not built (cargo build --release)")
    X, _ = shapes
    np.save(tmp_path / "x.npy", X)
    # With dropout, so that the masks' draws must agree too.
    ae = small(dropout=0.2, run_dir=str(tmp_path / "python")).fit(X)
    subprocess.run(
        [binary, "train", "--data", f"npy:{tmp_path / 'x.npy'}", "--scale", "none", "--hidden", "32",
         "--latent", "4", "--dropout", "0.2", "--epochs", "3", "--batch-size", "50", "--seed", "7",
         "--lr", "0.001",
         "--quiet", "--no-report", "--out", str(tmp_path / "cli")],
        check=True,
    )
    ours = (tmp_path / "python" / "model.safetensors").read_bytes()
    theirs = (tmp_path / "cli" / "model.safetensors").read_bytes()
    assert ours == theirs
    assert ae.run_dir_ == str(tmp_path / "python")
    shutil.rmtree(tmp_path / "cli")


def test_verbose_shows_a_progress_bar_and_the_callback_sees_every_epoch(shapes, capsys):
    pytest.importorskip("tqdm")
    X, _ = shapes
    seen = []
    small(epochs=3, verbose=True, callback=seen.append).fit(X)
    assert [m["epoch"] for m in seen] == [1, 2, 3]
    err = capsys.readouterr().err
    assert "3/3" in err and "epoch" in err, err


def test_a_conditional_vae_learns_from_the_labels_and_samples_a_class(shapes, tmp_path):
    X, y = shapes
    named = np.array([f"shape-{v}" for v in y])
    ae = small(model="cvae", latent=2, epochs=2).fit(X, named)
    assert list(ae.classes_) == sorted(set(named))
    assert ae.run_.classes == len(ae.classes_)
    assert ae.transform(X[:5], named[:5]).shape == (5, 2)
    assert ae.predict(X[:5], named[:5]).shape == (5, 784)
    with pytest.raises(ValueError, match="conditional on the class"):
        ae.transform(X[:5])
    with pytest.raises(ValueError, match="not fitted with"):
        ae.transform(X[:2], ["nope", "nope"])
    with pytest.raises(ValueError, match="needs y"):
        small(model="cvae").fit(X)
    first, second = (ae.sample(4, seed=1, label=c) for c in ae.classes_[:2])
    assert first.shape == (4, 784) and not np.array_equal(first, second)
    run = aekit.Run.open(ae.save(tmp_path / "cvae"))
    assert run.info["capabilities"]["conditional"]
    assert np.array_equal(run.sample(4, 1, label=1), second)
    # The command line draws the same samples from the saved run.
    binary = os.environ.get("AEKIT_BIN", os.path.join(ROOT, "target", "release", "aekit"))
    if os.path.exists(binary):
        out = tmp_path / "s.npy"
        subprocess.run([binary, "sample", str(tmp_path / "cvae"), "-n", "4", "--seed", "1",
                        "--class", "1", "--out", str(out), "--png", str(tmp_path / "s.png")],
                       check=True, capture_output=True)
        assert np.array_equal(np.load(out), second)


def _columns(X):
    return {f"p{i}": X[:, i] for i in range(X.shape[1])}


def test_tables_train_and_answer_as_their_arrays_do(shapes):
    pa = pytest.importorskip("pyarrow")
    pd = pytest.importorskip("pandas")
    pl = pytest.importorskip("polars")
    X, _ = shapes
    X = np.ascontiguousarray(X[:, 300:340])
    reference = small().fit(X)
    codes = reference.transform(X)
    for make in (pa.table, pd.DataFrame, pl.DataFrame):
        table = make(_columns(X))
        ae = small().fit(table)
        assert ae.n_features_in_ == 40
        # The same rows, the same run, to the bit.
        assert np.array_equal(ae.transform(table), codes), make
        assert np.array_equal(ae.transform(X), codes), make
    # Outputs as a pyarrow Table with the input's chosen columns beside them.
    table = pa.table(_columns(X)).append_column("id", pa.array([f"r{i}" for i in range(len(X))]))
    out = reference.run_.encode_table(table, keep=["id"], columns=[f"p{i}" for i in range(40)])
    assert out.column_names == ["id", "z"] and out.num_rows == len(X)
    assert out.column("id")[5].as_py() == "r5"
    assert np.array_equal(np.stack(out.column("z").to_numpy(zero_copy_only=False)), codes)
    scores = reference.run_.score_table(table, columns=[f"p{i}" for i in range(40)])
    assert np.allclose(scores.column("score").to_numpy(), reference.run_.score_samples(X))


def test_bad_tables_are_refused_naming_the_column(shapes):
    pa = pytest.importorskip("pyarrow")
    X, _ = shapes
    X = np.ascontiguousarray(X[:50, 300:304])
    cols = _columns(X)
    with pytest.raises(ValueError, match="column 'name'"):
        small().fit(pa.table({**cols, "name": [str(i) for i in range(50)]}))
    bad = X.copy()
    bad[7, 2] = np.nan
    with pytest.raises(ValueError, match="column 'p2'.*not a finite number"):
        small().fit(pa.table(_columns(bad)))
    with pytest.raises(ValueError, match="column 'p1' has missing values"):
        small().fit(pa.table({**cols, "p1": pa.array([None] + list(X[1:, 1]))}))


def test_fit_over_batches_streams_what_does_not_fit(shapes):
    pa = pytest.importorskip("pyarrow")
    X, _ = shapes
    X = np.ascontiguousarray(X[:, 300:340])
    baseline = ((X - X.mean(axis=0)) ** 2).sum(axis=1).mean()
    # A generator of NumPy batches, and a RecordBatchReader: neither is ever held whole.
    gen = (X[i:i + 100] for i in range(0, len(X), 100))
    ae = small(epochs=8).fit(gen)
    assert ae.n_features_in_ == 40 and len(ae.history_) == 8
    assert -ae.score(X) < baseline
    table = pa.table(_columns(X))
    reader = pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=64))
    ae = small(epochs=8).fit(reader)
    assert -ae.score(table) < baseline
    # The spooled batches are removed once trained.
    assert not os.path.exists(ae.run_dir_ + ".batches.parquet")
    with pytest.raises(ValueError, match="other columns"):
        small().fit(iter([table, pa.table({"q": X[:, 0]})]))
    with pytest.raises(ValueError, match="decision_scores_"):
        aekit.AnomalyDetector().fit(iter([X]))


def test_fit_stores_the_threshold_every_front_end_reads(shapes):
    # The library fits the run's anomaly threshold where the run is made: an estimator fitted
    # from arrays has it, as a run trained by `aekit train` has.
    X, _ = shapes
    ae = small().fit(X)
    assert ae.threshold_ is not None and ae.threshold_ == ae.run_.threshold
    above = np.mean(ae.run_.score_samples(X) > ae.threshold_)
    assert abs(above - 0.1) < 0.01, above


# Settings of each built-in variant beyond the estimator's defaults (small, for speed).
PARITY = {
    "dense": {},
    "conv": {"encoder": "conv:4:3:s2,conv:4:3:s2"},
    "vae": {},
    "iwae": {"importance_samples": 2},
    "infovae": {},
    "btcvae": {},
    "factorvae": {"discriminator_hidden": "8"},
    "aae": {"discriminator_hidden": "8"},
    "cvae": {},
    "ssvae": {"labelled": "20", "labelled_batch": 10},
    "rae": {},
    "wae": {},
    "vqvae": {"encoder": "conv:4:3:s2,conv:4:1", "codes": 8},
}


def test_every_built_in_variant_fits_from_python_as_the_cli_trains_it(shapes, tmp_path):
    binary = os.environ.get("AEKIT_BIN", os.path.join(ROOT, "target", "release", "aekit"))
    if not os.path.exists(binary):
        pytest.skip(f"{binary} not built (cargo build --release)")
    from test_series import SERIES_PARITY  # the variants over windows of a series

    every = sorted([*PARITY, *SERIES_PARITY])
    assert every == sorted(aekit._aekit.model_kinds()), "a built-in variant without a parity case"
    X, y = shapes
    images = X[:300].reshape(-1, 1, 28, 28)
    labels = y[:300]
    np.save(tmp_path / "x.npy", images)
    np.save(tmp_path / "y.npy", labels)
    for kind, options in PARITY.items():
        est = aekit.AutoEncoder(model=kind, epochs=1, batch_size=50, seed=7, options=options,
                                run_dir=str(tmp_path / f"py-{kind}"))
        labelled = kind in ("cvae", "ssvae")
        est.fit(images, labels if labelled else None)
        data = ["--data", f"npy:{tmp_path / 'x.npy'}"]
        if labelled:
            data += ["--labels", str(tmp_path / "y.npy")]
        subprocess.run(
            [binary, "train", *data, "--scale", "none", *est._model_flags(), "--epochs", "1",
             "--batch-size", "50", "--seed", "7", "--lr", "0.001", "--quiet", "--no-report",
             "--out", str(tmp_path / f"cli-{kind}")],
            check=True, capture_output=True,
        )
        ours = (tmp_path / f"py-{kind}" / "model.safetensors").read_bytes()
        theirs = (tmp_path / f"cli-{kind}" / "model.safetensors").read_bytes()
        assert ours == theirs, kind
        # The same resolved model section, whatever the front end.
        model = lambda side: json.loads((tmp_path / f"{side}-{kind}" / "config.json").read_text())["model"]
        assert model("py") == model("cli"), kind


def test_every_figure_works_for_a_run_fitted_from_arrays(shapes):
    X, y = shapes
    X = X.reshape(-1, 1, 28, 28)  # images keep their shape, so figures can draw them
    vae = aekit.AutoEncoder(model="vae", hidden=(32,), latent=2, epochs=1, seed=1).fit(X)
    # Figures that draw no data need none; the ones that do take it.
    for kind in ("manifold", "samples", "curves"):
        assert vae.run_.figure(kind).shape[2] == 3
    for kind in ("reconstructions", "codes", "blend", "traverse"):
        assert vae.run_.figure(kind, X[:50], y[:50]).std() > 0
    with pytest.raises(ValueError, match="the reconstructions figure draws samples of the data: pass X"):
        vae.run_.figure("reconstructions")
    dense = small().fit(X)
    assert dense.run_.figure("manifold", X[:50]).shape[2] == 3
    # The lectures' failure: a convolutional model from Python, by its defaults.
    conv = aekit.AutoEncoder(model="conv", epochs=1, seed=1).fit(X)
    assert conv.transform(X[:5]).shape == (5, 8)
    assert conv.run_.figure("reconstructions", X[:8]).std() > 0
    with pytest.raises(ValueError, match="--hidden is not a setting of a conv model"):
        aekit.AutoEncoder(model="conv", hidden=(16,), epochs=1).fit(X)
