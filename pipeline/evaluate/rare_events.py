"""Rare-event (RE) force metrics (Liu, He & Mo, npj Comput. Mater. 9, 174, 2023).

RE atoms are atoms caught mid-migration. Averaged force errors are dominated by the many atoms vibrating
near their sites; the error on RE atoms is what decides migration barriers and diffusivity, so it is
reported beside the all-atom figures.

Per atom: magnitude error dF = |F_pred| - |F_ref| and direction error dtheta = angle(F_pred, F_ref).
RE force error = RMS(dF) over RE atoms.
"""
from __future__ import annotations

import numpy as np

DEFINITIONS = {
    "re_force_rms": ("RMS over RE atoms of dF = |F_pred| - |F_ref|", "eV/Å"),
    "re_force_mae": ("mean over RE atoms of |dF|", "eV/Å"),
    "all_force_rms": ("RMS over all atoms of dF = |F_pred| - |F_ref|", "eV/Å"),
    "all_force_mae": ("mean over all atoms of |dF|", "eV/Å"),
    "re_theta_median_deg": ("median over RE atoms of angle(F_pred, F_ref)", "degree"),
    "re_theta_p90_deg": ("90th percentile over RE atoms of angle(F_pred, F_ref)", "degree"),
    "all_theta_median_deg": ("median over all atoms of angle(F_pred, F_ref)", "degree"),
    "all_theta_p90_deg": ("90th percentile over all atoms of angle(F_pred, F_ref)", "degree"),
    "n_re_atoms": ("rare-event atoms: r == 0 in silicon_re, re == 1 in EMT MD, or detected in a trajectory", "count"),
    "dft_noise_floor": ("the same RE/all-atom figures between coarse-k-mesh DFT forces and the reference (DFT_K4) "
                        "forces", "eV/Å, degree"),
    "selection_score": ("force_rmse + re_weight * re_force_rms on the validation split (lower is better)", "eV/Å"),
}


def re_mask(structure) -> np.ndarray | None:
    """Boolean RE mask from the data, or None when the structure carries no RE labels."""
    f = structure.atom_fields
    if "re" in f:
        return np.asarray(f["re"]) > 0
    if "r" in f:
        return np.isclose(np.asarray(f["r"], dtype=np.float64), 0.0)
    return None


def _min_image_dist(positions: np.ndarray, sites: np.ndarray, cell: np.ndarray) -> np.ndarray:
    d = positions[:, None, :] - sites[None, :, :]
    frac = np.linalg.solve(cell.T, d.reshape(-1, 3).T).T
    frac -= np.round(frac)
    return np.linalg.norm(frac @ cell, axis=1).reshape(len(positions), len(sites))


def detect_re_atoms(frames, sites: np.ndarray, window: int = 1, off_site: float = 0.3,
                    d_nn: float | None = None) -> list[np.ndarray]:
    """RE masks for a trajectory of our own (list of ase.Atoms) against lattice `sites` (Å).

    An atom is RE in a frame when its nearest site differs from the one `window` frames before or after,
    or when it sits farther than `off_site` * d_nn from every site (caught between sites).
    """
    if not frames:
        return []
    cell = frames[0].cell.array
    if d_nn is None:
        ds = _min_image_dist(sites, sites, cell)
        d_nn = float(ds[ds > 1e-6].min())
    nearest, far = [], []
    for a in frames:
        dist = _min_image_dist(a.positions, sites, cell)
        nearest.append(dist.argmin(1))
        far.append(dist.min(1) > off_site * d_nn)
    out = []
    for i in range(len(frames)):
        m = far[i].copy()
        for j in (i - window, i + window):
            if 0 <= j < len(frames):
                m |= nearest[j] != nearest[i]
        out.append(m)
    return out


def per_atom_errors(fp: np.ndarray, fr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """dF = |F_pred| - |F_ref| (eV/Å) per atom, and angle(F_pred, F_ref) in degrees (NaN where a force is ~0)."""
    npred, nref = np.linalg.norm(fp, axis=1), np.linalg.norm(fr, axis=1)
    denom = npred * nref
    ok = denom > 1e-12
    cos = np.full(len(fp), np.nan)
    cos[ok] = np.clip((fp * fr).sum(1)[ok] / denom[ok], -1.0, 1.0)
    return npred - nref, np.degrees(np.arccos(cos))


class REAccumulator:
    """Collects dF and dtheta for RE atoms and for all atoms."""

    def __init__(self):
        self.df = {"re": [], "all": []}
        self.th = {"re": [], "all": []}

    def add(self, fp: np.ndarray, fr: np.ndarray, mask: np.ndarray | None):
        df, th = per_atom_errors(np.asarray(fp, np.float64), np.asarray(fr, np.float64))
        self.df["all"].append(df)
        self.th["all"].append(th)
        if mask is not None and mask.any():
            self.df["re"].append(df[mask])
            self.th["re"].append(th[mask])

    def arrays(self, which: str) -> tuple[np.ndarray, np.ndarray]:
        cat = lambda xs: np.concatenate(xs) if xs else np.zeros(0)  # noqa: E731
        return cat(self.df[which]), cat(self.th[which])

    def result(self) -> dict:
        r = {}
        for which in ("re", "all"):
            df, th = self.arrays(which)
            th = th[np.isfinite(th)]
            if which == "re":
                r["n_re_atoms"] = int(len(df))
            if not len(df):
                continue
            r[f"{which}_force_rms"] = float(np.sqrt(np.mean(df**2)))
            r[f"{which}_force_mae"] = float(np.mean(np.abs(df)))
            if len(th):
                r[f"{which}_theta_median_deg"] = float(np.median(th))
                r[f"{which}_theta_p90_deg"] = float(np.percentile(th, 90))
        return r


def rare_event_metrics(pairs) -> tuple[dict, REAccumulator]:
    """RE and all-atom dF / dtheta figures over (structure, prediction) pairs with reference forces."""
    acc = REAccumulator()
    for s, p in pairs:
        if s.forces is not None:
            acc.add(p["forces"], s.forces, re_mask(s))
    return acc.result(), acc


def dft_noise_floor(structures, coarse: str = "forces_dft_k1") -> dict | None:
    """The RE metrics of the coarse-k-mesh DFT forces against the reference (K4) ones: the floor below which
    a model's RE error cannot be told apart from DFT convergence noise. None when no structure has `coarse`."""
    acc, seen = REAccumulator(), False
    for s in structures:
        if coarse in s.atom_fields and s.forces is not None:
            acc.add(s.atom_fields[coarse], s.forces, re_mask(s))
            seen = True
    return dict(acc.result(), coarse=coarse) if seen else None
