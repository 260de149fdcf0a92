"""Time series anomaly detection on labelled series that PyPI wheels ship: aekit's windowed
autoencoders (dense, and the 1-D convolutional keras.io recipe) against PyOD's AutoEncoder and
scikit-learn's IsolationForest on the same windows.

Series (all offline, from the installed wheels):
- sktime `datasets/data/yahoo/yahoo.csv`: a Yahoo S5 series, 1,000 points, 7 labelled anomalies;
- sktime `datasets/data/mitdb/mitdb.csv`: an MIT-BIH ECG excerpt, 7,500 points, 352 labelled;
- aeon `datasets/data/KDD-TSAD_135`: the UCR anomaly archive's series 135 (InternalBleeding16),
  7,501 points with its own training range (the first 1,200) and one anomaly (4,187-4,199).

Protocol: windows of 64 points, stride 1 (the ECG: 256 points, most of a heartbeat at 360 Hz,
stride 4); the training range is the UCR series' own 1,200
points, and the first third of the other two (no labelled anomaly lies there); every method
is fitted on the
windows of the training range, with values standardised by the training range's mean and
standard deviation. Each point's score: aekit's point scores, `mean` (the point's own squared
error in each window that covers it, averaged over those windows) and `window` (the mean of the
covering windows' whole scores); for PyOD and IsolationForest, which score whole windows, the
mean of the window scores over the windows that cover the point, as aekit's `window`. Judged on
the held-out points (after the training range): ROC AUC, and the UCR archive's measure (is the
top-scored point within 100 points of a labelled anomaly). Point-adjusted F1 is not reported:
it credits a whole anomalous segment for one flagged point and flatters noisy detectors (Kim
et al., AAAI 2022). Fit time: aekit's whole `aekit train` process (loading and writing the run
included) beside PyOD's `fit` call; and in one process each, alternating, `aekit.SeriesDetector`'s
fit (the same dense 64-8 model) against PyOD's, 2 threads each.

    bench/.venv/bin/python bench/series.py target/release/aekit [SEEDS]
"""

import csv
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
from pyod.models.auto_encoder import AutoEncoder as PyodAE
from sklearn.ensemble import IsolationForest
from sklearn.metrics import roc_auc_score

import aeon
import aekit
import sktime

EPOCHS = 100
BATCH = 128
UCR_TOLERANCE = 100


def series_files():
    sk = os.path.join(os.path.dirname(sktime.__file__), "datasets", "data")
    ae = os.path.join(os.path.dirname(aeon.__file__), "datasets", "data", "KDD-TSAD_135")
    return [
        # name, file, value column, label column, time column, training points, window, stride
        ("Yahoo S5 (sktime)", os.path.join(sk, "yahoo", "yahoo.csv"), "data", "label", None, None,
         64, 1),
        # 360 samples a second: a window of 256 holds most of a heartbeat.
        ("MIT-BIH ECG (sktime)", os.path.join(sk, "mitdb", "mitdb.csv"), "data", "label", None,
         None, 256, 4),
        ("UCR 135 (aeon)", os.path.join(ae, "135_UCR_Anomaly_InternalBleeding16_TEST.csv"),
         "value", "is_anomaly", "timestamp", 1200, 64, 1),
    ]


def read(path, value, label):
    with open(path) as f:
        rows = list(csv.DictReader(f))
    return (np.array([float(r[value]) for r in rows], dtype=np.float32),
            np.array([int(float(r[label])) for r in rows]))


def starts(n, window, stride):
    """aekit's window starts: every `stride` steps, and one more ending at the last point."""
    out = list(range(0, n - window + 1, stride))
    if out[-1] != n - window:
        out.append(n - window)
    return out


def windows(x, n, window, stride):
    return np.stack([x[s:s + window] for s in starts(n, window, stride)])


def to_points(window_scores, length, window, stride):
    """Mean over the windows that cover each point."""
    total = np.zeros(length)
    count = np.zeros(length)
    for s, v in zip(starts(length, window, stride), window_scores):
        total[s:s + window] += v
        count[s:s + window] += 1
    return total / np.maximum(count, 1)


def judge(scores, labels, train):
    s, y = scores[train:], labels[train:]
    auc = roc_auc_score(y, s)
    top = int(np.argmax(s))
    hit = bool(np.any(np.abs(np.flatnonzero(y) - top) <= UCR_TOLERANCE))
    return auc, hit


