"""The prepared GPU check (run through bench/gpu_check.sh): one JSON with, on one GPU,
- training atoms/s of two ladder sizes in fp32 and bf16 (torch.autocast), eager and compiled (model.compile:
  torch.compile of backbone + heads, dynamic shapes), direct forces, one fixed diamond-Si batch, AdamW steps;
- model FLOP utilisation: FlopCounterMode's FLOPs of one training step over its time, against the chip's dense
  bf16 peak;
- peak memory of each cell against `atomforge plan`'s prediction (ZeRO-0, one rank, the same atoms per batch);
- NVE MD steps/s of our calculator (eager and compiled) against fairchem's FAIRChemCalculator on the same weights.
The JSON is rewritten after every cell and a time budget skips what would not fit (each skip says so), so the
script ends inside 8 minutes with what it measured. Usage:
    python bench/gpu_check.py [--out F] [--budget-s 420] [--quick]
--quick runs the same code paths on CPU in seconds (a tiny backbone, 16-atom cells, compile with the "eager"
backend: the same dynamo graphs without kernel generation): the mode the test suite runs.
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
import torch
from torch.utils.flop_counter import FlopCounterMode

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))

from md_throughput import TINY, md_rate, si_cell  # noqa: E402

from atomforge.data_prep.structure import Structure  # noqa: E402
from atomforge.pipeline.data.convert import structures_to_batch  # noqa: E402
from atomforge.pipeline.models.calculator import AtomforgeCalculator  # noqa: E402
from atomforge.pipeline.models.config import ModelConfig  # noqa: E402
from atomforge.pipeline.models.potential import build_model  # noqa: E402
from atomforge.pipeline.train.losses import loss_terms  # noqa: E402
from atomforge.pipeline.train.memory_plan import plan  # noqa: E402

# dense bf16 tensor-core peak per chip (vendor data sheets, SXM parts), FLOP/s
PEAK_BF16 = {"H200": 989.4e12, "H100": 989.4e12, "GH200": 989.4e12, "A100": 312e12, "L40S": 362.05e12}
REFS = {"14": -5.42}  # Si; the values do not change the cost


def peak_flops(name: str) -> float | None:
    return next((v for k, v in PEAK_BF16.items() if k in name), None)


def si_batch(n_atoms: int, device: torch.device):
    atoms = si_cell(n_atoms)
    s = Structure.from_atoms(atoms, energy=-5.42 * n_atoms, forces=np.zeros((n_atoms, 3)))
    return structures_to_batch([s]).to(device)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def train_cell(size: str, backbone: dict, dtype: str, compiled: bool, n_atoms: int, steps: int,
               device: torch.device, backend: str) -> dict:
    """Atoms/s of training steps (forward, loss, backward, AdamW) on one batch; FLOPs counted on an eager step."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(name=size, backbone=backbone), REFS).to(device)
    batch = si_batch(n_atoms, device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=dtype == "bf16"):
            pred = model(batch)
            terms = loss_terms(pred, batch, model.reference_energy(batch), 1.0)
            loss = terms["energy"] + terms["forces"]
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    counter = FlopCounterMode(display=False)
    with counter:
        step()
    flops = counter.get_total_flops()
    if compiled:
        model.compile_network(training=True, backend=backend)
    sync(device)
    t0 = time.perf_counter()
    step()  # compiles (a compiled cell), or warms the allocator
    sync(device)
    first = time.perf_counter() - t0
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    sec = (time.perf_counter() - t0) / steps
    peak = torch.cuda.max_memory_allocated() if device.type == "cuda" else None
    predicted = plan(size, world=1, max_atoms=n_atoms)[0]["total"]
    chip = peak_flops(torch.cuda.get_device_name(0)) if device.type == "cuda" else None
    return {"size": size, "dtype": dtype, "compiled": model.compiled, "compile_requested": compiled,
            "atoms": n_atoms, "steps": steps, "step_s": sec, "first_step_s": first, "atoms_per_s": n_atoms / sec,
            "flops_per_step": flops, "achieved_flops": flops / sec,
            "mfu_vs_bf16_peak": flops / sec / chip if chip else None,
            "peak_memory_bytes": peak, "predicted_memory_bytes": predicted,
            "memory_measured_over_predicted": peak / predicted if peak else None}


