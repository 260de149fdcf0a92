#!/usr/bin/env python3
"""`aekit serve` against FastAPI + PyTorch (bench/serve_peer_fastapi.py) on the same run, same
machine: requests/s and p50/p99 latency of `encode` and `decode` at batch 1 and 256 with 1, 16
and 64 concurrent clients, measured by wrk. The servers take turns (each round runs every cell
on one server, then on the next, the order swapping between rounds); aekit also runs with
dynamic batching off (--batch-wait-us 0) for the batching comparison. Prints JSON lines, then a
table of medians over rounds.

    python3 bench/serve_bench.py RUN_DIR [--rounds 2] [--seconds 4] [--mnist ../shared/data/mnist]
"""

import argparse
import gzip
import json
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
AEKIT = os.path.join(ROOT, "target", "release", "aekit")
VENV = os.path.join(ROOT, "bench", ".venv", "bin")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_up(port, proc, what):
    deadline = time.time() + 120
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit(f"{what} exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"{what} did not listen on {port}")


def start(server, run, port):
    if server == "fastapi":
        env = dict(os.environ, AEKIT_RUN=run)
        cmd = [os.path.join(VENV, "uvicorn"), "--app-dir", os.path.join(ROOT, "bench"),
               "serve_peer_fastapi:app", "--port", str(port), "--log-level", "warning",
               "--no-access-log"]
    else:
        env = dict(os.environ)
        cmd = [AEKIT, "serve", run, "--addr", f"127.0.0.1:{port}", "--map-points", "1000"]
        if server == "aekit-unbatched":
            cmd += ["--batch-wait-us", "0"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_up(port, proc, server)
    return proc


def mnist_test_images(path, n):
    with gzip.open(os.path.join(path, "t10k-images-idx3-ubyte.gz")) as f:
        data = f.read()
    rows = []
    for i in range(n):
        start = 16 + i * 784
        rows.append(list(data[start:start + 784]))
    return rows


def code_width(run):
    """The run's code width, as its server reports it."""
    port = free_port()
    proc = start("aekit", run, port)
    try:
        import urllib.request
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/runs") as r:
            return json.load(r)["runs"][0]["latent"]
    finally:
        proc.terminate()
        proc.wait()


def payloads(run, tmp, mnist):
    latent = code_width(run)
    images = mnist_test_images(mnist, 256)
    rng = random.Random(0)
    codes = [[rng.gauss(0, 1) for _ in range(latent)] for _ in range(256)]
    out = {}
    for op, field, rows in [("encode", "x", images), ("decode", "codes", codes)]:
        for batch in (1, 256):
            body = os.path.join(tmp, f"{op}-{batch}.json")
            with open(body, "w") as f:
                json.dump({field: rows[:batch]}, f)
            lua = os.path.join(tmp, f"{op}-{batch}.lua")
            with open(lua, "w") as f:
                f.write('wrk.method = "POST"\n')
                f.write('wrk.headers["Content-Type"] = "application/json"\n')
                f.write(f'local f = io.open("{body}", "rb")\nwrk.body = f:read("*a")\nf:close()\n')
            out[(op, batch)] = lua
    return out


UNIT = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def wrk(url, lua, conns, seconds):
    threads = 1 if conns == 1 else 2
    text = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{conns}", f"-d{seconds}s", "--latency", "--timeout", "30s",
         "-s", lua, url], capture_output=True, text=True, check=True).stdout
    lat = {}
    for pct, value, unit in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", text, re.M):
        lat[pct] = float(value) * UNIT[unit]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)),
        "p50_ms": lat.get("50"),
        "p99_ms": lat.get("99"),
        "non_2xx": int(bad.group(1)) if bad else 0,
        "socket_errors": sum(map(int, errors.groups())) if errors else 0,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("run")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--seconds", type=int, default=4)
    ap.add_argument("--mnist", default=os.path.join(ROOT, "..", "shared", "data", "mnist"))
    ap.add_argument("--servers", default="aekit,fastapi,aekit-unbatched",
                    help="which servers to measure (the table needs aekit and fastapi)")
    ap.add_argument("--batches", default="1,256", help="batch sizes of the aekit/fastapi cells")
    args = ap.parse_args()
    run = os.path.abspath(args.run)
    name = os.path.basename(os.path.normpath(run))
    tmp = tempfile.mkdtemp()
    scripts = payloads(run, tmp, args.mnist)
    batches = [int(b) for b in args.batches.split(",")]
    full = [(op, b, c) for op in ("encode", "decode") for b in batches for c in (1, 16, 64)]
    plan = {
        "aekit": full,
        "fastapi": full,
        "aekit-unbatched": [(op, 1, c) for op in ("encode", "decode") for c in (1, 16, 64)],
    }
    plan = {k: v for k, v in plan.items() if k in args.servers.split(",")}
    results = []
    servers = list(plan)
    for r in range(args.rounds):
        order = servers if r % 2 == 0 else servers[::-1]
        for server in order:
            port = free_port()
            proc = start(server, run, port)
            try:
                base = f"http://127.0.0.1:{port}/v1/runs/{name}"
                wrk(f"{base}/encode", scripts[("encode", 1)], 4, 1)  # warm-up
                for op, batch, conns in plan[server]:
                    m = wrk(f"{base}/{op}", scripts[(op, batch)], conns, args.seconds)
                    row = {"server": server, "round": r, "op": op, "batch": batch, "clients": conns, **m}
                    print(json.dumps(row), flush=True)
                    results.append(row)
            finally:
                proc.terminate()
                proc.wait()

    def med(server, op, batch, conns, key):
        v = [x[key] for x in results if (x["server"], x["op"], x["batch"], x["clients"]) == (server, op, batch, conns) and x[key] is not None]
        return statistics.median(v) if v else None

    print()
    print("| op | batch | clients | aekit req/s | FastAPI req/s | ratio | aekit p50 / p99 ms | FastAPI p50 / p99 ms | p99 ratio | unbatched aekit req/s | batching gain |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for op, batch, conns in full:
        a, f = med("aekit", op, batch, conns, "rps"), med("fastapi", op, batch, conns, "rps")
        if a is None or f is None:
            u = med("aekit-unbatched", op, batch, conns, "rps")
            if a is not None and u is not None:
                print(f"| {op} | {batch} | {conns} | {a:,.0f} | unbatched {u:,.0f} | batching gain {a / u:.1f}× |")
            continue
        a50, a99 = med("aekit", op, batch, conns, "p50_ms"), med("aekit", op, batch, conns, "p99_ms")
        f50, f99 = med("fastapi", op, batch, conns, "p50_ms"), med("fastapi", op, batch, conns, "p99_ms")
        u = med("aekit-unbatched", op, batch, conns, "rps")
        print(f"| {op} | {batch} | {conns} | {a:,.0f} | {f:,.0f} | {a / f:.1f}× | {a50:.2f} / {a99:.2f} | {f50:.2f} / {f99:.2f} | "
              f"{a99 / f99:.2f} | {'' if u is None else f'{u:,.0f}'} | {'' if u is None else f'{a / u:.1f}×'} |")
    bad = sum(x["non_2xx"] + x["socket_errors"] for x in results)
    print(f"\nnon-2xx answers and socket errors over all runs: {bad}")


if __name__ == "__main__":
    main()
