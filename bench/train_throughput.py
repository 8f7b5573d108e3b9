"""Training throughput (atoms/s) of our DeepSpeed trainer side by side with fairchem's own trainer, weak scaling
(per-rank atoms/s at 2 ranks over 1 rank) beside the machine's own 2-process scaling (bench/machine_scaling.py),
and where our step's time goes.

For each variant, size and 1 and 2 ranks, in one run: ours (ZeRO-0 at 1 rank, ZeRO-2 at 2, webdataset shards) and
the peer (`fairchem -c`: TrainEvalRunner + MLIPTrainEvalUnit, DDP over gloo, the same structures as an aselmdb, the
same escn_md backbone, the same per-rank max-atoms batches; see bench/fairchem_peer.py). Variants: `direct` (direct
force heads, both eager), `compiled` (ours with model.compile=true against the same peer run: fairchem's trainer
does not compile), `conservative` (forces = -dE/dx, trained through the double backward; the peer's MLP_EFS_Head).
Prints one JSON object and writes bench/results/train_throughput.json. Usage:
    python bench/train_throughput.py [--variants direct compiled conservative] [--sizes esen_xs esen_s] [--steps 10]
        [--repeats 3] [--max-atoms 128] [--contended]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path
from math import exp, log
from statistics import median

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "bench"))

SECTIONS = ("loader", "forward", "backward", "optimizer", "comm")
# ours' model overrides, extra warm-up steps (compilation happens in the first steps), the peer's force mode
VARIANTS = {"direct": ({}, 0, False), "compiled": ({"compile": True}, 3, False),
            "conservative": ({"force_mode": "conservative"}, 0, True)}


def step_rows(run_dir: Path, skip: int) -> list[dict]:
    from atomforge.pipeline.train.run_dir import RunDir

    return [r for r in RunDir(run_dir).rows() if "atoms_per_s" in r and r["step"] > skip]


def breakdown(rows: list[dict]) -> dict:
    """Median seconds per section of rank 0's step; communication is a part of backward + optimizer."""
    out = {k: median(r[f"time_{k}_s"] for r in rows) for k in SECTIONS}
    out["step"] = median(r["step_time_s"] for r in rows)
    out["share_of_step"] = {k: out[k] / out["step"] for k in SECTIONS}
    return out


def paired(ours: list, peer: list) -> float | None:
    """Median over rounds of ours over the peer run beside it: drift between rounds cancels."""
    pairs = [o / p for o, p in zip(ours, peer)]
    return median(pairs) if pairs and len(pairs) == len(ours) else None