def md_cells(size: str, backbone: dict, n_atoms: int, device: torch.device, presets: list[str], backend: str,
             min_seconds: float, min_steps: int, work: Path) -> dict:
    """MD steps/s: our calculator eager and compiled, fairchem's calculator per preset, on the same weights."""
    from fairchem.core.calculate.ase_calculator import FAIRChemCalculator
    from fairchem.core.units.mlip_unit import load_predict_unit

    from atomforge.pipeline.export.fairchem_ckpt import write_inference_checkpoint

    torch.manual_seed(0)
    model = build_model(ModelConfig(name=size, force_mode="conservative", backbone=backbone), REFS)
    ckpt = write_inference_checkpoint(model, work / f"{size}.pt")
    dev = device.type
    out = {"size": size, "atoms": n_atoms, "ours": md_rate(AtomforgeCalculator(model, dev), n_atoms, min_seconds,
                                                           min_steps)}
    twin = build_model(ModelConfig(name=size, force_mode="conservative", backbone=backbone), REFS)
    twin.load_state_dict(model.state_dict())
    twin.to(dev).eval().compile_network(training=False, backend=backend)
    out["ours_compiled"] = md_rate(AtomforgeCalculator(twin, dev), n_atoms, min_seconds, min_steps)
    out["fairchem"] = {}
    for p in presets:
        try:
            unit = load_predict_unit(str(ckpt), device=dev, inference_settings=p)
            out["fairchem"][p] = md_rate(FAIRChemCalculator(unit, task_name="omat"), n_atoms, min_seconds, min_steps)
        except Exception as e:  # a preset this machine cannot run is recorded, not fatal
            out["fairchem"][p] = {"error": f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"}
    ok = {p: r["steps_per_s"] for p, r in out["fairchem"].items() if "steps_per_s" in r}
    if ok:
        best = max(ok, key=ok.get)
        ours = max(out["ours"]["steps_per_s"], out["ours_compiled"]["steps_per_s"])
        out.update(fairchem_best=best, ours_best_over_fairchem_best=ours / ok[best])
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="")
    ap.add_argument("--budget-s", type=float, default=420.0, help="skip cells that would start after this")
    ap.add_argument("--quick", action="store_true", help="CPU, seconds: the same code paths (test mode)")
    a = ap.parse_args()
    cuda = torch.cuda.is_available() and not a.quick
    device = torch.device("cuda" if cuda else "cpu")
    if a.quick:
        sizes, backbone, atoms, md_atoms, steps, backend = ["esen_xs", "esen_s"], TINY, 16, 16, 2, "eager"
        presets, min_s, min_steps = ["traineval"], 0.0, 2
    else:
        sizes, backbone, atoms, md_atoms, steps, backend = ["esen_s", "esen_m"], {}, 4096, 512, 10, "inductor"
        presets, min_s, min_steps = ["traineval", "default"], 5.0, 10
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = False  # fp32 cells are fp32
    name = torch.cuda.get_device_name(0) if cuda else platform.processor() or "cpu"
    res = {"benchmark": "gpu_check", "quick": a.quick, "device": name, "cuda": cuda,
           "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch": torch.__version__,
                       "cuda_version": torch.version.cuda},
           "peak_bf16_flops": peak_flops(name) if cuda else None, "train": [], "md": [], "skipped": []}
    out = Path(a.out) if a.out else REPO / "bench/results" / f"gpu_check-{name.replace(' ', '_')}.json"
    t_start = time.perf_counter()

    def write(done: bool):
        res["complete"], res["wall_s"] = done, time.perf_counter() - t_start
        out.write_text(json.dumps(res, indent=1) + "\n")

    def in_budget(what: str) -> bool:
        if time.perf_counter() - t_start < a.budget_s:
            return True
        res["skipped"].append(f"{what}: past the {a.budget_s:.0f} s budget")
        return False

    # eager cells first, then MD, then the compiled cells (each compile costs a minute or more on a GPU)
    cells = [(s, d, False) for s in sizes for d in ("fp32", "bf16")]
    for s, d, c in cells + [("md", None, None)] + [(s, d, True) for s in sizes for d in ("fp32", "bf16")]:
        if s == "md":
            if in_budget(f"md {sizes[0]}"):
                with tempfile.TemporaryDirectory() as tmp:
                    res["md"].append(md_cells(sizes[0], backbone, md_atoms, device, presets, backend, min_s,
                                              min_steps, Path(tmp)))
        elif in_budget(f"train {s} {d} {'compiled' if c else 'eager'}"):
            res["train"].append(train_cell(s, backbone, d, c, atoms, steps, device, backend))
            print(json.dumps({k: res["train"][-1][k] for k in ("size", "dtype", "compiled", "atoms_per_s")}),
                  flush=True)
        write(False)
    by = {(r["size"], r["dtype"], r["compile_requested"]): r["atoms_per_s"] for r in res["train"]}
    res["compiled_over_eager"] = {f"{s} {d}": by[(s, d, True)] / by[(s, d, False)] for s in sizes
                                  for d in ("fp32", "bf16") if (s, d, True) in by and (s, d, False) in by}
    write(True)
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
