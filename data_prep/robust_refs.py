"""Element references that one wild label cannot move: Huber M-estimate of E_total ~ sum_Z n_Z ref_Z by
iteratively reweighted least squares, streamed over the parts.

The plain least-squares fit absorbs a gross outlier (one +50 eV/atom Al frame among a few dozen moved the Al
reference by ~5 eV) before the outlier cut can see it; with Huber weights on the per-atom residual
(scale = 1.4826 MAD, exact streaming median), the outlier's pull is bounded and it stands out in the cut.
Each part's training compositions are kept on disk as small arrays, so memory is one part and the
elements^2 normal equations, whatever the dataset size.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import pyarrow as pa

from atomforge.data_prep.card import ELEMENT_REF_RIDGE, composition
from atomforge.data_prep.external import median

HUBER_C = 1.345  # 95% efficiency at Gaussian noise
MAX_ITER = 50
TOL = 1e-7  # eV per atom
MIN_SCALE = 1e-4  # eV per atom: exact data (residuals all ~0) must not divide by zero


class RobustReferences:
    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.n_parts = 0
        self.n_rows = 0
        self.elements: set[int] = set()

    def add(self, train: pa.Table) -> None:
        """Keep one part's usable training rows (call once per part, in order)."""
        rows, z, c = composition(train)
        e = train.column("energy").to_numpy().astype(np.float64)
        n = train.column("n_atoms").to_numpy().astype(np.float64)
        np.savez(self.tmp / f"fit-{self.n_parts:06d}.npz", rows=rows, z=z, c=c, e=e, n=n)
        self.n_parts += 1
        self.n_rows += len(e)
        self.elements.update(int(x) for x in np.unique(z))

    def _parts(self) -> Iterable[dict]:
        for i in range(self.n_parts):
            with np.load(self.tmp / f"fit-{i:06d}.npz", allow_pickle=False) as f:
                yield {k: f[k] for k in f.files}

    def _residuals(self, refs: np.ndarray, col: dict[int, int]) -> Callable[[], Iterable[np.ndarray]]:
        for i, p in enumerate(self._parts()):
            base = np.bincount(p["rows"], weights=refs[[col[int(a)] for a in p["z"]]] * p["c"], minlength=len(p["e"]))
            np.save(self.tmp / f"fitres-{i:06d}.npy", (p["e"] - base) / p["n"])
        return lambda: (np.load(self.tmp / f"fitres-{i:06d}.npy") for i in range(self.n_parts))

    def _solve(self, col: dict[int, int], weights: Callable[[int], np.ndarray] | None) -> np.ndarray:
        k = len(col)
        ata, ate = np.zeros((k, k)), np.zeros(k)
        for i, p in enumerate(self._parts()):
            A = np.zeros((len(p["e"]), k))
            A[p["rows"], [col[int(a)] for a in p["z"]]] = p["c"]
            w = np.ones(len(p["e"])) if weights is None else weights(i)
            ata += A.T @ (A * w[:, None])
            ate += A.T @ (w * p["e"])
        return np.linalg.solve(ata + ELEMENT_REF_RIDGE * np.eye(k), ate)

    def solve(self) -> dict[int, float]:
        if self.n_rows == 0:
            raise ValueError("the training split is empty: nothing to fit element references on")
        col = {z: j for j, z in enumerate(sorted(self.elements))}
        refs = self._solve(col, None)  # least squares: the starting point
        for _ in range(MAX_ITER):
            res = self._residuals(refs, col)
            med = median(res, self.n_rows)
            mad = median(lambda res=res, med=med: (np.abs(r - med) for r in res()), self.n_rows)
            scale = max(1.4826 * mad, MIN_SCALE)

            def huber(i: int, scale: float = scale) -> np.ndarray:
                u = np.abs(np.load(self.tmp / f"fitres-{i:06d}.npy")) / scale
                return np.minimum(1.0, HUBER_C / np.maximum(u, 1e-300))

            new = self._solve(col, huber)
            done = np.abs(new - refs).max() < TOL
            refs = new
            if done:
                break
        return {z: float(refs[j]) for z, j in col.items()}
