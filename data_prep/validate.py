"""Per-structure checks. A failing structure goes to quarantine with its reason; nothing is dropped silently."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from atomforge.data_prep.structure import Structure


@dataclass
class ValidationConfig:
    min_distance: float = 0.5  # Å: closer atoms are a broken structure
    max_atoms: int = 1000
    max_abs_energy_per_atom: float = 1e3  # eV/atom: crude bound; per-element outliers are caught after the ref. fit
    max_abs_force: float = 1e3  # eV/Å
    max_z: int = 100  # elements the models embed
    min_volume_per_atom: float = 0.5  # Å^3: solids sit at 5-50 (metallic H near 1 at 500 GPa); below is a broken cell
    max_cell_aspect: float = 1e3  # longest cell vector over the shortest face distance
    max_images: int = 2_000_000  # periodic images x atoms the neighbour search may build (bounds its memory)


def check(s: Structure, cfg: ValidationConfig, cutoff: float = 6.0) -> str | None:
    """Return the reason a structure is rejected, or None if it is fine. `cutoff` is the largest radius a
    neighbour search will use on it (the build's statistics cutoff)."""
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
        bad = _bad_cell(s, cfg, max(cutoff, 1.0))
        if bad:
            return bad
    if abs(s.energy / n) > cfg.max_abs_energy_per_atom:
        return "energy_outlier"
    if n > 1 and _min_distance(s) < cfg.min_distance:
        return "atoms_too_close"
    return None


def _bad_cell(s: Structure, cfg: ValidationConfig, cutoff: float) -> str | None:
    """Degenerate periodic cells, caught in O(1) before any neighbour search sizes its image grid on them."""
    cell = s.cell
    vol = abs(float(np.linalg.det(cell)))
    if s.pbc.all() and vol / s.n_atoms < cfg.min_volume_per_atom:
        return f"bad_cell:volume_per_atom:{vol / s.n_atoms:.3g}<{cfg.min_volume_per_atom:g}"
    heights = vol / np.linalg.norm(np.cross(cell[[1, 2, 0]], cell[[2, 0, 1]]), axis=1)  # distances between faces
    periodic = heights[s.pbc]
    if (np.linalg.norm(cell[s.pbc], axis=1).max() / periodic.min()) > cfg.max_cell_aspect:
        return "bad_cell:aspect"
    reps = np.where(s.pbc, np.ceil(cutoff / heights), 0)
    images = float(np.prod(2 * reps + 1)) * s.n_atoms
    if images > cfg.max_images:
        return f"bad_cell:too_many_images:{images:.3g}"
    return None


def _min_distance(s: Structure) -> float:
    from atomforge.data_prep.neighbors import neighbour_stats

    return neighbour_stats(s, cutoff=1.0)[0]
