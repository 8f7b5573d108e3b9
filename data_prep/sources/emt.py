"""Synthetic data labelled by ASE's EMT teacher: bulk, strain, rattle, vacancies, surfaces and Langevin MD.

MD with a vacancy at high temperature catches vacancy hops; atoms whose nearest lattice site changes
within the window are marked as rare-event atoms (`re` = 1 per atom, `r` = 0 on them, as in silicon_re).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np
from ase import units
from ase.build import bulk, fcc111
from ase.calculators.emt import EMT
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

from atomforge.data_prep.structure import Structure

EMT_ELEMENTS = ("Al", "Cu", "Ag", "Au", "Ni", "Pd", "Pt")
KINDS = ("bulk", "strain", "rattle", "vacancy", "surface", "md")


@dataclass(frozen=True)
class EMTTask:
    element: str
    kind: str
    seed: int
    n: int  # structures this task yields


class EMTSource:
    name = "emt"

    def __init__(
        self,
        elements=("Cu", "Al"),
        per_kind: dict | None = None,
        repeat: int = 2,
        md_temperatures=(600.0, 1200.0),
        md_steps_between: int = 10,
        seed: int = 0,
        name: str = "emt",
        structures_per_task: int = 8,
    ):
        bad = [e for e in elements if e not in EMT_ELEMENTS]
        if bad:
            raise ValueError(f"EMT has no parameters for {bad}; choose from {EMT_ELEMENTS}")
        self.elements = tuple(elements)
        self.per_kind = dict(per_kind or {k: 8 for k in KINDS})
        unknown = set(self.per_kind) - set(KINDS)
        if unknown:
            raise ValueError(f"unknown EMT structure kinds {sorted(unknown)}; expected {KINDS}")
        self.repeat = repeat
        self.md_temperatures = tuple(md_temperatures)
        self.md_steps_between = md_steps_between
        self.seed = seed
        self.name = name
        self.per_task = structures_per_task

    def tasks(self) -> list[EMTTask]:
        out = []
        for ei, el in enumerate(self.elements):
            for ki, kind in enumerate(KINDS):
                total = int(self.per_kind.get(kind, 0))
                for t in range(0, total, self.per_task):
                    seed = hash((self.seed, ei, ki, t)) & 0x7FFFFFFF
                    out.append(EMTTask(el, kind, seed, min(self.per_task, total - t)))
        return out

    def _cell(self, el: str):
        return bulk(el, "fcc", cubic=True).repeat(self.repeat)

    def read(self, task: EMTTask) -> Iterator[Structure]:
        rng = np.random.default_rng(task.seed)
        group = f"{task.element}-{task.kind}-{task.seed}"
        if task.kind == "md":
            yield from self._md(task, rng, group)
            return
        for i in range(task.n):
            atoms = self._make(task, rng)
            atoms.calc = EMT()
            yield Structure.from_atoms(
                atoms,
                energy=atoms.get_potential_energy(),
                forces=atoms.get_forces(),
                stress=atoms.get_stress(voigt=False) if atoms.pbc.all() else None,
                source=self.name,
                group=group if task.kind in ("vacancy",) else f"{group}-{i}",
                info={"kind": task.kind, "element": task.element},
            )

    def _make(self, task: EMTTask, rng):
        el = task.element
        if task.kind == "surface":
            atoms = fcc111(el, size=(2, 2, 4), vacuum=6.0, periodic=True)
            atoms.rattle(0.05, seed=int(rng.integers(1 << 30)))
            return atoms
        atoms = self._cell(el)
        if task.kind == "strain":
            eps = rng.uniform(-0.04, 0.04, size=(3, 3))
            eps = 0.5 * (eps + eps.T)
            atoms.set_cell(atoms.cell.array @ (np.eye(3) + eps), scale_atoms=True)
            atoms.rattle(0.02, seed=int(rng.integers(1 << 30)))
        elif task.kind == "rattle":
            atoms.rattle(float(rng.uniform(0.05, 0.2)), seed=int(rng.integers(1 << 30)))
        elif task.kind == "vacancy":
            del atoms[int(rng.integers(len(atoms)))]
            atoms.rattle(0.08, seed=int(rng.integers(1 << 30)))
        else:  # bulk: near-equilibrium, scaled volume
            s = float(rng.uniform(0.97, 1.03))
            atoms.set_cell(atoms.cell.array * s, scale_atoms=True)
            atoms.rattle(0.01, seed=int(rng.integers(1 << 30)))
        return atoms

    def _md(self, task: EMTTask, rng, group) -> Iterator[Structure]:
        atoms = self._cell(task.element)
        sites = atoms.positions.copy()
        del atoms[int(rng.integers(len(atoms)))]
        temp = self.md_temperatures[int(rng.integers(len(self.md_temperatures)))]
        atoms.calc = EMT()
        MaxwellBoltzmannDistribution(atoms, temperature_K=temp, rng=rng)
        dyn = Langevin(atoms, 4 * units.fs, temperature_K=temp, friction=0.02, rng=rng, fixcm=False)
        d_nn = float(np.linalg.norm(atoms.cell.array[0]) / self.repeat / np.sqrt(2))  # fcc: a / sqrt(2)
        prev_site, _ = _nearest_site(atoms, sites)
        for i in range(task.n):
            dyn.run(self.md_steps_between)
            site, off = _nearest_site(atoms, sites)
            # rare-event atoms: changed lattice site since the last frame, or caught between sites
            hopped = ((site != prev_site) | (off > 0.3 * d_nn)).astype(np.float64)
            prev_site = site
            r = _distance_to(atoms, hopped > 0)
            yield Structure.from_atoms(
                atoms,
                energy=atoms.get_potential_energy(),
                forces=atoms.get_forces(),
                stress=atoms.get_stress(voigt=False),
                source=self.name,
                group=group,  # one trajectory: its snapshots stay in one split
                atom_fields={"re": hopped, "r": r},
                info={"kind": "md", "element": task.element, "temperature_K": temp, "frame": i},
            )


def _nearest_site(atoms, sites: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of and distance to each atom's nearest lattice site (minimum image)."""
    cell = atoms.cell.array
    d = atoms.positions[:, None, :] - sites[None, :, :]
    frac = np.linalg.solve(cell.T, d.reshape(-1, 3).T).T
    frac -= np.round(frac)
    dist = np.linalg.norm(frac @ cell, axis=1).reshape(len(atoms), len(sites))
    return dist.argmin(1), dist.min(1)


def _distance_to(atoms, mask: np.ndarray, cap: float = 5.5) -> np.ndarray:
    """Distance of every atom to the nearest migrating atom (minimum image), capped like silicon_re's `r`."""
    if not mask.any():
        return np.full(len(atoms), cap)
    d = atoms.get_all_distances(mic=True)[:, mask]
    return np.minimum(d.min(1), cap)