def aekit_run(binary, path, value, label, time_col, train, window, stride, model, seed, tmp):
    run = os.path.join(tmp, f"{os.path.basename(path)}-{model}-{seed}")
    args = [binary, "train", "--data", f"csv:{path}", "--columns", value, "--label-column", label,
            "--window", str(window), "--stride", str(stride), "--train-points", str(train),
            "--scale", "standardize",
            "--epochs", str(EPOCHS), "--batch-size", str(BATCH), "--lr", "1e-3",
            "--seed", str(seed), "--threads", "2", "--quiet", "--no-report", "--out", run]
    if time_col:
        args += ["--time-column", time_col]
    if model == "dense":
        args += ["--model", "dense", "--hidden", "64", "--latent", "8"]
    else:
        # keras.io's layers: Conv1D 32 and 16 (kernel 7, stride 2, ReLU), mirrored; without
        # its dropout of 0.2, which cost ROC AUC on every series here (README, "Time series").
        args += ["--model", "conv1d", "--filters", "32,16", "--kernel", "7",
                 "--conv-stride", "2"]
    t = time.perf_counter()
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - t
    scores = {}
    for reduce in ("mean", "window"):
        out = f"{run}-{reduce}.csv"
        subprocess.run([binary, "score", run, "--point-score", reduce, "--out", out, "--json"],
                       check=True, stdout=subprocess.DEVNULL)
        with open(out) as f:
            scores[reduce] = np.array([float(r["score"]) for r in csv.DictReader(f)])
    return seconds, scores


def main():
    binary = sys.argv[1]
    seeds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    torch.set_num_threads(2)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, path, value, label, time_col, train, window, stride in series_files():
            x, y = read(path, value, label)
            train = train or len(x) // 3
            mean, sd = x[:train].mean(), x[:train].std()
            z = (x - mean) / sd
            w_train = windows(z, train, window, stride)
            w_all = windows(z, len(z), window, stride)
            rows = {}
            for seed in range(seeds):
                for model in ("dense", "conv1d"):
                    seconds, scores = aekit_run(binary, path, value, label, time_col, train,
                                                window, stride, model, seed, tmp)
                    for reduce, s in scores.items():
                        rows.setdefault(f"aekit {model}, point score {reduce}", []).append(
                            (seconds, *judge(s, y, train)))
                t = time.perf_counter()
                det = PyodAE(hidden_neuron_list=[64, 8], epoch_num=EPOCHS, batch_size=BATCH,
                             lr=1e-3, verbose=0, random_state=seed).fit(w_train)
                seconds = time.perf_counter() - t
                scores = to_points(det.decision_function(w_all), len(z), window, stride)
                rows.setdefault("PyOD AutoEncoder", []).append((seconds, *judge(scores, y, train)))
                t = time.perf_counter()
                forest = IsolationForest(random_state=seed).fit(w_train)
                seconds = time.perf_counter() - t
                scores = to_points(-forest.score_samples(w_all), len(z), window, stride)
                rows.setdefault("IsolationForest", []).append((seconds, *judge(scores, y, train)))
            # Fit time in one process each, alternating: aekit's SeriesDetector (the same dense
            # 64-8 model; windowing, scaling and the training points' scores included) against
            # PyOD's fit on the windows (its training scores included).
            for seed in range(seeds):
                t = time.perf_counter()
                aekit.SeriesDetector(window=window, stride=stride, train_points=train,
                                     model="dense", hidden=(64,), latent=8, epochs=EPOCHS,
                                     batch_size=BATCH, lr=1e-3, scale="standardize",
                                     seed=seed).fit(x)
                rows.setdefault("in-process fit: aekit.SeriesDetector dense", []).append(
                    (time.perf_counter() - t, np.nan, 0))
                t = time.perf_counter()
                PyodAE(hidden_neuron_list=[64, 8], epoch_num=EPOCHS, batch_size=BATCH, lr=1e-3,
                       verbose=0, random_state=seed).fit(w_train)
                rows.setdefault("in-process fit: PyOD AutoEncoder", []).append(
                    (time.perf_counter() - t, np.nan, 0))
            for method, runs in rows.items():
                runs = np.array(runs, dtype=float)
                results.append({
                    "series": name, "method": method, "points": len(x),
                    "training_points": train, "window": window, "stride": stride, "seeds": seeds,
                    "fit_seconds": float(np.median(runs[:, 0])),
                    "roc_auc_mean": float(runs[:, 1].mean()),
                    "roc_auc_sd": float(np.std(runs[:, 1], ddof=1)) if seeds > 1 else 0.0,
                    "top_point_hits": int(runs[:, 2].sum()),
                })
                print(json.dumps(results[-1]), flush=True)
    print()
    print("| series | method | ROC AUC (mean ± sd) | top point within 100 | fit s (median) |")
    print("| --- | --- | --- | --- | --- |")
    for r in results:
        if r["method"].startswith("in-process"):
            continue
        print(f"| {r['series']} | {r['method']} | {r['roc_auc_mean']:.3f} ± {r['roc_auc_sd']:.3f} "
              f"| {r['top_point_hits']} of {r['seeds']} | {r['fit_seconds']:.2f} |")
    print()
    print("| series | aekit.SeriesDetector fit s | PyOD AutoEncoder fit s | PyOD / aekit |")
    print("| --- | --- | --- | --- |")
    timed = {(r["series"], r["method"]): r["fit_seconds"] for r in results}
    for name in dict.fromkeys(r["series"] for r in results):
        a = timed[(name, "in-process fit: aekit.SeriesDetector dense")]
        p = timed[(name, "in-process fit: PyOD AutoEncoder")]
        print(f"| {name} | {a:.2f} | {p:.2f} | {p / a:.1f}x |")


if __name__ == "__main__":
    main()
