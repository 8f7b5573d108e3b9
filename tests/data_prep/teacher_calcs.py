"""ASE calculators the teacher-source tests name in config by class path (module:Class)."""
from __future__ import annotations

import time

import numpy as np
from ase.calculators.emt import EMT


class NaNEMT(EMT):
    """EMT that returns NaN energy and forces for structures with an odd number of atoms."""

    def calculate(self, *args, **kwargs):
        super().calculate(*args, **kwargs)
        if len(self.atoms) % 2:
            self.results["energy"] = self.results["free_energy"] = float("nan")
            self.results["forces"] = np.full_like(self.results["forces"], np.nan)


class SlowEMT(EMT):
    """EMT that takes a while per structure, so a build can be killed half-way."""

    def calculate(self, *args, **kwargs):
        time.sleep(0.03)
        super().calculate(*args, **kwargs)
