"""Degenerate periodic cells are refused by cheap checks before any neighbour search sizes its image grid on
them; ordinary bulk and slab cells pass."""
from __future__ import annotations

import time

import numpy as np
from ase.build import bulk, fcc111

from atomforge.data_prep.structure import Structure
from atomforge.data_prep.validate import ValidationConfig, check


def _s(atoms) -> Structure:
    return Structure.from_atoms(atoms, energy=-1.0 * len(atoms), forces=np.zeros((len(atoms), 3)))


def test_flat_cell_is_refused_in_constant_time():
    a = bulk("Cu", "fcc", a=3.6, cubic=True)
    a.set_cell([100.0, 100.0, 1e-7], scale_atoms=False)  # the neighbour search would build ~6e7 image shells
    t0 = time.perf_counter()
    reason = check(_s(a), ValidationConfig(), cutoff=6.0)
    assert reason.startswith("bad_cell:volume_per_atom") and time.perf_counter() - t0 < 0.5


def test_needle_cell_is_refused():
    a = bulk("Cu", "fcc", a=3.6, cubic=True)
    a.set_cell([[1e4, 0, 0], [0, 3.6, 0], [0, 0, 3.6]], scale_atoms=False)
    a.positions[:, 0] *= 1e4 / 3.6  # sensible volume per atom, absurd shape
    assert check(_s(a), ValidationConfig()) == "bad_cell:aspect"


def test_image_budget_is_enforced():
    a = bulk("Cu", "fcc", a=3.6, cubic=True)  # 5x5x5 images at a 6 Å cutoff: 500 atom images
    assert check(_s(a), ValidationConfig(max_images=100), cutoff=6.0).startswith("bad_cell:too_many_images")
    assert check(_s(a), ValidationConfig(max_images=1000), cutoff=6.0) is None


def test_ordinary_cells_pass():
    slab = fcc111("Cu", size=(2, 2, 4), vacuum=6.0, periodic=True)
    assert check(_s(slab), ValidationConfig()) is None
    assert check(_s(bulk("Al", "fcc", a=4.05).repeat(3)), ValidationConfig()) is None
