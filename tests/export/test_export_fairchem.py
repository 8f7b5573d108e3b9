"""fairchem's own loader and calculator run the exported inference_ckpt.pt unchanged."""
from __future__ import annotations

import numpy as np
import pytest
from ase import units
from ase.build import bulk
from ase.md.verlet import VelocityVerlet
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

pytestmark = pytest.mark.slow


def test_fairchem_calculator_md_100_steps(exported):
    from fairchem.core.calculate.ase_calculator import FAIRChemCalculator
    from fairchem.core.units.mlip_unit import load_predict_unit

    from atomforge.pipeline.export import calculator

    unit = load_predict_unit(str(exported / "inference_ckpt.pt"), inference_settings="traineval", device="cpu")
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((2, 2, 2))
    atoms.symbols[[0, 5]] = "Al"
    atoms.rattle(0.03, seed=0)
    ours = atoms.copy()
    atoms.calc = FAIRChemCalculator(unit, task_name="omat")
    ours.calc = calculator(exported)
    # same totals: element references and energy scale survived the translation
    assert (abs(atoms.get_potential_energy() - ours.get_potential_energy())
            < 1e-4 * max(1.0, abs(ours.get_potential_energy())))
    np.testing.assert_allclose(atoms.get_forces(), ours.get_forces(), atol=1e-5)
    assert abs(ours.get_potential_energy()) > 1.0  # references are in the totals, not zero

    MaxwellBoltzmannDistribution(atoms, temperature_K=300, rng=np.random.default_rng(0))
    start = atoms.get_positions().copy()
    steps = []
    md = VelocityVerlet(atoms, timestep=1.0 * units.fs)
    md.attach(lambda: steps.append(atoms.get_potential_energy()), interval=1)
    md.run(100)
    assert len(steps) == 101 and np.isfinite(steps).all()
    assert np.abs(atoms.get_positions() - start).max() > 1e-3  # atoms moved under fairchem's forces
