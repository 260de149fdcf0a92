"""`aekit.SeriesDetector`: a time series scored point by point, the same numbers as `aekit score`
on the same run and series."""

import csv
import os
import subprocess

import numpy as np
import pytest

import aekit

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BINARY = os.environ.get("AEKIT_BIN", os.path.join(ROOT, "target", "release", "aekit"))


def spiked(n=1600, spike=1200, seed=0):
    """A noisy sine of period 50, two channels (the second a scaled copy), a spike at `spike`."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    x = np.sin(2 * np.pi * t / 50) + 0.05 * rng.standard_normal(n)
    x[spike] += 3
    return np.column_stack([x, 10 * x + 5]).astype(np.float32)


@pytest.mark.parametrize("model", ["dense", "conv1d", "gru", "lstm"])
def test_a_spike_scores_highest_at_its_point(model):
    X = spiked()
    det = aekit.SeriesDetector(window=32, train_points=800, model=model, epochs=8,
                               latent=8).fit(X)
    scores = det.decision_function(X)
    assert scores.shape == (1600,)
    assert int(np.argmax(scores)) == 1200
    assert det.n_features_in_ == 2
    assert det.decision_scores_.shape == (800,)
    # The threshold leaves 10% of the training points' scores above it.
    assert abs(np.mean(det.decision_scores_ > det.threshold_) - 0.1) < 0.01
    assert det.predict(X)[1200] == 1
    assert np.array_equal(det.score_samples(X), -scores)
    with pytest.raises(ValueError, match="3 channels"):
        det.decision_function(np.zeros((100, 3), np.float32))
    # The series figure of the given points: values above, scores below, the spike flagged.
    img = det.figure(X)
    assert img.shape == (620, 960, 3) and img.dtype == np.uint8
    flagged_red = (img[:, :, 0] > 230) & (img[:, :, 1] < 225) & (img[:, :, 2] < 225)
    assert flagged_red.sum() > 50


def test_scores_equal_the_command_lines(tmp_path):
    if not os.path.exists(BINARY):
        pytest.skip(f"{BINARY} not built (cargo build --release)")
    X = spiked()
    det = aekit.SeriesDetector(window=24, stride=3, train_points=800, point_score="max",
                               contamination=0.0, model="dense", epochs=3,
                               run_dir=str(tmp_path / "run")).fit(X)
    data = tmp_path / "series.csv"
    with open(data, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["a", "b"])
        w.writerows(X.tolist())
    out = tmp_path / "points.csv"
    subprocess.run([BINARY, "score", str(tmp_path / "run"), "--data", f"csv:{data}",
                    "--train-points", "800", "--point-score", "max", "--contamination", "0",
                    "--out", str(out)], check=True, stdout=subprocess.DEVNULL)
    with open(out) as f:
        rows = list(csv.DictReader(f))
    cli = np.array([float(r["score"]) for r in rows])
    assert np.array_equal(cli, det.decision_function(X))
    # Contamination 0: the largest training point score, as the keras.io recipe's threshold.
    assert det.threshold_ == det.decision_scores_.max()
    assert [r["training"] for r in rows[799:801]] == ["1", "0"]


def test_bad_series_are_refused():
    with pytest.raises(ValueError, match="fewer than --window 64"):
        aekit.SeriesDetector(window=64, epochs=1).fit(np.zeros(40, np.float32))
    with pytest.raises(ValueError, match="not a finite number"):
        aekit.SeriesDetector(window=4, epochs=1).fit(np.array([1, 2, np.nan, 4, 5, 6], np.float32))
    with pytest.raises(ValueError, match="point score 'median'"):
        aekit.SeriesDetector(window=4, epochs=1, point_score="median", model="dense").fit(
            np.arange(40, dtype=np.float32))


# The variants that take only windows of a series, fitted from Python as the CLI trains them
# (test_aekit.py's parity test covers the others on images).
SERIES_PARITY = {
    "conv1d": {"filters": "4,2", "variational": True},
    "gru": {"units": 4},
    "lstm": {"units": 4, "variational": True},
}


@pytest.mark.parametrize("kind", sorted(SERIES_PARITY))
def test_series_variants_fit_from_python_as_the_cli_trains_them(kind, tmp_path):
    if not os.path.exists(BINARY):
        pytest.skip(f"{BINARY} not built (cargo build --release)")
    X = spiked(n=400, spike=300)
    det = aekit.SeriesDetector(window=16, stride=2, model=kind, epochs=1, batch_size=50, seed=7,
                               options=SERIES_PARITY[kind], run_dir=str(tmp_path / "py")).fit(X)
    data = tmp_path / "series.csv"
    with open(data, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["a", "b"])
        w.writerows(X.tolist())
    subprocess.run([BINARY, "train", "--data", f"csv:{data}", "--window", "16", "--stride", "2",
                    "--scale", "standardize", *det._model_flags(), "--epochs", "1",
                    "--batch-size", "50", "--seed", "7", "--lr", "0.001", "--quiet",
                    "--no-report", "--out", str(tmp_path / "cli")],
                   check=True, capture_output=True)
    ours = (tmp_path / "py" / "model.safetensors").read_bytes()
    theirs = (tmp_path / "cli" / "model.safetensors").read_bytes()
    assert ours == theirs
