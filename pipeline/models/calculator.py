"""ASE calculator over an exported folder (or a Potential); predictions go through the one batched predictor."""
from __future__ import annotations

import copy
import warnings

import numpy as np
import torch
from ase.calculators.calculator import Calculator, all_changes

from atomforge.data_prep.structure import Structure
from atomforge.pipeline.models.folder import load
from atomforge.pipeline.models.predict import check_elements, predict_structures
from atomforge.pipeline.models.tasks import single_task


class DirectForcesWarning(UserWarning):
    """A direct-force model driven through relaxation or MD."""


class AtomforgeCalculator(Calculator):
    implemented_properties = ["energy", "free_energy", "forces", "stress"]

    def __init__(self, model, device: str = "cpu", task: str | None = None, compile: bool = False, **kw):
        super().__init__(**kw)
        self.model = model.to(device).eval()
        if task is not None and task not in self.model.tasks:
            raise ValueError(f"task {task!r} is not one of this model's heads "
                             f"{self.model.tasks or ['(one shared head)']}")
        # what every call runs: the one head asked for, exactly as the model computes it (a multi-head model's
        # mixture-of-experts head does not compile); compiled, a copy whose weights need no gradient, since forces
        # differentiate with respect to positions only (a third of the compile time, ~10% faster steps)
        self.net = single_task(self.model, task)
        if compile and not self.net.compiled:
            self.net = (copy.deepcopy(self.net) if self.net is self.model else self.net).requires_grad_(False)
            self.net.compile_network(training=False)
        self.device = device
        self.task = task
        self._moves = 0  # calls where only positions changed: an optimizer or an integrator is stepping

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        if "forces" in properties and set(system_changes) == {"positions"}:
            self._moves += 1
            if self._moves == 2 and self.model.cfg.force_mode == "direct":
                warnings.warn("this model's forces come from a force head, not -dE/dx: relaxation and MD with it may "
                              "not converge or conserve energy; use a conservative model "
                              "(model.force_mode=conservative)",
                              DirectForcesWarning, stacklevel=3)
        super().calculate(atoms, properties, system_changes)
        if "stress" in properties and "stress" not in self._outputs():
            raise NotImplementedError("this model was trained without a stress head")
        check_elements(self.model, self.atoms.numbers)
        s = Structure.from_atoms(self.atoms, energy=0.0)
        _, r = next(predict_structures(self.net, [s], batch_atoms=max(s.n_atoms, 1), device=self.device))
        self.results = {"energy": r["energy"], "free_energy": r["energy"], "forces": r["forces"]}
        if "stress" in r:
            s = r["stress"]
            self.results["stress"] = np.array([s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2], s[0, 1]])

    def _outputs(self):
        return {"stress"} if self.model.cfg.stress else set()


def calculator(path_or_model, device: str = "cpu", task: str | None = None,
               compile: bool = False) -> AtomforgeCalculator:
    """`task`: the energy head of a model with one head per dataset (default: the head it was exported with).
    `compile`: torch.compile the network (dynamic shapes): the first call compiles (tens of seconds on CPU), later
    calls of any cell size reuse it; worth it for long MD, not for a few single points."""
    model = path_or_model if isinstance(path_or_model, torch.nn.Module) else load(path_or_model, device)
    return AtomforgeCalculator(model, device, task, compile)
