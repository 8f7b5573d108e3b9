"""The si-vacancy recipe's rules: the DFT cell read from the data, the diamond hop geometry, and the verdicts."""
from __future__ import annotations

import math

import numpy as np
import pytest
from ase.geometry import find_mic

from atomforge.pipeline.evaluate.properties import crystal_cell, vacancy_hop_endpoints
from atomforge.pipeline.reproduce.si_vacancy import better, distance_to_band, ground_state_lattice, reference_band
from tests.conftest import SHARED_DATA

MLEARN_SI = SHARED_DATA / "mlearn" / "Si" / "training.json"


def test_lattice_comes_from_the_dft_ground_state_cell():
    a, repeat = ground_state_lattice(str(MLEARN_SI), "Ground state crystal")
    assert repeat == 2 and 5.40 < a < 5.50  # PBE overestimates Si's 5.431 Å by ~0.7%
    with pytest.raises(ValueError, match="no structure described"):
        ground_state_lattice(str(MLEARN_SI), "no such crystal")


def test_diamond_vacancy_hop_moves_one_nearest_neighbour_into_the_site():
    a = 5.4687
    assert len(crystal_cell("Si", 2, a)) == 64 and len(crystal_cell("Cu", 2)) == 32  # diamond and fcc ground states
    init, final = vacancy_hop_endpoints("Si", 2, a)
    # across the boundary
    d = np.linalg.norm(find_mic(final.positions - init.positions, init.cell, init.pbc)[0], axis=1)
    moved = np.flatnonzero(d > 1e-9)
    assert len(init) == 63 and len(moved) == 1
    assert d[moved[0]] == pytest.approx(a * math.sqrt(3) / 4)  # the diamond nearest-neighbour distance


def test_verdicts_use_the_distance_to_the_published_range_with_a_tolerance():
    lo, hi = reference_band("vacancy_migration_barrier")
    assert (lo, hi) == (0.40, 0.5)
    assert distance_to_band(0.45, (lo, hi)) == 0.0
    assert distance_to_band(0.2, (lo, hi)) == pytest.approx(0.2)
    assert distance_to_band(0.6, (lo, hi)) == pytest.approx(0.1)
    names = ("plain", "enhanced")
    assert better(0.3, 0.1, names) == "enhanced" and better(0.1, 0.3, names) == "plain"
    assert better(0.12, 0.10, names, tol=0.05) is None  # too close to call
    assert better(None, 0.1, names) is None
