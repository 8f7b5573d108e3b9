"""Property tests against ground truth: the EMT teacher run through the evaluation code reproduces its own
figures, computed independently here with plain ASE."""
from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.calculator import Calculator, all_changes
from ase.calculators.emt import EMT
from ase.mep import NEB
from ase.optimize import FIRE

from atomforge.pipeline.evaluate import properties as P


class ScaledEMT(Calculator):
    """EMT with energy and forces multiplied by `k`: every barrier scales by exactly k."""

    implemented_properties = ["energy", "free_energy", "forces"]

    def __init__(self, k: float):
        super().__init__()
        self.k, self.emt = k, EMT()

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        a = self.atoms.copy()
        a.calc = self.emt
        e = self.k * a.get_potential_energy()
        self.results = {"energy": e, "free_energy": e, "forces": self.k * a.get_forces()}


def _independent_emt_barrier(element: str) -> float:
    """Vacancy hop in the 2x2x2 cubic cell built by hand: 7 linearly interpolated images, tight convergence."""
    a = bulk(element, "fcc", cubic=True).repeat(2)
    vac_site = a.positions[0].copy()
    del a[0]
    mover = int(np.argmin([np.linalg.norm(_mic(p - vac_site, a)) for p in a.positions]))
    ends = []
    for target in (None, vac_site):
        im = a.copy()
        if target is not None:
            im.positions[mover] = target
        im.calc = EMT()
        FIRE(im, logfile=None).run(fmax=0.005, steps=2000)
        ends.append(im)
    images = [ends[0]] + [ends[0].copy() for _ in range(7)] + [ends[1]]
    for im in images:
        im.calc = EMT()
    neb = NEB(images, climb=True, method="improvedtangent")
    neb.interpolate(mic=True)
    assert FIRE(neb, logfile=None).run(fmax=0.005, steps=3000)
    e = [im.get_potential_energy() for im in images]
    return max(e) - e[0]


def _mic(d, atoms):
    from ase.geometry import find_mic

    return find_mic(d, atoms.cell, atoms.pbc)[0]


@pytest.mark.parametrize("element", ["Cu", "Al"])
def test_emt_neb_barrier_reproduced(element):
    ours = P.neb_barrier(EMT, element)
    assert ours["converged"]
    assert ours["value"] == pytest.approx(_independent_emt_barrier(element), abs=0.01)
    assert len(ours["energies"]) == 7 and ours["energies"][0] == 0.0


def test_scaled_model_barrier_scales():
    ref, scaled = P.neb_barrier(EMT, "Cu"), P.neb_barrier(lambda: ScaledEMT(1.1), "Cu")
    assert scaled["value"] == pytest.approx(1.1 * ref["value"], abs=0.01)


def test_vacancy_formation_energy_matches_direct_computation():
    a = bulk("Cu", "fcc", cubic=True).repeat(2)
    a.calc = EMT()
    e0 = a.get_potential_energy()
    v = a.copy()
    del v[0]
    v.calc = EMT()
    FIRE(v, logfile=None).run(fmax=0.001, steps=2000)
    expected = v.get_potential_energy() - 31 / 32 * e0
    assert P.vacancy_formation_energy(EMT, "Cu")["value"] == pytest.approx(expected, abs=0.005)


def test_suite_against_itself_has_zero_error_and_catches_a_bad_model():
    same = P.property_suite(EMT, EMT, elements=("Cu",), md_steps=60)["Cu"]
    for name, r in same.items():
        assert r.get("error") in (0.0, None), name  # identical seeds and conditions: identical numbers
    assert abs(same["nve_energy_drift"]["model"]) < 1.0  # EMT with 2 fs steps conserves energy (meV/atom/ps)
    assert same["md_time_to_failure"]["model"] is None  # the teacher survives the ramp
    bad = P.property_suite(lambda: ScaledEMT(0.5), EMT, elements=("Cu",), md_steps=60,
                           which=("vacancy_formation_energy", "rdf_l1_error"))["Cu"]
    assert bad["vacancy_formation_energy"]["error"] == pytest.approx(
        -0.5 * bad["vacancy_formation_energy"]["reference"], abs=0.02)
    assert bad["rdf_l1_error"]["model"] > 0.05  # a softer potential gives a visibly different RDF at the same T
