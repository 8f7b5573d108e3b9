"""Dataset statistics from the manifest's training rows (element references, force RMS, neighbours),
accumulated one table at a time so a build never holds every row."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

ELEMENT_REF_RIDGE = 1e-8


def composition(table: pa.Table) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, Z, count) triples of the rows' compositions, from the manifest's list columns."""
    z = table.column("z").combine_chunks()
    c = table.column("counts").combine_chunks()
    rows = pc.list_parent_indices(z).to_numpy(zero_copy_only=False).astype(np.int64)
    return rows, pc.list_flatten(z).to_numpy(zero_copy_only=False), pc.list_flatten(c).to_numpy(zero_copy_only=False)


def residual_per_atom(table: pa.Table, refs: dict[int, float]) -> np.ndarray:
    """(E - sum_Z n_Z ref_Z) / n_atoms per row; elements without a reference count as 0."""
    rows, z, c = composition(table)
    ref = np.array([refs.get(int(a), 0.0) for a in z], dtype=np.float64)
    base = np.bincount(rows, weights=ref * c, minlength=table.num_rows)
    return (table.column("energy").to_numpy() - base) / table.column("n_atoms").to_numpy()


class ReferenceFit:
    """Least squares E_total ~ sum_Z n_Z ref_Z over structures, via accumulated normal equations (tiny ridge
    for rank deficiency): memory is elements^2, not structures."""

    def __init__(self):
        self.col: dict[int, int] = {}
        self.ata = np.zeros((0, 0))
        self.ate = np.zeros(0)
        self.rows = 0

    def add(self, table: pa.Table) -> "ReferenceFit":
        rows, z, c = composition(table)
        for a in np.unique(z):
            if int(a) not in self.col:
                self.col[int(a)] = len(self.col)
        k = len(self.col)
        if k > len(self.ate):  # a new element: grow the system
            ata, ate = np.zeros((k, k)), np.zeros(k)
            ata[: len(self.ate), : len(self.ate)], ate[: len(self.ate)] = self.ata, self.ate
            self.ata, self.ate = ata, ate
        A = np.zeros((table.num_rows, k))
        A[rows, [self.col[int(a)] for a in z]] = c
        self.ata += A.T @ A
        self.ate += A.T @ table.column("energy").to_numpy()
        self.rows += table.num_rows
        return self

    def solve(self) -> dict[int, float]:
        if not self.col:
            return {}
        refs = np.linalg.solve(self.ata + ELEMENT_REF_RIDGE * np.eye(len(self.col)), self.ate)
        return {z: float(refs[i]) for z, i in sorted(self.col.items())}


class TrainStats:
    """Card statistics of the usable training rows. Two passes: `add` every table (fits the references and
    sums forces, neighbours, sizes), then `add_residuals` every table with `refs()` for the residual spread."""

    def __init__(self):
        self.fit = ReferenceFit()
        self.n_comp = 0
        self.f_sq = 0.0
        self.neigh_atoms = 0.0
        self.atoms = 0
        self.n_max = 0
        self.res = np.zeros(3)  # count, sum, sum of squares

    def add(self, train: pa.Table) -> "TrainStats":
        if train.num_rows:
            self.fit.add(train)
            n = train.column("n_atoms").to_numpy()
            self.n_comp += int(pc.sum(train.column("n_force_comp")).as_py() or 0)
            self.f_sq += float(pc.sum(train.column("f_sq_sum")).as_py() or 0.0)
            self.neigh_atoms += float((train.column("avg_neighbors").to_numpy() * n).sum())
            self.atoms += int(n.sum())
            self.n_max = max(self.n_max, int(n.max()))
        return self

    def refs(self) -> dict[int, float]:
        if self.fit.rows == 0:
            raise ValueError("the training split is empty: nothing to fit element references on")
        return self.fit.solve()

    def add_residuals(self, train: pa.Table, refs: dict[int, float]) -> None:
        r = residual_per_atom(train, refs)
        self.res += [r.size, r.sum(), (r**2).sum()]

    def result(self, refs: dict[int, float]) -> dict:
        n, s, sq = self.res
        mean = s / max(n, 1)
        return {
            "element_references": {str(k): v for k, v in refs.items()},
            "energy_residual_per_atom_std": float(np.sqrt(max(sq / max(n, 1) - mean**2, 0.0))),
            "energy_residual_per_atom_mean": float(mean),
            "force_rms": float(np.sqrt(self.f_sq / self.n_comp)) if self.n_comp else None,
            "avg_num_neighbors": self.neigh_atoms / self.atoms,
            "n_atoms_mean": self.atoms / self.fit.rows,
            "n_atoms_max": self.n_max,
            "elements": sorted(self.fit.col),
        }

