"""Energy / force / stress errors of a model on a built dataset split, overall and per element and source."""
from __future__ import annotations

from collections import defaultdict

import numpy as np


class ErrorAccumulator:
    """Streaming sums for MAE/RMSE/cosine; one per slice (all, per element, per group)."""

    def __init__(self):
        self.e_abs = self.e_sq = self.n_s = 0.0
        self.f_abs = self.f_sq = self.n_fc = 0.0
        self.cos = self.n_fa = 0.0
        self.s_abs = self.n_sc = 0.0

    def add_structure(self, de_per_atom: float):
        self.e_abs += abs(de_per_atom)
        self.e_sq += de_per_atom**2
        self.n_s += 1

    def add_forces(self, fp: np.ndarray, fr: np.ndarray):
        d = fp - fr
        self.f_abs += np.abs(d).sum()
        self.f_sq += (d**2).sum()
        self.n_fc += d.size
        norm = np.linalg.norm(fp, axis=1) * np.linalg.norm(fr, axis=1)
        ok = norm > 1e-8
        self.cos += float(((fp * fr).sum(1)[ok] / norm[ok]).sum())
        self.n_fa += int(ok.sum())

    def add_stress(self, sp, sr):
        self.s_abs += np.abs(sp - sr).sum()
        self.n_sc += sp.size

    def result(self) -> dict:
        r = {}
        if self.n_s:
            r.update(energy_mae_per_atom=self.e_abs / self.n_s, energy_rmse_per_atom=np.sqrt(self.e_sq / self.n_s),
                     n_structures=int(self.n_s))
        if self.n_fc:
            r.update(force_mae=self.f_abs / self.n_fc, force_rmse=np.sqrt(self.f_sq / self.n_fc),
                     n_force_components=int(self.n_fc))
        if self.n_fa:
            r["force_cosine"] = self.cos / self.n_fa
        if self.n_sc:
            r["stress_mae"] = self.s_abs / self.n_sc
        return {k: float(v) for k, v in r.items()}


def standard_metrics(pairs) -> dict:
    from ase.data import chemical_symbols

    acc = {"all": ErrorAccumulator()}
    per_el: dict = defaultdict(ErrorAccumulator)
    per_group: dict = defaultdict(ErrorAccumulator)
    for s, p in pairs:
        de = (p["energy"] - s.energy) / s.n_atoms
        group = s.info.get("group") or s.info.get("set") or s.info.get("kind") or s.source
        slices = [acc["all"], per_group[f"{s.source}/{group}"]]
        for a in slices:
            a.add_structure(de)
        if s.forces is not None:
            for a in slices:
                a.add_forces(p["forces"], s.forces)
            for z in np.unique(s.numbers):
                m = s.numbers == z
                per_el[chemical_symbols[int(z)]].add_forces(p["forces"][m], s.forces[m])
        for z in np.unique(s.numbers):
            if len(np.unique(s.numbers)) == 1:
                per_el[chemical_symbols[int(z)]].add_structure(de)
        if s.stress is not None and "stress" in p:
            for a in slices:
                a.add_stress(p["stress"], s.stress)
    return {
        "all": acc["all"].result(),
        "per_element": {k: v.result() for k, v in sorted(per_el.items())},
        "per_group": {k: v.result() for k, v in sorted(per_group.items())},
    }
