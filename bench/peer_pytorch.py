"""The PyTorch peer of `aekit-bench`: the same workloads, on the same number of CPU threads.

  A  dense 784-1000-500-250-30 (ReLU, linear code, sigmoid output), MSE, Adam 1e-3, batch 256
  B  the Keras conv autoencoder (16-8-8, 3x3 same, 2x2 max pooling to 8x4x4, nearest
     upsampling, last up-conv 8->16 valid so 16->14, output conv 16->1 sigmoid), BCE, batch 128
  C  encoding with workload A's model under torch.no_grad(), batches of 1024; the median
     of PASSES passes over the samples (one pass takes about two seconds, too short alone)

Random data of MNIST's shape in [0, 1]. One warm-up step, then one timed epoch (shuffled).
Prints one JSON line like aekit-bench. Usage: python peer_pytorch.py A|B|C [SAMPLES] [THREADS]
"""

import json
import os
import resource
import statistics
import sys
import time

START = time.perf_counter()

import torch  # noqa: E402  (timed from process start, as aekit's first step is)
from torch import nn  # noqa: E402


PASSES = 5


def dense_a():
    enc = nn.Sequential(
        nn.Linear(784, 1000), nn.ReLU(), nn.Linear(1000, 500), nn.ReLU(),
        nn.Linear(500, 250), nn.ReLU(), nn.Linear(250, 30),
    )
    dec = nn.Sequential(
        nn.Linear(30, 250), nn.ReLU(), nn.Linear(250, 500), nn.ReLU(),
        nn.Linear(500, 1000), nn.ReLU(), nn.Linear(1000, 784), nn.Sigmoid(),
    )
    return enc, dec


def keras_conv():
    enc = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True),
    )
    dec = nn.Sequential(
        nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.Upsample(scale_factor=2),
        nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.Upsample(scale_factor=2),
        nn.Conv2d(8, 16, 3), nn.ReLU(), nn.Upsample(scale_factor=2),
        nn.Conv2d(16, 1, 3, padding=1), nn.Sigmoid(),
    )
    return enc, dec


def main():
    workload = (sys.argv[1] if len(sys.argv) > 1 else "A").upper()
    samples = int(sys.argv[2]) if len(sys.argv) > 2 else (19_200 if workload == "B" else 60_000)
    threads = int(sys.argv[3]) if len(sys.argv) > 3 else os.cpu_count()
    torch.set_num_threads(threads)
    torch.set_flush_denormal(True)
    torch.manual_seed(0)
    shape = (samples, 1, 28, 28) if workload == "B" else (samples, 784)
    x = torch.rand(shape)
    enc, dec = keras_conv() if workload == "B" else dense_a()
    first_step = None
    if workload == "C":
        with torch.no_grad():
            enc(x[:1024])
            rates = []
            for _ in range(PASSES):
                t = time.perf_counter()
                for i in range(0, samples, 1024):
                    enc(x[i : i + 1024])
                rates.append(samples / (time.perf_counter() - t))
            rate = statistics.median(rates)
    else:
        model = nn.Sequential(enc, dec)
        loss_fn = nn.BCELoss() if workload == "B" else nn.MSELoss()
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        batch = 128 if workload == "B" else 256

        def step(xb):
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), xb)
            loss.backward()
            opt.step()

        step(x[:batch])
        first_step = time.perf_counter() - START
        t = time.perf_counter()
        order = torch.randperm(samples)
        for i in range(0, samples, batch):
            step(x[order[i : i + batch]])
        rate = samples / (time.perf_counter() - t)
    print(json.dumps({
        "impl": "pytorch",
        "version": torch.__version__,
        "workload": workload,
        "samples": samples,
        "threads": torch.get_num_threads(),
        "samples_per_sec": rate,
        "first_step_s": first_step,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }))


if __name__ == "__main__":
    main()
