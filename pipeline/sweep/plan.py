"""`atomforge sweep plan`: every run of the grid with its steps, atoms seen, training FLOPs and wall time."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from atomforge.pipeline.compose import compose, plain
from atomforge.pipeline.data.dataset import BuiltDataset
from atomforge.pipeline.data.plan import pack
from atomforge.pipeline.sweep.flops import flops_table
from atomforge.pipeline.sweep.spec import SweepSpec


def data_stats(data_root: str, max_atoms: int, mean_atoms: float) -> dict:
    """Atoms per structure and per packed batch, from the built dataset's manifest when there is one."""
    ds = BuiltDataset(data_root)
    if ds.manifest_path.is_file() and mean_atoms <= 0:  # an explicit mean_atoms (a dataset not on this machine) wins
        samples = [s for ss in ds.index("train").values() for s in ss]
        batches = pack(samples, max_atoms)
        return {"mean_atoms": float(np.mean([s.n_atoms for s in samples])), "train_structures": len(samples),
                "atoms_per_batch": float(np.mean([sum(s.n_atoms for s in b) for b in batches])),
                "from": str(ds.manifest_path)}
    if mean_atoms <= 0:
        raise ValueError(f"no built dataset at {data_root} and the sweep sets no mean_atoms: build the data or set "
                         "sweep.mean_atoms")
    return {"mean_atoms": float(mean_atoms), "train_structures": None,
            "atoms_per_batch": float(max(max_atoms - mean_atoms / 2, mean_atoms)), "from": "sweep.mean_atoms"}


def downstream_target(spec: SweepSpec) -> dict | None:
    """The downstream dataset's built root and split, from its configs/data entry (composed here, outside any job)."""
    if not spec.downstream:
        return None
    ds = dict(spec.downstream)
    if set(ds) - {"data", "split", "root"} or not (ds.get("data") or ds.get("root")):
        raise ValueError(f"sweep.downstream takes {{data: <configs/data entry>, split}} (or root), "
                         f"got {spec.downstream}")
    if not ds.get("root"):
        ds["root"] = plain(compose([f"data={ds['data']}"]))["data"]["root"]
    return {"data": ds.get("data"), "root": str(ds["root"]), "split": ds.get("split", "test")}


def make_plan(cfg: dict, spec: SweepSpec, preview: bool = False) -> dict:
    train = {**cfg["train"], **spec.train}
    max_atoms, accum = int(train["max_atoms"]), int(train.get("grad_accum", 1))
    stats = data_stats(cfg["data"]["root"], max_atoms, spec.mean_atoms)
    root = cfg["data"]["root"] if stats["train_structures"] else None
    table = flops_table(spec.sizes, root, max_atoms, spec.flops_max_params, Path(spec.out) / "flops.json")
    sw = (cfg.get("cluster") or {}).get("sweep") or {}
    devices = int(sw.get("devices_per_run", 1)) or 1
    peak = float(sw.get("flops_per_s", 0) or 0)  # sustained FLOP/s per device; 0: use this machine's measured speed
    startup = float(sw.get("startup_s", 0) or 0)
    atoms_per_step = spec.world_size * accum * stats["atoms_per_batch"]
    rows = []
    for run in spec.runs(spec.default_lr(cfg), preview):
        d_atoms = run.budget * (stats["mean_atoms"] if spec.unit == "structures" else 1.0)
        steps = max(1, math.ceil(d_atoms / atoms_per_step))
        atoms = steps * atoms_per_step
        f = table[run.size.name]
        flops = f["flops_per_atom"] * atoms
        if peak > 0:
            wall = flops / (peak * devices) + startup
        elif f.get("seconds_per_atom"):
            wall = f["seconds_per_atom"] * atoms / max(spec.world_size, 1) + startup
        else:
            wall = float("nan")
        rows.append({"run": run.name, "size": run.size.name, "params": f["params"],
                     "params_nonembed": f["params_nonembed"], "budget": run.budget, "unit": spec.unit, "lr": run.lr,
                     "seed": run.seed, "role": run.role, "steps": steps, "atoms": atoms,
                     "structures": atoms / stats["mean_atoms"], "flops_per_atom": f["flops_per_atom"],
                     "flops_measured": bool(f.get("measured")), "flops": flops, "wall_s": wall})
    return {"sweep": spec.name, "out": spec.out, "data": stats, "flops_batch": table["_batch"],
            "atoms_per_step": atoms_per_step, "lr_scan": spec.lr_scan or None,
            "lr_chosen": spec.chosen_lrs() if spec.lr_scan else None, "downstream": downstream_target(spec),
            "runs": rows, "total_flops": sum(r["flops"] for r in rows),
            "total_wall_s": float(np.nansum([r["wall_s"] for r in rows]))}


def print_plan(plan: dict):
    d = plan["data"]
    print(f"sweep {plan['sweep']} -> {plan['out']}")
    print(f"data: {d['mean_atoms']:.1f} atoms/structure, {plan['atoms_per_step']:.0f} atoms/step ({d['from']}); "
          f"FLOPs/atom counted on {plan['flops_batch']}")
    print(f"{'run':34s} {'params':>14s} {'steps':>10s} {'structures':>12s} {'atoms':>12s} {'FLOPs':>10s} {'wall':>10s}")
    for r in plan["runs"]:
        mark = "" if r["flops_measured"] else "*"
        print(f"{r['run']:34s} {r['params']:>14,d} {r['steps']:>10,d} {r['structures']:>12.3g} {r['atoms']:>12.3g} "
              f"{r['flops']:>9.3g}{mark} {_dur(r['wall_s']):>10s}")
    print(f"total: {len(plan['runs'])} runs, {plan['total_flops']:.3g} FLOPs, {_dur(plan['total_wall_s'])} "
          f"(* FLOPs/atom extrapolated from the measured sizes)")


def _dur(s: float) -> str:
    if s != s:
        return "?"
    if s < 120:
        return f"{s:.0f}s"
    if s < 7200:
        return f"{s / 60:.1f}min"
    if s < 172800:
        return f"{s / 3600:.1f}h"
    return f"{s / 86400:.1f}d"
