"""Per-structure checks. A failing structure goes to quarantine with its reason; nothing is dropped silently."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from data_prep.structure import Structure


@dataclass
class ValidationConfig:
    min_distance: float = 0.5  # Å: closer atoms are a broken structure
    max_atoms: int = 1000
    max_abs_energy_per_atom: float = 1e3  # eV/atom: crude bound; per-element outliers are caught after the reference fit
    max_abs_force: float = 1e3  # eV/Å
    max_z: int = 100  # elements the models embed


def check(s: Structure, cfg: ValidationConfig) -> str | None:
    """Return the reason a structure is rejected, or None if it is fine."""
    n = s.n_atoms
    if n == 0:
        return "empty"
    if n > cfg.max_atoms:
        return f"too_many_atoms:{n}>{cfg.max_atoms}"
    if s.numbers.shape != (n,) or s.positions.shape != (n, 3):
        return "bad_shape:positions"
    if (s.numbers < 1).any() or (s.numbers > cfg.max_z).any():
        return "unknown_element"
    if not np.isfinite(s.positions).all() or not np.isfinite(s.cell).all():
        return "non_finite:positions_or_cell"
    if s.energy is None or not np.isfinite(s.energy):
        return "non_finite:energy"
    if s.forces is not None:
        if s.forces.shape != (n, 3):
            return f"bad_shape:forces{tuple(s.forces.shape)}"
        if not np.isfinite(s.forces).all():
            return "non_finite:forces"
        if np.abs(s.forces).max() > cfg.max_abs_force:
            return "force_outlier"
    if s.stress is not None and (s.stress.shape != (3, 3) or not np.isfinite(s.stress).all()):
        return "bad_stress"
    for k, v in s.atom_fields.items():
        if len(v) != n:
            return f"bad_shape:{k}"
    if s.pbc.any():
        if s.cell.shape != (3, 3) or abs(np.linalg.det(s.cell)) < 1e-6:
            return "bad_cell:singular"
    if abs(s.energy / n) > cfg.max_abs_energy_per_atom:
        return "energy_outlier"
    if n > 1 and _min_distance(s) < cfg.min_distance:
        return "atoms_too_close"
    return None


def _min_distance(s: Structure) -> float:
    from data_prep.neighbors import neighbour_stats

    return neighbour_stats(s, cutoff=1.0)[0]
