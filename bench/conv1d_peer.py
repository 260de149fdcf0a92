"""keras.io's Conv1D autoencoder (Conv1d 32 and 16, kernel 7, stride 2, mirrored by
ConvTranspose1d, then a Conv1d to the channel; ReLU; Adam 1e-3 with PyTorch's fused step;
batches of 128) trained on the same windows as `aekit train --model conv1d`: the first 1,200
points of aeon's UCR series 135, standardised, windows of 64, stride 1 — 30 epochs, 2 threads,
alternating with aekit, 3 rounds. PyTorch eager and with `torch.compile` of the step.

    bench/.venv/bin/python bench/conv1d_peer.py target/release/aekit
"""

import os
import subprocess
import sys
import tempfile
import time

import aeon
import numpy as np
import torch
import torch.nn as nn

EPOCHS = 30
UCR = os.path.join(os.path.dirname(aeon.__file__), "datasets", "data", "KDD-TSAD_135",
                   "135_UCR_Anomaly_InternalBleeding16_TEST.csv")


def pytorch(compiled):
    torch.manual_seed(0)
    x = np.loadtxt(UCR, delimiter=",", skiprows=1, usecols=1, dtype=np.float32)[:1200]
    x = (x - x.mean()) / x.std()
    X = torch.from_numpy(np.lib.stride_tricks.sliding_window_view(x, 64).copy()[:, None, :])
    model = nn.Sequential(
        nn.Conv1d(1, 32, 7, stride=2, padding=3), nn.ReLU(),
        nn.Conv1d(32, 16, 7, stride=2, padding=3), nn.ReLU(),
        nn.ConvTranspose1d(16, 16, 7, stride=2, padding=3, output_padding=1), nn.ReLU(),
        nn.ConvTranspose1d(16, 32, 7, stride=2, padding=3, output_padding=1), nn.ReLU(),
        nn.Conv1d(32, 1, 7, padding=3))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)

    def step(b):
        opt.zero_grad()
        loss = ((model(b) - b) ** 2).mean()
        loss.backward()
        opt.step()

    if compiled:
        step = torch.compile(step)

    def epoch():
        perm = torch.randperm(len(X))
        for i in range(0, len(X), 128):
            step(X[perm[i:i + 128]])

    epoch()  # warm-up (and compilation), not timed
    t = time.perf_counter()
    for _ in range(EPOCHS):
        epoch()
    return time.perf_counter() - t, len(X)


def aekit(binary):
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        subprocess.run([binary, "--threads", "2", "train", "--data", f"csv:{UCR}",
                        "--time-column", "timestamp", "--label-column", "is_anomaly",
                        "--train-points", "1200", "--window", "64", "--model", "conv1d",
                        "--scale", "standardize", "--epochs", str(EPOCHS), "--batch-size", "128",
                        "--val-fraction", "0", "--quiet", "--no-report", "--out",
                        os.path.join(tmp, "run")], check=True, stdout=subprocess.DEVNULL)
        return time.perf_counter() - t


def main():
    torch.set_num_threads(2)
    binary = sys.argv[1]
    for r in range(3):
        a = aekit(binary)
        e, n = pytorch(False)
        c, _ = pytorch(True)
        print(f"round {r}: aekit (whole process) {a:.2f} s; PyTorch eager {e:.2f} s, compiled "
              f"{c:.2f} s (training only); {n} windows x {EPOCHS} epochs; "
              f"best PyTorch / aekit = {min(e, c) / a:.2f}", flush=True)


if __name__ == "__main__":
    main()
