"""An exported conservative model runs NVE MD in a real LAMMPS (fairchem-lammps' fix external callback):
step 0 agrees with our calculator and the total energy is conserved."""
from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk

pytestmark = pytest.mark.slow


def cell():
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((2, 2, 2))  # 32 atoms
    atoms.symbols[[0, 5, 13, 22]] = "Al"
    atoms.rattle(0.05, seed=0)  # off the lattice: nonzero forces to compare
    return atoms


def test_lammps_nve_conserves_energy(conservative):
    from atomforge.pipeline.export import calculator
    from atomforge.pipeline.export.lammps import run_nve

    atoms = cell()
    res = run_nve(conservative, atoms, steps=200, dt_fs=1.0, temperature_K=300.0)
    assert list(res["step"]) == list(range(201))

    atoms.calc = calculator(conservative)
    e, f = atoms.get_potential_energy(), atoms.get_forces()
    assert abs(res["potential"][0] - e) < 1e-4 * abs(e)
    np.testing.assert_allclose(res["forces0"], f, atol=1e-4 * np.abs(f).max())

    n, tot, ke = len(atoms), res["total"], res["kinetic"]
    print(f"LAMMPS NVE: drift {abs(tot[-1] - tot[0]) / n * 1e3:.4f} meV/atom, std(E_tot) {tot.std() * 1e3:.3f} meV, "
          f"std(E_kin) {ke.std() * 1e3:.1f} meV, step-0 |dE|/|E| {abs(res['potential'][0] - e) / abs(e):.2e}, "
          f"max|dF| {np.abs(res['forces0'] - f).max():.2e} eV/Å")
    assert ke.std() > 0.01  # the atoms really moved and exchanged energy
    # 0.1 meV/atom and 1% of the kinetic spread: the 6 Å ladder default (truncated neighbours) gave 0.15 and 6%
    assert abs(tot[-1] - tot[0]) / n < 1e-4
    assert tot.std() < 0.01 * ke.std()


def test_a_model_failing_inside_lammps_is_an_error(conservative, monkeypatch):
    """ctypes drops exceptions raised in the callback; LAMMPS would carry on with zero forces."""
    import atomforge.pipeline.export.lammps as lmp

    class Broken:
        def predict(self, data):
            raise ValueError("boom")

    monkeypatch.setattr(lmp, "fairchem_predict_unit", lambda folder, device: Broken())
    with pytest.raises(RuntimeError, match="failed inside LAMMPS: ValueError\\('boom'\\)"):
        lmp.run_nve(conservative, cell(), steps=3)