def measure_size(size: str, variants: list[str], a, tmp: Path, data: Path, db: Path, card: dict, errors: list) -> dict:
    """Every variant of one size at 1 and 2 ranks, ours and the peer taking turns round by round, so drift in a
    shared VM's speed hits every figure alike; each figure is the median over rounds."""
    from fairchem_peer import fairchem_config, run_fairchem
    from helpers import train

    ours = {(v, w): [] for v in variants for w in (1, 2)}
    rows = {(v, w): [] for v in variants for w in (1, 2)}
    peer: dict = {}
    for rep in range(a.repeats):
        for world in (1, 2):
            for v in variants:
                model, warm, conservative = VARIANTS[v]
                rd = train(tmp / f"{v}-{size}-{world}-{rep}", data, world_size=world, steps=a.steps + warm,
                           max_atoms=a.max_atoms, model={"name": size, **model},
                           deepspeed={"stage": 2 if world > 1 else 0}, ckpt_every=0, profile=True, final_predictions=0)
                r = step_rows(rd, a.skip + warm)
                rows[(v, world)] += r
                ours[(v, world)].append(median(x["atoms_per_s"] for x in r))
                if (conservative, world, rep) in peer:
                    continue  # `compiled` pairs with the `direct` peer run of the same round
                fc_dir = tmp / f"fc-{'cons' if conservative else 'direct'}-{size}-{world}-{rep}"
                fc = run_fairchem(fairchem_config(size, db, fc_dir, world, a.max_atoms, a.steps, card,
                                                  conservative=conservative), fc_dir, a.skip)
                peer[(conservative, world, rep)] = fc.get("atoms_per_s")
                if "error" in fc:
                    errors.append(f"{v} {size} {world} rank(s): {fc['error']}")
    out = {}
    for v in variants:
        conservative, rec = VARIANTS[v][2], {"time_breakdown": {}}
        for world in (1, 2):
            mine = ours[(v, world)]
            theirs = [peer[(conservative, world, rep)] for rep in range(a.repeats)
                      if peer.get((conservative, world, rep))]
            rec[f"atoms_per_s_{world}rank_repeats"], rec[f"fairchem_atoms_per_s_{world}rank_repeats"] = mine, theirs
            rec[f"atoms_per_s_{world}rank{'s' if world > 1 else ''}"] = median(mine)
            rec[f"fairchem_atoms_per_s_{world}rank{'s' if world > 1 else ''}"] = median(theirs) if theirs else None
            rec[f"vs_fairchem_ratio_{world}rank"] = median(mine) / median(theirs) if theirs else None
            rec[f"vs_fairchem_ratio_{world}rank_paired"] = paired(mine, theirs)
            rec["time_breakdown"][f"{world}rank"] = breakdown(rows[(v, world)])
        rec["weak_scaling_efficiency"] = (rec["atoms_per_s_2ranks"] / 2) / rec["atoms_per_s_1rank"]
        f1, f2 = rec["fairchem_atoms_per_s_1rank"], rec["fairchem_atoms_per_s_2ranks"]
        rec["fairchem_weak_scaling_efficiency"] = (f2 / 2) / f1 if f1 and f2 else None
        out[v] = rec
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--sizes", nargs="+", default=["esen_xs", "esen_s"])
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--skip", type=int, default=2, help="warm-up steps left out of the medians")
    ap.add_argument("--max-atoms", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=3,
                    help="alternating ours/peer runs per size and rank count (medians)")
    ap.add_argument("--ceiling-seconds", type=float, default=5.0, help="seconds per machine-scaling kernel run")
    ap.add_argument("--contended", action="store_true", help="the machine is shared with other work right now")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "train_throughput.json")
    a = ap.parse_args()
    os.environ.setdefault("WANDB_MODE", "offline")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from data_throughput import write_aselmdb
    from machine_scaling import machine_scaling
    from helpers import SMALL_EMT, build_dataset

    import fairchem.core
    import torch

    from atomforge.pipeline.data.dataset import BuiltDataset

    tmp = Path(tempfile.mkdtemp(prefix="bench-train-"))
    data = build_dataset(tmp / "emt", [SMALL_EMT], workers=1)
    card = BuiltDataset(data).card
    db = tmp / "train.aselmdb"
    write_aselmdb(data, db)
    out = {"bench": "train_throughput", "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
           "processor": platform.processor(), "device": "cpu", "torch": torch.__version__,
           "omp_threads_per_rank": int(os.environ["OMP_NUM_THREADS"]),
           "note": "contended 2-core CPU shared with other work" if a.contended else "dedicated"},
           "contended": a.contended, "repeats": a.repeats, "steps": a.steps, "skip_steps": a.skip,
           "max_atoms_per_rank": a.max_atoms, "variants_run": a.variants,
           "variant_definitions": {
               "direct": "direct force heads, eager, ours and the peer",
               "compiled": f"ours with model.compile=true (inductor, dynamic shapes; {VARIANTS['compiled'][1]} extra "
                           "warm-up steps left out for compilation) against the direct peer run of the same round "
                           "(fairchem's trainer has no compile option)",
               "conservative": "forces = -dE/dx, loss through the double backward; ours eager (torch.compile does "
                               "not trace a double backward: model.compile=true trains eager here with a warning), "
                               "the peer with one MLP_EFS_Head"},
           "peer": {"trainer": "fairchem -c (TrainEvalRunner + MLIPTrainEvalUnit, DDP over gloo)",
                    "fairchem_core": getattr(fairchem.core, "__version__", "?"),
                    "data": "same train structures as an aselmdb",
                    "batches": "MaxAtomDistributedBatchSampler, same max_atoms per rank",
                    "loss": "per-atom energy MAE x5 + force L2 x10 (ours too)",
                    "atoms_per_s": "fairchem's train/atoms_per_second(approx): rank-0 atoms x world / step wall time"},
           "variants": {v: {"sizes": {}} for v in a.variants}}
    # the ceiling first: how well this machine lets two single-thread processes scale at all
    out["machine_scaling"] = machine_scaling(a.ceiling_seconds, a.repeats)
    errors: list = []
    for size in a.sizes:
        for v, rec in measure_size(size, a.variants, a, tmp, data, db, card, errors).items():
            out["variants"][v]["sizes"][size] = rec
            a.out.write_text(json.dumps(out, indent=1))  # partial results survive a stop
    for res in out["variants"].values():
        # headline: 2 ranks each (the distributed setup), paired median; overall = geometric mean over sizes
        ratios = {s: r["vs_fairchem_ratio_2rank_paired"] for s, r in res["sizes"].items()
                  if r["vs_fairchem_ratio_2rank_paired"]}
        res["vs_fairchem_ratio"] = ({**ratios, "overall": exp(sum(log(r) for r in ratios.values()) / len(ratios))}
                                    if ratios else None)
        res["weak_scaling_efficiency"] = min(r["weak_scaling_efficiency"] for r in res["sizes"].values())
        peer_eff = [r["fairchem_weak_scaling_efficiency"] for r in res["sizes"].values()
                    if r["fairchem_weak_scaling_efficiency"]]
        res["fairchem_weak_scaling_efficiency"] = min(peer_eff) if peer_eff else None
    if errors:
        out["peer"]["errors"] = errors
    out["weak_scaling_over_machine_stream_ceiling"] = {
        v: r["weak_scaling_efficiency"] / out["machine_scaling"]["stream"]["efficiency"]
        for v, r in out["variants"].items()}
    a.out.write_text(json.dumps(out, indent=1))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
