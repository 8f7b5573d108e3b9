"""`import atomforge`: the one-line API over an exported folder agrees with the calculator."""
from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk

pytestmark = pytest.mark.slow


def test_from_pretrained_calculator_and_batched_predict(exported):
    import atomforge

    model = atomforge.from_pretrained(exported)
    a = bulk("Cu", "fcc", a=3.61, cubic=True)
    b = a.repeat((2, 1, 1))
    b.symbols[1] = "Al"
    b.rattle(0.05, seed=1)
    preds = atomforge.predict(str(exported), [a, b])
    for atoms, p in zip((a, b), preds):
        atoms.calc = atomforge.calculator(model)
        assert p["energy"] == pytest.approx(atoms.get_potential_energy(), rel=1e-5)
        np.testing.assert_allclose(p["forces"], atoms.get_forces(), atol=1e-5)
    assert len(preds) == 2 and preds[1]["forces"].shape == (8, 3)
