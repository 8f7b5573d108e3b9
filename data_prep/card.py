"""Dataset statistics from the manifest's training rows: element references, force RMS, neighbours."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

ELEMENT_REF_RIDGE = 1e-8


def fit_element_references(z_lists, count_lists, energies) -> dict[int, float]:
    """Least squares E_total ~ sum_Z n_Z * ref_Z over structures (composition counts), tiny ridge for rank deficiency."""
    zs = sorted({int(z) for zl in z_lists for z in zl})
    if not zs:
        return {}
    col = {z: i for i, z in enumerate(zs)}
    A = np.zeros((len(energies), len(zs)))
    for r, (zl, cl) in enumerate(zip(z_lists, count_lists)):
        for z, c in zip(zl, cl):
            A[r, col[int(z)]] = c
    e = np.asarray(energies, dtype=np.float64)
    ata = A.T @ A + ELEMENT_REF_RIDGE * np.eye(len(zs))
    refs = np.linalg.solve(ata, A.T @ e)
    return {z: float(refs[col[z]]) for z in zs}


def residual_per_atom(table: pa.Table, refs: dict[int, float]) -> np.ndarray:
    z = table.column("z").to_pylist()
    c = table.column("counts").to_pylist()
    e = table.column("energy").to_numpy()
    n = table.column("n_atoms").to_numpy()
    base = np.array([sum(refs.get(int(a), 0.0) * b for a, b in zip(zl, cl)) for zl, cl in zip(z, c)])
    return (e - base) / n


def statistics(train: pa.Table) -> dict:
    """Everything the card and the model need, from usable training rows only."""
    if train.num_rows == 0:
        raise ValueError("the training split is empty: nothing to fit element references on")
    refs = fit_element_references(train.column("z").to_pylist(), train.column("counts").to_pylist(), train.column("energy").to_numpy())
    res = residual_per_atom(train, refs)
    n_comp = pc.sum(train.column("n_force_comp")).as_py() or 0
    f_sq = pc.sum(train.column("f_sq_sum")).as_py() or 0.0
    n_atoms = train.column("n_atoms").to_numpy()
    return {
        "element_references": {str(k): v for k, v in refs.items()},
        "energy_residual_per_atom_std": float(res.std()),
        "energy_residual_per_atom_mean": float(res.mean()),
        "force_rms": float(np.sqrt(f_sq / n_comp)) if n_comp else None,
        "avg_num_neighbors": float(np.average(train.column("avg_neighbors").to_numpy(), weights=n_atoms)),
        "n_atoms_mean": float(n_atoms.mean()),
        "n_atoms_max": int(n_atoms.max()),
        "elements": sorted({int(z) for zl in train.column("z").to_pylist() for z in zl}),
    }
