"""The machine's own weak-scaling ceiling: per-process throughput of a single-thread kernel with 2 processes
running at once over 1 process alone. `matmul` (256x256, cache-resident) measures compute; `stream` (an
8M-element axpy, 64 MiB per pass) measures memory bandwidth. A trainer whose step is partly memory-bound cannot
weak-scale better than this machine lets `stream` scale. Usage: python bench/machine_scaling.py [--seconds 5]
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import time
from statistics import median

KERNELS = {"matmul": "256x256 float32 matmul, cache-resident (compute-bound)",
           "stream": "y = 1.0001 * x + 0.5 over 8M float32 (memory-bound, 64 MiB read + 64 MiB written)"}


def _worker(kernel: str, seconds: float, barrier, queue) -> None:
    import torch

    torch.set_num_threads(1)
    if kernel == "matmul":
        a, b = torch.randn(256, 256), torch.randn(256, 256)
        op = lambda: a @ b  # noqa: E731
    else:
        x = torch.randn(8_000_000)
        op = lambda: x * 1.0001 + 0.5  # noqa: E731
    op()
    barrier.wait()  # both processes start timing together
    n, t = 0, time.perf_counter()
    while time.perf_counter() - t < seconds:
        op()
        n += 1
    queue.put(n / (time.perf_counter() - t))


def per_process_rate(kernel: str, procs: int, seconds: float) -> float:
    ctx = mp.get_context("spawn")
    barrier, queue = ctx.Barrier(procs), ctx.Queue()
    ps = [ctx.Process(target=_worker, args=(kernel, seconds, barrier, queue)) for _ in range(procs)]
    for p in ps:
        p.start()
    rates = [queue.get(timeout=120 + seconds) for _ in ps]
    for p in ps:
        p.join()
    return sum(rates) / procs


def machine_scaling(seconds: float = 5.0, repeats: int = 3) -> dict:
    """Median per-process rates at 1 and 2 processes (alternating, `repeats` times) and their ratio per kernel."""
    out = {}
    for kernel, what in KERNELS.items():
        one, two = [], []
        for _ in range(repeats):
            one.append(per_process_rate(kernel, 1, seconds))
            two.append(per_process_rate(kernel, 2, seconds))
        out[kernel] = {"what": what, "per_process_ops_per_s_1": median(one), "per_process_ops_per_s_2": median(two),
                       "efficiency": median(two) / median(one), "repeats_1": one, "repeats_2": two}
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    print(json.dumps(machine_scaling(a.seconds, a.repeats)))
