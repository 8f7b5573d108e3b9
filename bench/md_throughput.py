"""MD throughput of exported models: our ASE calculator side by side with fairchem's `FAIRChemCalculator` on the
same weights (each of fairchem's inference presets that runs here), the teachers on the same cells for context,
and batched prediction (structures/s through `atomforge.predict`). Our calculator also runs compiled
(`atomforge.calculator(..., compile=True)`) on the cells where fairchem's compiled presets run (--compile-cells).

NVE velocity Verlet (1 fs, 300 K start) on diamond Si cells of 64, 512 and 4096 atoms; each calculator runs one
warm-up step (compiles, first graph), then steps until --min-seconds have passed (at least --min-steps). The models
are exported conservative-force esen_xs / esen_s (2 training steps on mlearn Si: the weights' values do not change
the cost). Ours and the peer take turns per cell, so drift in the machine's speed hits both alike. Usage:
    python bench/md_throughput.py [--sizes esen_xs esen_s] [--cells 64 512 4096] [--contended] [--quick]
--quick runs the same code paths in seconds (one tiny model, an 8-atom cell): the CPU test mode.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

PRESETS = ("traineval", "batch", "high-precision", "multigpu")  # "default" is nitro: multigpu where nitro cannot run
COMPILED = {"high-precision", "multigpu"}  # torch.compile: every new cell shape recompiles, so small cells only
TINY = {"sphere_channels": 8, "hidden_channels": 8, "edge_channels": 8, "num_distance_basis": 8, "lmax": 1, "mmax": 1,
        "num_layers": 1}


def si_cell(n_atoms: int, seed: int = 0):
    from ase.build import bulk
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

    reps = {8: (1, 1, 1), 16: (2, 1, 1), 64: (2, 2, 2), 512: (4, 4, 4), 4096: (8, 8, 8)}[n_atoms]
    atoms = bulk("Si", "diamond", a=5.43, cubic=True).repeat(reps)
    atoms.rattle(0.02, seed=seed)
    MaxwellBoltzmannDistribution(atoms, temperature_K=300, rng=np.random.default_rng(seed))
    return atoms


def export_model(size: str, work: Path, quick: bool) -> Path:
    from helpers import build_dataset, train

    from atomforge.pipeline.data.dataset import BuiltDataset
    from atomforge.pipeline.export import export

    data = work / "si_data"
    if not BuiltDataset(data).is_built():
        src = {"type": "mlearn", "path": str(REPO.parent / "shared/data/mlearn/Si/training.json")}
        build_dataset(data, [src], split={"train": 0.9, "val": 0.1, "test": 0.0}, workers=1, cutoff=6.0)
    model = {"name": size, "force_mode": "conservative", **({"backbone": TINY} if quick else {})}
    run = train(work / f"run_{size}", data, steps=2, warmup_steps=1, model=model)
    return export(str(run), str(work / f"hub_{size}"))


def md_rate(calc, n_atoms: int, min_seconds: float, min_steps: int) -> dict:
    """Steps/s of NVE MD after one warm-up step; energy drift per atom over the timed steps beside it."""
    from ase import units
    from ase.md.verlet import VelocityVerlet

    atoms = si_cell(n_atoms)
    atoms.calc = calc
    dyn = VelocityVerlet(atoms, 1.0 * units.fs)
    t0 = time.perf_counter()
    dyn.run(1)
    first = time.perf_counter() - t0
    e0, steps, t0 = atoms.get_total_energy(), 0, time.perf_counter()
    while steps < min_steps or time.perf_counter() - t0 < min_seconds:
        dyn.run(1)
        steps += 1
    wall = time.perf_counter() - t0
    return {"steps": steps, "wall_s": wall, "first_step_s": first, "steps_per_s": steps / wall,
            "atom_steps_per_s": steps * n_atoms / wall,
            "drift_eV_per_atom": float(atoms.get_total_energy() - e0) / n_atoms}


def make_calc(kind: str, folder: str | None):
    """ours | ours:compiled | fairchem:<preset> | teacher:<name> -> an ASE calculator."""
    import atomforge

    what, _, arg = kind.partition(":")
    if what == "ours":
        return atomforge.calculator(folder, compile=arg == "compiled")
    if what == "fairchem":
        return peer(Path(folder), arg)
    return teacher(arg)


def isolated_rate(kind: str, folder: str | None, n: int, a) -> dict:
    """md_rate in its own process: a calculator that runs out of memory on the big cell is recorded, not fatal."""
    import subprocess

    cmd = [sys.executable, __file__, "--child", kind, "--child-folder", folder or "", "--cells", str(n),
           "--min-seconds", str(a.min_seconds), "--min-steps", str(a.min_steps), "--threads", str(a.threads)]
    p = subprocess.run(cmd, capture_output=True, text=True)
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    if p.returncode == 0 and lines:
        return json.loads(lines[-1])
    why = "killed (SIGKILL: out of memory on this machine)" if p.returncode in (-9, 137) else f"exit {p.returncode}"
    tail = (p.stderr.strip().splitlines() or [""])[-1][:200]
    return {"error": f"{why}; {tail}" if tail and p.returncode not in (-9, 137) else why}


def peer(folder: Path, preset: str):
    import atomforge

    return atomforge.fairchem_calculator(str(folder), inference_settings=preset)


def teacher(name: str):
    from atomforge.data_prep.teachers import get_teacher

    return get_teacher(name, threads=int(os.environ.get("OMP_NUM_THREADS", "0")) or os.cpu_count()).calc


def batched(folder: Path, n: int, n_atoms: int) -> dict:
    """Structures/s of atomforge.predict over n cells at once, against one calculator call per cell."""
    import atomforge

    model = atomforge.from_pretrained(str(folder))
    cells = [si_cell(n_atoms, seed=i) for i in range(n)]
    atomforge.predict(model, cells[:1])
    t0 = time.perf_counter()
    atomforge.predict(model, cells)
    many = time.perf_counter() - t0
    calc = atomforge.calculator(model)
    t0 = time.perf_counter()
    for a in cells:
        calc.reset()
        calc.get_forces(a)
    one = time.perf_counter() - t0
    return {"structures": n, "atoms_each": n_atoms, "batched_structures_per_s": n / many,
            "one_by_one_structures_per_s": n / one, "batched_over_one_by_one": one / many}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", nargs="+", default=["esen_xs", "esen_s"])
    ap.add_argument("--cells", nargs="+", type=int, default=[64, 512, 4096])
    ap.add_argument("--presets", nargs="+", default=list(PRESETS))
    ap.add_argument("--compile-cells", nargs="+", type=int, default=[64], help="cells the compiled presets run on")
    ap.add_argument("--teachers", nargs="*", default=["sevennet:7net-0", "chgnet:0.3.0"])
    ap.add_argument("--min-seconds", type=float, default=6.0)
    ap.add_argument("--min-steps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: all cores)")
    ap.add_argument("--contended", action="store_true", help="the machine is shared with other work right now")
    ap.add_argument("--quick", action="store_true", help="seconds-long run of the same code paths (CPU test mode)")
    ap.add_argument("--out", default=str(REPO / "bench/results/md_throughput.json"))
    ap.add_argument("--child", default="", help=argparse.SUPPRESS)  # one measurement in its own process
    ap.add_argument("--child-folder", default="", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        import torch

        torch.set_num_threads(a.threads or os.cpu_count())
        print(json.dumps(md_rate(make_calc(a.child, a.child_folder or None), a.cells[0], a.min_seconds, a.min_steps)))
        return
    if a.quick:
        a.sizes, a.cells, a.compile_cells, a.teachers, a.min_seconds, a.min_steps = ["esen_xs"], [8], [], [], 0.0, 2
    os.environ.setdefault("WANDB_MODE", "offline")
    import torch

    torch.set_num_threads(a.threads or os.cpu_count())
    res = {"benchmark": "md_throughput", "quick": a.quick, "contended": a.contended, "machine": {
        "platform": platform.platform(), "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "processor": platform.processor(), "torch": torch.__version__}, "sizes": {}}
    save = not a.quick or a.out != ap.get_default("out")

    def write(done: bool):  # after every cell: a run cut short keeps what it measured
        res["complete"] = done
        if save:
            Path(a.out).write_text(json.dumps(res, indent=1) + "\n")

    with tempfile.TemporaryDirectory() as tmp:
        for size in a.sizes:
            folder = export_model(size, Path(tmp), a.quick)
            row = {"cells": {}}
            for n in a.cells:
                cell = {"ours": isolated_rate("ours", str(folder), n, a), "fairchem": {}}
                if n in a.compile_cells:  # our calculator with model.compile, where fairchem's compiled presets run
                    cell["ours_compiled"] = isolated_rate("ours:compiled", str(folder), n, a)
                for p in a.presets:
                    if p in COMPILED and n not in a.compile_cells:
                        continue
                    cell["fairchem"][p] = isolated_rate(f"fairchem:{p}", str(folder), n, a)
                ok = {p: r for p, r in cell["fairchem"].items() if "steps_per_s" in r}
                ours = [cell[k]["steps_per_s"] for k in ("ours", "ours_compiled") if "steps_per_s" in cell.get(k, {})]
                if ok and ours:
                    best = max(ok, key=lambda p: ok[p]["steps_per_s"])
                    cell["fairchem_best"] = best
                    cell["ours_over_fairchem_best"] = max(ours) / ok[best]["steps_per_s"]
                row["cells"][str(n)] = cell
                res["sizes"][size] = row
                write(False)
                print(json.dumps({size: {n: {k: v for k, v in cell.items() if k != "fairchem"}}}), flush=True)
            row["batched_predict"] = batched(folder, 4 if a.quick else 16, a.cells[0])
            res["sizes"][size] = row
    res["teachers"] = {}
    for t in a.teachers:
        res["teachers"][t] = {}
        for n in a.cells:
            res["teachers"][t][str(n)] = isolated_rate(f"teacher:{t}", None, n, a)
            write(False)
    ratios = [c["ours_over_fairchem_best"] for s in res["sizes"].values() for c in s["cells"].values()
              if "ours_over_fairchem_best" in c]
    res["ours_over_fairchem_best_min"] = min(ratios) if ratios else None
    write(True)
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
