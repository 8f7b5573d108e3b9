"""ASE calculator over an exported folder (or a Potential), and batched prediction for many structures."""
from __future__ import annotations

import warnings

import numpy as np
import torch
from ase.calculators.calculator import Calculator, all_changes

from data_prep.structure import Structure
from pipeline.data.convert import DEFAULT_TASK, structures_to_batch


def _check_elements(model, numbers):
    allowed = set(model.elements)
    bad = sorted(set(int(z) for z in numbers) - allowed)
    if bad:
        from ase.data import chemical_symbols

        raise ValueError(f"elements {[chemical_symbols[z] for z in bad]} are outside this model's list "
                         f"{[chemical_symbols[z] for z in sorted(allowed)]}")


def predict(model, atoms_list, device: str = "cpu", task: str | None = None) -> list[dict]:
    """Energy, forces (and stress) for many structures in one batch; `task`: which energy head of a model with
    per-task heads (default: its default head)."""
    structs = []
    for a in atoms_list:
        _check_elements(model, a.numbers)
        structs.append(Structure.from_atoms(a, energy=0.0))
    if task is not None and task not in model.tasks:
        raise ValueError(f"task {task!r} is not one of this model's heads {model.tasks or ['(one shared head)']}")
    batch = structures_to_batch(structs, task or DEFAULT_TASK).to(device)
    grad = model.cfg.force_mode == "conservative"
    with torch.set_grad_enabled(grad):
        out = model(batch)
    counts = batch["natoms"].tolist()
    forces = torch.split(out["forces"].detach().cpu(), counts)
    res = []
    for i, a in enumerate(atoms_list):
        r = {"energy": float(out["energy"][i]), "forces": forces[i].double().numpy()}
        if "stress" in out:
            r["stress"] = out["stress"][i].detach().cpu().double().numpy()
        res.append(r)
    return res


class DirectForcesWarning(UserWarning):
    """A direct-force model driven through relaxation or MD."""


class AtomforgeCalculator(Calculator):
    implemented_properties = ["energy", "free_energy", "forces", "stress"]

    def __init__(self, model, device: str = "cpu", task: str | None = None, **kw):
        super().__init__(**kw)
        self.model = model.to(device).eval()
        self.device = device
        self.task = task
        self._moves = 0  # calls where only positions changed: an optimizer or an integrator is stepping

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        if "forces" in properties and set(system_changes) == {"positions"}:
            self._moves += 1
            if self._moves == 2 and self.model.cfg.force_mode == "direct":
                warnings.warn("this model's forces come from a force head, not -dE/dx: relaxation and MD with it may not "
                              "converge or conserve energy; use a conservative model (model.force_mode=conservative)",
                              DirectForcesWarning, stacklevel=3)
        super().calculate(atoms, properties, system_changes)
        if "stress" in properties and "stress" not in self._outputs():
            raise NotImplementedError("this model was trained without a stress head")
        r = predict(self.model, [self.atoms], self.device, self.task)[0]
        self.results = {"energy": r["energy"], "free_energy": r["energy"], "forces": r["forces"]}
        if "stress" in r:
            s = r["stress"]
            self.results["stress"] = np.array([s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2], s[0, 1]])

    def _outputs(self):
        return {"stress"} if self.model.cfg.stress else set()


def calculator(path_or_model, device: str = "cpu", task: str | None = None) -> AtomforgeCalculator:
    """`task`: the energy head of a model with one head per dataset (default: the head it was exported with)."""
    if isinstance(path_or_model, torch.nn.Module):
        return AtomforgeCalculator(path_or_model, device, task)
    from pipeline.export.hub import load

    return AtomforgeCalculator(load(path_or_model, device), device, task)
