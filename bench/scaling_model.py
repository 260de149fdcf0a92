"""The step-time model of SCALING.md, printed as its tables: `python3 bench/scaling_model.py`.

t_step(N) = compute(rows per machine) + pack(S) + exchange(N, S)
  ring allreduce:      2 (N-1) alpha + 2 (N-1)/N * S / b
  ordered all-gather:    (N-1) alpha +   (N-1)   * S / b   (aekit's default: exact sums)
Measured on this 2-core machine (BENCHMARKS.md, "More than one machine"): workload A's compute
per row, S = 11.35 MB per step, packing and summing 6.6 ms per 11.35 MB; the two-rank
all-gather through shared memory at 1.5 GB/s.
"""

WORKLOADS = {
    # name: (bytes per step, compute ms per row on one 2-core machine at >= 1,024 rows,
    #        the same at 256 rows, rows per step in the reference)
    "A (dense, 2.84 M parameters)": (11.35e6, 94.8 / 1024, 28.3 / 256),
    "B (Keras conv, 4,385 parameters)": (17.5e3, 32.1 / 128, 32.1 / 128),
}
PACK_MS_PER_BYTE = 6.6 / 11.35e6
LINKS = {"10 Gb/s": (10e9 / 8, 25e-6), "100 Gb/s": (100e9 / 8, 5e-6)}


def step_ms(n, rows_per_machine, size, per_row_big, per_row_small, link, ring=True):
    bandwidth, alpha = LINKS[link]
    per_row = per_row_big if rows_per_machine >= 1024 else per_row_small
    compute = rows_per_machine * per_row
    if n == 1:
        return compute
    if ring:
        net = 2 * (n - 1) * alpha + 2 * (n - 1) / n * size / bandwidth
    else:
        net = (n - 1) * alpha + (n - 1) * size / bandwidth
    return compute + size * PACK_MS_PER_BYTE + net * 1e3


def table(title, rows_of, ring=True):
    print(f"\n{title}\n")
    print("| workload | link | N | rows/machine | step ms | of which exchange ms | speed-up over 1 machine | efficiency |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, (size, big, small) in WORKLOADS.items():
        for link in LINKS:
            one = step_ms(1, rows_of(1), size, big, small, link)
            for n in (8, 64, 512):
                rows = rows_of(n)
                t = step_ms(n, rows, size, big, small, link, ring)
                compute = step_ms(1, rows, size, big, small, link)
                speedup = (one / rows_of(1)) / (t / (rows * n))
                print(
                    f"| {name} | {link} | {n} | {rows:g} | {t:.1f} | {t - compute:.1f} | "
                    f"{speedup:.1f} | {speedup / n:.0%} |"
                )


table("Weak scaling: 256 rows per machine per step (global batch 256 N), ring allreduce", lambda n: 256)
table("Weak scaling, aekit's ordered all-gather (exact sums, the default) instead", lambda n: 256, ring=False)
table("Strong scaling: a global batch of 4,096 rows split over the machines, ring allreduce", lambda n: 4096 / n)
