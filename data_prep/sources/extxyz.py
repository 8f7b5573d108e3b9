"""Extended XYZ (as exported for MPtrj, MatPES, Alexandria): energy/forces/stress from the calculator fields."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np
from ase.io import iread

from data_prep.structure import Structure


class ExtXYZSource:
    name = "extxyz"

    def __init__(self, path: str, name: str | None = None, energy_key: str = "energy", group_key: str | None = None):
        p = Path(path)
        self.files = sorted(p.glob("*.extxyz")) + sorted(p.glob("*.xyz")) if p.is_dir() else [p]
        if not self.files or not all(f.is_file() for f in self.files):
            raise FileNotFoundError(f"no extxyz files at {path}")
        self.name = name or f"xyz_{p.stem}"
        self.energy_key = energy_key
        self.group_key = group_key

    def tasks(self):
        return [str(f) for f in self.files]

    def read(self, task) -> Iterator[Structure]:
        for i, atoms in enumerate(iread(task, index=":", format="extxyz")):
            calc = atoms.calc
            res = dict(calc.results) if calc is not None else {}
            energy = res.get("energy", atoms.info.get(self.energy_key))
            forces = res.get("forces", atoms.arrays.get("forces"))
            stress = res.get("stress", atoms.info.get("stress"))
            group = str(atoms.info.get(self.group_key, f"{Path(task).stem}:{i}")) if self.group_key else f"{Path(task).stem}:{i}"
            yield Structure.from_atoms(
                atoms,
                energy=np.nan if energy is None else float(energy),
                forces=forces,
                stress=stress,
                source=self.name,
                group=group,
                info={k: v for k, v in atoms.info.items() if isinstance(v, (str, int, float))},
            )
