"""silicon_re folders (Liu, He & Mo 2023): DATA.json + structure_poscars.zip with <i>.POSCAR.vasp.

Keeps every k-mesh's forces (`forces_dft_k1`, ...) and `r`, `r_v` as per-atom fields; the K4 labels are
the training targets.
"""
from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Iterator

import numpy as np
from ase.io import read

from atomforge.data_prep.structure import ReadError, Structure


class SiliconRESource:
    name = "silicon_re"

    def __init__(self, path: str, name: str | None = None, chunk: int = 50, target: str = "DFT_K4"):
        self.path = Path(path)
        for f in ("DATA.json", "structure_poscars.zip"):
            if not (self.path / f).is_file():
                raise FileNotFoundError(f"silicon_re folder {self.path} has no {f}")
        self.name = name or "si_re_" + self.path.name.split("_")[0].replace("-", "_").lower()
        self.chunk = chunk
        self.target = target
        with open(self.path / "DATA.json") as f:
            self._n = len(json.load(f)["Energies"][target])

    def tasks(self):
        return [(a, min(a + self.chunk, self._n)) for a in range(0, self._n, self.chunk)]

    def inputs(self, task) -> list[str]:
        return [str(self.path / "DATA.json"), str(self.path / "structure_poscars.zip")]

    def read(self, task) -> Iterator[Structure | ReadError]:
        a, b = task
        with open(self.path / "DATA.json") as f:
            data = json.load(f)
        with zipfile.ZipFile(self.path / "structure_poscars.zip") as z:
            for i in range(a, b):
                try:
                    yield self._structure(data, z, i)
                except Exception as e:  # noqa: BLE001 - one missing or malformed snapshot
                    yield ReadError(f"{self.path}/structure_poscars.zip", i, f"{type(e).__name__}: {e}")

    def _structure(self, data: dict, z: zipfile.ZipFile, i: int) -> Structure:
        atoms = read(io.StringIO(z.read(f"{i}.POSCAR.vasp").decode()), format="vasp")
        fields = {}
        for mesh, forces in data["Forces"].items():
            if mesh != self.target:
                fields[f"forces_{mesh.lower()}"] = np.asarray(forces[i], dtype=np.float64)
        for k in ("r", "r_v"):
            if k in data and data[k][i] is not None:  # None in the bulk-like validation snapshots (no migrating atom)
                fields[k] = np.asarray(data[k][i], dtype=np.float64)
        info = {"set": self.path.name, "index": i}
        for mesh, energies in data["Energies"].items():
            if mesh != self.target:
                info[f"energy_{mesh.lower()}"] = float(energies[i])
        return Structure.from_atoms(
            atoms,
            energy=float(data["Energies"][self.target][i]),
            forces=np.asarray(data["Forces"][self.target][i], dtype=np.float64),
            source=self.name,
            # consecutive AIMD frames are correlated: blocks of 10 stay in one split
            group=f"{self.path.name}:{i // 10}",
            atom_fields=fields,
            info=info,
            origin=f"{self.path}:{i}",
        )
