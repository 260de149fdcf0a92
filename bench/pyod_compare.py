"""aekit's AnomalyDetector beside PyOD's AutoEncoder (PyTorch) on the same data and settings:
fit time and test ROC AUC.

- one-class MNIST as tabular data: fit on the training images of one digit, score the 10,000
  test images, anomalies = every other digit (for digits 0, 1 and 7);
- scikit-learn's bundled breast-cancer data (569 x 30): fit on two thirds of the benign
  samples, score the rest of the benign ones and every malignant one (anomalies).

Both detectors: encoder 64-32 (32 = the code), ReLU, Adam 1e-3, batch 32, 10 epochs,
inputs standardised (PyOD's `preprocessing=True`; aekit's `scale="standardize"`). PyOD keeps its
defaults otherwise (batch norm, weight decay 1e-5), as a PyOD user would. Both drop 20% of
every hidden layer's units while training (PyOD's default `dropout_rate=0.2`, aekit's
`dropout=0.2`): a code as wide as the input (32 against breast cancer's 30 features) lets an
unregularised autoencoder learn the identity.

Repeat r fits both with seed r (alternating), so the ROC AUC is a mean over seeds: on 238
breast-cancer rows one seed's AUC moves by ±0.01.

    python bench/pyod_compare.py ../shared/data/mnist [REPEATS]
"""

import sys
import time

import numpy as np
import torch
from pyod.models.auto_encoder import AutoEncoder as PyodAE
from sklearn.datasets import load_breast_cancer
from sklearn.metrics import roc_auc_score

import aekit


def aekit_detector(seed):
    return aekit.AnomalyDetector(hidden=(64,), latent=32, dropout=0.2, epochs=10,
                                 batch_size=32, lr=1e-3, scale="standardize", seed=seed)


def pyod_detector(seed):
    return PyodAE(hidden_neuron_list=[64, 32], epoch_num=10, batch_size=32, lr=1e-3, verbose=0,
                  random_state=seed)


def measure(make, seed, X_train, X_test, truth):
    t = time.perf_counter()
    det = make(seed).fit(X_train)
    seconds = time.perf_counter() - t
    return seconds, roc_auc_score(truth, det.decision_function(X_test))


def main():
    mnist = sys.argv[1]
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    torch.set_num_threads(2)
    tasks = []
    Xtr, ytr, Xte, yte = aekit.datasets.load_mnist(mnist)
    for digit in (0, 1, 7):
        tasks.append((f"MNIST one-class, digit {digit}", Xtr[ytr == digit], Xte, yte != digit))
    bc = load_breast_cancer()
    X, y = bc.data.astype(np.float32), bc.target  # target 1 = benign
    rng = np.random.default_rng(0)
    benign = rng.permutation(np.flatnonzero(y == 1))
    cut = 2 * len(benign) // 3
    test = np.concatenate([benign[cut:], np.flatnonzero(y == 0)])
    tasks.append(("breast cancer (scikit-learn)", X[benign[:cut]], X[test], y[test] == 0))
    print("| data | train rows | aekit fit s | PyOD fit s | speed-up | aekit ROC AUC | PyOD ROC AUC |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, X_train, X_test, truth in tasks:
        a, p = [], []
        for seed in range(repeats):  # alternating
            a.append(measure(aekit_detector, seed, X_train, X_test, truth))
            p.append(measure(pyod_detector, seed, X_train, X_test, truth))
        a, p = np.array(a), np.array(p)
        at, pt = np.median(a[:, 0]), np.median(p[:, 0])
        print(f"| {name} | {len(X_train):,} | {at:.2f} | {pt:.2f} | {pt / at:.1f}× "
              f"| {auc(a[:, 1])} | {auc(p[:, 1])} |", flush=True)


def auc(values):
    """Mean ± standard deviation over the seeds."""
    return f"{values.mean():.4f} ± {values.std():.4f}"


if __name__ == "__main__":
    main()
