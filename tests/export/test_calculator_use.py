"""The exported calculator in the hands of a user: direct-force models warn once when driven through
relaxation or MD; a conservative model relaxes a Cu vacancy to fmax 0.01 eV/Å."""
from __future__ import annotations

import warnings

import pytest
from ase.build import bulk
from ase.optimize import BFGS

pytestmark = pytest.mark.slow


def vacancy():
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((2, 2, 2))
    del atoms[0]
    return atoms


def test_direct_model_warns_once_in_a_relaxation(exported):
    from atomforge.pipeline.export import calculator
    from atomforge.pipeline.models.calculator import DirectForcesWarning

    atoms = vacancy()
    atoms.calc = calculator(exported)
    atoms.get_forces()  # a single point: no warning
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        BFGS(atoms, logfile=None).run(fmax=1e-6, steps=5)
    hits = [w for w in seen if issubclass(w.category, DirectForcesWarning)]
    assert len(hits) == 1 and "not -dE/dx" in str(hits[0].message)


def test_conservative_model_relaxes_the_cu_vacancy(conservative):
    from atomforge.pipeline.export import calculator
    from atomforge.pipeline.models.calculator import DirectForcesWarning

    atoms = vacancy()
    atoms.calc = calculator(conservative)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DirectForcesWarning)
        converged = BFGS(atoms, logfile=None).run(fmax=0.01, steps=500)
    fmax = float((atoms.get_forces() ** 2).sum(axis=1).max() ** 0.5)
    assert converged and fmax < 0.01
