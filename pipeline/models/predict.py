"""The one batched predictor: energies, forces (and stress) of many structures, batched by an atom budget. The ASE
calculator, evaluation and the export check all predict through it."""
from __future__ import annotations

import torch

from atomforge.data_prep.structure import Structure
from atomforge.pipeline.data.convert import DEFAULT_TASK, structures_to_batch


def check_elements(model, numbers) -> None:
    allowed = set(model.elements)
    bad = sorted(set(int(z) for z in numbers) - allowed)
    if bad:
        from ase.data import chemical_symbols

        raise ValueError(f"elements {[chemical_symbols[z] for z in bad]} are outside this model's list "
                         f"{[chemical_symbols[z] for z in sorted(allowed)]}")


def predict_structures(model, structures, batch_atoms: int = 512, device: str = "cpu", task: str | None = None):
    """(structure, pred dict of numpy arrays) pairs, batched by atom budget; `task`: the energy head of a model
    with per-task heads (default: its default head)."""
    grad = model.cfg.force_mode == "conservative"
    buf, n = [], 0

    def flush():
        batch = (structures_to_batch(buf, task or DEFAULT_TASK)).to(device)
        with torch.set_grad_enabled(grad):
            out = model(batch)
        forces = torch.split(out["forces"].detach().cpu().double(), batch["natoms"].tolist())
        for i, s in enumerate(buf):
            p = {"energy": float(out["energy"][i].detach()), "forces": forces[i].numpy()}
            if "stress" in out:
                p["stress"] = out["stress"][i].detach().cpu().double().numpy()
            yield s, p

    for s in structures:
        if buf and n + s.n_atoms > batch_atoms:
            yield from flush()
            buf, n = [], 0
        buf.append(s)
        n += s.n_atoms
    if buf:
        yield from flush()


def predict(model, atoms_list, device: str = "cpu", task: str | None = None) -> list[dict]:
    """Energy, forces (and stress) for many ASE Atoms in one batch; `task`: which energy head of a model with
    per-task heads (default: its default head)."""
    structs = []
    for a in atoms_list:
        check_elements(model, a.numbers)
        structs.append(Structure.from_atoms(a, energy=0.0))
    if task is not None and task not in model.tasks:
        raise ValueError(f"task {task!r} is not one of this model's heads {model.tasks or ['(one shared head)']}")
    n = sum(s.n_atoms for s in structs)
    return [p for _, p in predict_structures(model, structs, batch_atoms=max(n, 1), device=device, task=task)]
