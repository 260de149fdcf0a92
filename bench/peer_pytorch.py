"""The PyTorch peer of `aekit-bench`: the same workloads, on the same number of CPU threads.

  A  dense 784-1000-500-250-30 (ReLU, linear code, sigmoid output), MSE, Adam 1e-3, batch 256
  B  the Keras conv autoencoder (16-8-8, 3x3 same, 2x2 max pooling to 8x4x4, nearest
     upsampling, last up-conv 8->16 valid so 16->14, output conv 16->1 sigmoid), BCE, batch 128
  C  encoding with workload A's model without gradients, batches of 1024; the median
     of PASSES passes over the samples (one pass takes about two seconds, too short alone)
  latency  A's model encoding and decoding batches of 1, 8 and 64 rows under
     torch.inference_mode(), LATENCY_CALLS timed calls each: p50 and p99 in microseconds

Each workload runs in the configuration --config names, the ones a performance-minded user
tries (bench/run.sh measures them all and compares aekit with the best):
  eager          eager mode, Adam's default (foreach) implementation
  fused          eager mode, Adam(fused=True)
  compile        torch.compile (default mode) of the training step (of the encoder for C)
  compile-fused  both
--device cuda runs on the GPU (data held there, timings synchronised).

Random data of MNIST's shape in [0, 1]. Warm-up steps (for the compiled step: until every batch
shape has been compiled), then one timed epoch (shuffled). The time to the first finished step
counts from process start, compilation included. Prints one JSON line like aekit-bench.
Usage: python peer_pytorch.py A|B|C|latency [SAMPLES] [THREADS] [--config C] [--device D]
"""

import argparse
import json
import os
import resource
import statistics
import time

START = time.perf_counter()

import torch  # noqa: E402  (timed from process start, as aekit's first step is)
from torch import nn  # noqa: E402


PASSES = 5
LATENCY_CALLS = 10_000
CONFIGS = ("eager", "fused", "compile", "compile-fused")


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


def synchronise(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def encoding_rate(enc, x, compiled, device):
    """Samples/s of workload C: the median of PASSES passes in batches of 1024."""
    if compiled:
        enc = torch.compile(enc)
    samples = x.shape[0]
    with torch.inference_mode():
        # Every batch shape once (the last batch may be shorter), so no pass compiles.
        enc(x[:1024])
        if samples % 1024:
            enc(x[samples - samples % 1024:])
        synchronise(device)
        rates = []
        for _ in range(PASSES):
            t = time.perf_counter()
            for i in range(0, samples, 1024):
                enc(x[i : i + 1024])
            synchronise(device)
            rates.append(samples / (time.perf_counter() - t))
    return statistics.median(rates)


def training_rate(model, loss_fn, x, batch, config, device):
    """Samples/s of one shuffled epoch and the seconds from process start to the first step."""
    fused = config.endswith("fused")
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True if fused else None)

    def step(xb):
        loss = loss_fn(model(xb), xb)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    if config.startswith("compile"):
        step = torch.compile(step)
    samples = x.shape[0]
    step(x[:batch])
    synchronise(device)
    first_step = time.perf_counter() - START
    # Compiled steps specialise on the first calls (and on a shorter last batch): warm both up.
    for _ in range(2):
        step(x[:batch])
    if samples % batch:
        step(x[: samples % batch])
    synchronise(device)
    t = time.perf_counter()
    order = torch.randperm(samples, device=device)
    for i in range(0, samples, batch):
        step(x[order[i : i + batch]])
    synchronise(device)
    return samples / (time.perf_counter() - t), first_step


def latencies(enc, dec, device):
    """p50/p99 microseconds of encoding and decoding 1, 8 and 64 rows, one call at a time."""
    report = {}
    with torch.inference_mode():
        for batch in (1, 8, 64):
            x = torch.rand(batch, 784, device=device)
            z = enc(x)
            entry = {}
            for name, fn, arg in (("encode", enc, x), ("decode", dec, z)):
                for _ in range(LATENCY_CALLS // 10):
                    fn(arg)
                times = []
                for _ in range(LATENCY_CALLS):
                    t = time.perf_counter()
                    fn(arg)
                    synchronise(device)
                    times.append((time.perf_counter() - t) * 1e6)
                times.sort()
                entry[f"{name}_p50_us"] = times[round((len(times) - 1) * 0.5)]
                entry[f"{name}_p99_us"] = times[round((len(times) - 1) * 0.99)]
            report[str(batch)] = entry
    return report


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("workload", nargs="?", default="A")
    parser.add_argument("samples", nargs="?", type=int)
    parser.add_argument("threads", nargs="?", type=int, default=os.cpu_count())
    parser.add_argument("--config", choices=CONFIGS, default="eager")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    args = parser.parse_args()
    workload = args.workload.upper()
    device = torch.device(args.device)
    samples = args.samples or {"B": 19_200, "LATENCY": 64}.get(workload, 60_000)
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    torch.manual_seed(0)
    shape = (samples, 1, 28, 28) if workload == "B" else (samples, 784)
    x = torch.rand(shape).to(device)
    enc, dec = keras_conv() if workload == "B" else dense_a()
    enc, dec = enc.to(device), dec.to(device)
    line = {
        "impl": "pytorch",
        "config": args.config,
        "device": args.device,
        "version": torch.__version__,
        "workload": "latency" if workload == "LATENCY" else workload,
        "threads": torch.get_num_threads(),
    }
    if workload == "LATENCY":
        line.update(calls=LATENCY_CALLS, latency=latencies(enc, dec, device))
    elif workload == "C":
        rate = encoding_rate(enc, x, args.config.startswith("compile"), device)
        line.update(samples=samples, samples_per_sec=rate, first_step_s=None)
    else:
        model = nn.Sequential(enc, dec)
        loss_fn = nn.BCELoss() if workload == "B" else nn.MSELoss()
        batch = 128 if workload == "B" else 256
        rate, first_step = training_rate(model, loss_fn, x, batch, args.config, device)
        line.update(samples=samples, samples_per_sec=rate, first_step_s=first_step)
    line["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(line))


if __name__ == "__main__":
    main()
