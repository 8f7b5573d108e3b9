"""Structure -> fairchem AtomicData (graph edges are built on the fly by the model, on the device)."""
from __future__ import annotations

import numpy as np
import torch
from fairchem.core.datasets.atomic_data import AtomicData, atomicdata_list_to_batch

from atomforge.data_prep.structure import Structure

DEFAULT_TASK = "omat"  # fairchem's dataset-embedding name; our heads don't depend on it


def structure_to_atomicdata(s: Structure, task: str = DEFAULT_TASK, dtype=torch.float32) -> AtomicData:
    n = s.n_atoms
    cell = s.cell if s.pbc.any() else np.zeros((3, 3))
    pos = s.positions
    if s.pbc.any():  # wrap into the cell as fairchem does for its own graph generation
        frac = np.linalg.solve(s.cell.T, pos.T).T
        frac = np.where(s.pbc, frac % 1.0, frac)
        pos = frac @ s.cell
    d = AtomicData(
        pos=torch.as_tensor(pos, dtype=dtype),
        atomic_numbers=torch.as_tensor(s.numbers, dtype=torch.long),
        cell=torch.as_tensor(cell, dtype=dtype).view(1, 3, 3),
        pbc=torch.as_tensor(s.pbc, dtype=torch.bool).view(1, 3),
        natoms=torch.tensor([n], dtype=torch.long),
        edge_index=torch.empty((2, 0), dtype=torch.long),
        cell_offsets=torch.empty((0, 3), dtype=dtype),
        nedges=torch.tensor([0], dtype=torch.long),
        charge=torch.zeros(1, dtype=torch.long),
        spin=torch.zeros(1, dtype=torch.long),
        fixed=torch.zeros(n, dtype=torch.long),
        tags=torch.zeros(n, dtype=torch.long),
        energy=torch.tensor([s.energy], dtype=dtype),
        forces=(torch.as_tensor(s.forces, dtype=dtype) if s.forces is not None
                else torch.full((n, 3), float("nan"), dtype=dtype)),
        stress=(torch.as_tensor(s.stress, dtype=dtype).view(1, 3, 3) if s.stress is not None
                else torch.full((1, 3, 3), float("nan"), dtype=dtype)),
        sid=[s.info.get("key", "")],
        dataset=task,
    )
    return d


def structures_to_batch(structures: list[Structure], task: str | list[str] = DEFAULT_TASK) -> AtomicData:
    """`task`: one dataset/task name for all, or one per structure (a mix with per-task energy heads)."""
    tasks = [task] * len(structures) if isinstance(task, str) else list(task)
    return atomicdata_list_to_batch([structure_to_atomicdata(s, t) for s, t in zip(structures, tasks)])
