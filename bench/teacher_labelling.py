"""Teacher labelling rate of the teacher source: atoms/s per worker (one torch thread), one structure per teacher
call and batched, per structure kind, for each teacher.

    python bench/teacher_labelling.py [--teachers emt sevennet:7net-0 chgnet:0.3.0] [--per-kind 8] [--batch-atoms 0 256]

Prints one JSON object and writes it to bench/results/teacher_labelling.json. `static` is the rate over the
single-point kinds; `md` counts stored frames (each costs md_steps_between teacher steps).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("OMP_NUM_THREADS", "1")


def rate(teacher: str, per_kind: int, batch_atoms: int, seed: int) -> dict:
    from atomforge.data_prep.sources import make_source
    from atomforge.data_prep.sources.teacher import KINDS
    from atomforge.data_prep.structure import ReadError

    src = make_source({"type": "teacher", "teacher": teacher, "per_kind": {k: per_kind for k in KINDS},
                       "structures_per_task": per_kind, "batch_atoms": batch_atoms, "seed": seed})
    src._teacher()  # the model loads once per worker: not part of the rate
    out = {}
    for task in src.tasks():
        t0, atoms, n = time.perf_counter(), 0, 0
        for s in src.read(task):
            if not isinstance(s, ReadError):
                atoms, n = atoms + s.n_atoms, n + 1
        out[task.kind] = {"structures": n, "atoms": atoms, "seconds": round(time.perf_counter() - t0, 3)}
    for v in out.values():
        v["atoms_per_s"] = round(v["atoms"] / max(v["seconds"], 1e-9), 1)
    static = [v for k, v in out.items() if k != "md"]
    out["static_atoms_per_s"] = round(sum(v["atoms"] for v in static) / sum(v["seconds"] for v in static), 1)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--teachers", nargs="+", default=["emt", "sevennet:7net-0", "chgnet:0.3.0"])
    ap.add_argument("--per-kind", type=int, default=8)
    ap.add_argument("--batch-atoms", type=int, nargs="+", default=[0, 256])
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    res = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
           "load_avg_1min": os.getloadavg()[0], "threads_per_worker": 1, "teachers": {}}
    for t in a.teachers:
        res["teachers"][t] = {f"batch_atoms={b}": rate(t, a.per_kind, b, a.seed) for b in a.batch_atoms}
    res["load_avg_1min_after"] = os.getloadavg()[0]
    text = json.dumps(res, indent=1)
    print(text)
    (REPO / "bench" / "results").mkdir(exist_ok=True)
    (REPO / "bench" / "results" / "teacher_labelling.json").write_text(text)


if __name__ == "__main__":
    main()
