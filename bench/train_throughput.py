"""Training throughput (atoms/s) of our DeepSpeed trainer, and weak scaling: per-rank atoms/s at 2 ranks over 1 rank.

Prints one JSON object and writes bench/results/train_throughput.json. Usage:
    python bench/train_throughput.py [--sizes esen_xs esen_s] [--steps 12] [--max-atoms 128] [--contended]
The side-by-side against fairchem's own trainer (`fairchem -c`, same backbone, aselmdb of the same structures)
is not wired yet: `vs_fairchem_ratio` is null until it is.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path
from statistics import median

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))


def atoms_per_s(run_dir: Path, skip: int) -> float:
    rows = [json.loads(l) for l in (run_dir / "metrics.jsonl").read_text().splitlines() if l]
    return median(r["atoms_per_s"] for r in rows if "atoms_per_s" in r and r["step"] > skip)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", nargs="+", default=["esen_xs", "esen_s"])
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--max-atoms", type=int, default=128)
    ap.add_argument("--contended", action="store_true", help="the machine is shared with other work right now")
    a = ap.parse_args()
    os.environ.setdefault("WANDB_MODE", "offline")
    from conftest import SMALL_EMT, build_dataset, train

    tmp = Path(tempfile.mkdtemp(prefix="bench-train-"))
    data = build_dataset(tmp / "emt", [SMALL_EMT], workers=1)
    out = {"bench": "train_throughput", "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
           "processor": platform.processor()}, "contended": a.contended, "steps": a.steps, "max_atoms_per_rank": a.max_atoms,
           "vs_fairchem_ratio": None, "peer": "fairchem -c (not run: comparison not wired yet)", "sizes": {}}
    effs = []
    for size in a.sizes:
        per = {}
        for world in (1, 2):
            rd = train(tmp / f"{size}-{world}", data, world_size=world, steps=a.steps, max_atoms=a.max_atoms,
                       model={"name": size}, deepspeed={"stage": 2 if world > 1 else 0}, ckpt_every=0)
            per[world] = atoms_per_s(rd, skip=2)
        eff = (per[2] / 2) / per[1]
        effs.append(eff)
        out["sizes"][size] = {"atoms_per_s_1rank": per[1], "atoms_per_s_2ranks": per[2], "weak_scaling_efficiency": eff}
    out["weak_scaling_efficiency"] = min(effs)
    res = REPO / "bench" / "results" / "train_throughput.json"
    res.write_text(json.dumps(out, indent=1))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
