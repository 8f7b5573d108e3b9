"""FLOPs per atom of one training step (forward + backward), counted by torch's FlopCounterMode on a real batch.

Sizes too large to build on this machine get FLOPs/atom from a power law in N fitted to the measured sizes
(and say so): the per-atom cost of an equivariant message-passing model grows close to linearly with its weights.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from atomforge.data_prep.structure import Structure
from atomforge.pipeline.data.convert import structures_to_batch
from atomforge.pipeline.data.dataset import BuiltDataset
from atomforge.pipeline.models.config import ModelConfig
from atomforge.pipeline.models.describe import empty_weights
from atomforge.pipeline.models.potential import build_model
from atomforge.pipeline.sweep.spec import Size
from atomforge.pipeline.train.losses import loss_terms


def parameter_counts(size: Size) -> dict:
    """N with and without embedding tables (element and edge-degree embeddings), built on the meta device."""
    with empty_weights():
        model = build_model(ModelConfig(name=size.ladder, backbone=size.backbone))
    total = sum(p.numel() for p in model.parameters())
    emb = sum(p.numel() for m in model.modules() if isinstance(m, nn.Embedding) for p in m.parameters(recurse=False))
    return {"params": int(total), "params_nonembed": int(total - emb)}


def sample_batch(data_root: str | None, max_atoms: int):
    """A real training batch: the first train structures of the dataset up to max_atoms, else an EMT-labelled fcc
    Cu cell."""
    structs = []
    if data_root and BuiltDataset(data_root).manifest_path.is_file():
        n = 0
        for s in BuiltDataset(data_root).read("train"):
            if structs and n + s.n_atoms > max_atoms:
                break
            structs.append(s)
            n += s.n_atoms
        source = f"{data_root} train split"
    else:
        from ase.build import bulk
        from ase.calculators.emt import EMT


        atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((3, 3, 3))
        atoms.rattle(0.05, seed=0)
        atoms.calc = EMT()
        structs = [Structure.from_atoms(atoms, source="fcc", energy=atoms.get_potential_energy(),
                                        forces=atoms.get_forces())]
        source = "rattled fcc Cu 3x3x3 (EMT)"
    return structures_to_batch(structs), source


def count_flops(mcfg: ModelConfig, batch) -> float:
    """Counted FLOPs per atom of forward + backward of the training loss for any model config (force mode and
    per-task heads included): a conservative model's forces are a second backward pass, and this counts it."""
    torch.manual_seed(0)
    model = build_model(mcfg)
    counter = FlopCounterMode(display=False)
    with counter:
        pred = model(batch)
        terms = loss_terms(pred, batch, model.reference_energy(batch), 1.0)
        (terms["energy"] + terms["forces"]).backward()
    return counter.get_total_flops() / int(batch["natoms"].sum())


def measure(size: Size, batch, repeats: int = 2) -> dict:
    """Counted FLOPs per atom of forward + backward of the training loss, and this machine's seconds per atom."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(name=size.ladder, backbone=size.backbone))
    natoms = int(batch["natoms"].sum())

    def step():
        pred = model(batch)
        terms = loss_terms(pred, batch, model.reference_energy(batch), 1.0)
        (terms["energy"] + terms["forces"]).backward()
        model.zero_grad(set_to_none=True)

    counter = FlopCounterMode(display=False)
    with counter:
        step()
    flops = counter.get_total_flops()
    t0 = time.perf_counter()
    for _ in range(repeats):
        step()
    sec = (time.perf_counter() - t0) / repeats
    return {"flops_per_atom": flops / natoms, "seconds_per_atom": sec / natoms, "batch_atoms": natoms, "measured": True}


def flops_table(sizes: list[Size], data_root: str | None, max_atoms: int, max_params: float,
                cache: Path | None = None) -> dict:
    """{size name: params, params_nonembed, flops_per_atom, seconds_per_atom (measured only), measured}."""
    cached = json.loads(cache.read_text()) if cache and cache.is_file() else {}
    batch, source = None, cached.get("_batch", "")
    out = {}
    for s in sizes:
        key = json.dumps([s.ladder, s.backbone, data_root, max_atoms], sort_keys=True)
        row = dict(cached.get(s.name, {}))
        if row.get("key") != key:
            row = {"key": key, **parameter_counts(s)}
            if row["params"] <= max_params:
                if batch is None:
                    batch, source = sample_batch(data_root, max_atoms)
                row.update(measure(s, batch))
            else:
                row["measured"] = False
        out[s.name] = row
    measured = [r for r in out.values() if r.get("measured")]
    if len(measured) < len(out):  # extrapolate the rest from the measured sizes
        if not measured:
            raise ValueError(f"no sweep size is small enough (<= {max_params:g} params) to measure FLOPs per atom on "
                             "this machine")
        xs = np.log([r["params_nonembed"] for r in measured])
        ys = np.log([r["flops_per_atom"] for r in measured])
        slope, icpt = np.polyfit(xs, ys, 1) if len(measured) > 1 else (1.0, ys[0] - xs[0])
        for r in out.values():
            if not r.get("measured"):
                r["flops_per_atom"] = float(np.exp(icpt + slope * np.log(r["params_nonembed"])))
                r["seconds_per_atom"] = None
    result = {"_batch": source, **out}
    if cache:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(result, indent=1))
    return result
