"""Tables from the JSON lines of bench/run.sh: aekit against PyTorch's best configuration and
against its own arithmetic limit per workload, then the small-batch latencies.
Usage: python3 bench/report.py LOG"""

import json
import statistics
import sys


def load(path):
    runs = []
    for line in open(path):
        if line.startswith("{"):
            run = json.loads(line)
            w = run["workload"]
            run["workload"] = "latency" if w.lower() == "latency" else w.upper()
            runs.append(run)
    return runs


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(v, spec, width):
    return format(v, spec).rjust(width) if v is not None else "-".rjust(width)


def throughput_table(runs):
    workloads = [w for w in ("A", "B", "C")
                 if any(r["workload"] == w and not r["impl"].startswith("gemm-limit") for r in runs)]
    print("| workload | aekit samples/s | PyTorch best (config) | ratio vs best | every PyTorch config "
          "| products alone | aekit / limit | peak RSS aekit / PyTorch (least) | RSS ratio "
          "| first step aekit / PyTorch (least) | ratio |")
    print("| --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for w in workloads:
        mine = [r for r in runs if r["impl"] == "aekit" and r["workload"] == w]
        a = median(r["samples_per_sec"] for r in mine)
        rss = median(r["peak_rss_mib"] for r in mine)
        first = median(r.get("first_step_s") for r in mine)
        peers = {}
        for r in runs:
            if r["impl"] == "pytorch" and r["workload"] == w and not r.get("failed"):
                peers.setdefault(r["config"], []).append(r)
        medians = {c: median(r["samples_per_sec"] for r in rs) for c, rs in peers.items()}
        best = max(medians, key=medians.get) if medians else None
        t = medians.get(best)
        # Memory and start-up against the leanest configuration, whichever it is.
        peer_rss = min((median(r["peak_rss_mib"] for r in rs) for rs in peers.values()), default=None)
        peer_first = min(
            (v for v in (median(r.get("first_step_s") for r in rs) for rs in peers.values()) if v),
            default=None,
        )
        limit = median(r["samples_per_sec"] for r in runs if r["impl"] == "gemm-limit" and r["workload"] == w)
        every = ", ".join(f"{c} {medians[c]:,.0f}" for c in peers)
        ratio = a / t if a and t else None
        print(f"| {w} | {fmt(a, ',.0f', 0)} | {fmt(t, ',.0f', 0)} ({best}) | **{fmt(ratio, '.2f', 0)}** | {every} "
              f"| {fmt(limit, ',.0f', 0)} | {fmt(a / limit if a and limit else None, '.2f', 0)} "
              f"| {fmt(rss, '.0f', 0)} / {fmt(peer_rss, '.0f', 0)} MiB | {fmt(rss / peer_rss if rss and peer_rss else None, '.2f', 0)} "
              f"| {fmt(first, '.2f', 0)} / {fmt(peer_first, '.2f', 0)} s "
              f"| {fmt(first / peer_first if first and peer_first else None, '.2f', 0)} |")
    for w in workloads:
        per_round = [(r["samples_per_sec"]) for r in runs if r["impl"] == "aekit" and r["workload"] == w]
        print(f"{w}: aekit per round {', '.join(f'{v:,.0f}' for v in per_round)}")


def latency_table(runs):
    mine = [r["latency"] for r in runs if r["impl"] == "aekit" and r["workload"] == "latency"]
    theirs = [r["latency"] for r in runs if r["impl"] == "pytorch" and r["workload"] == "latency" and "latency" in r]
    if not mine:
        return
    print()
    print("| batch | op | aekit p50 / p99 µs | PyTorch eager p50 / p99 µs | p50 ratio aekit / PyTorch |")
    print("| ---: | --- | ---: | ---: | ---: |")
    for batch in mine[0]:
        for op in ("encode", "decode"):
            a50 = median(m[batch][f"{op}_p50_us"] for m in mine)
            a99 = median(m[batch][f"{op}_p99_us"] for m in mine)
            t50 = median(t[batch][f"{op}_p50_us"] for t in theirs) if theirs else None
            t99 = median(t[batch][f"{op}_p99_us"] for t in theirs) if theirs else None
            ratio = a50 / t50 if t50 else None
            print(f"| {batch} | {op} | {a50:.1f} / {a99:.1f} | {fmt(t50, '.1f', 0)} / {fmt(t99, '.1f', 0)} "
                  f"| **{fmt(ratio, '.2f', 0)}** |")
    floors = [r for r in runs if r["impl"] == "read-limit"]
    if floors:
        one = median(r["read_us_one_core"] for r in floors)
        pool = median(r["read_us_pool"] for r in floors)
        print(f"\nReading the encoder's {floors[0]['encoder_weight_mib']:.1f} MiB of weights once: "
              f"{one:.1f} µs on one core, {pool:.1f} µs split over {floors[0]['threads']} threads "
              "(the floor of a batch-1 encode; best of 2,000 reads).")


def main():
    runs = load(sys.argv[1])
    throughput_table(runs)
    latency_table(runs)


if __name__ == "__main__":
    main()
