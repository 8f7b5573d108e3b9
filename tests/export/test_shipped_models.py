"""The models committed under models/ (and the model folders the committed results ship beside their reports):
listed in the README, at most 50 MB, and loadable offline in one line, as an ASE calculator and through
fairchem's calculator, giving the same energies and the forces -dE/dx of a conservative model."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
MODELS = sorted(p for p in (REPO / "models").iterdir() if (p / "config.json").is_file())
RESULT_MODELS = sorted(p.parent for p in (REPO / "results").glob("*/model/config.json"))


def _mb(folder: Path) -> float:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 2**20


def test_at_least_the_foundation_model_is_shipped_and_listed():
    names = [p.name for p in MODELS]
    assert "atomforge-fm-xs" in names
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Pre-trained models", 1)[1].split("\n## ", 1)[0]
    for n in names:
        assert f"models/{n}" in section, f"{n} is not listed under 'Pre-trained models' in the README"


@pytest.mark.parametrize("folder", MODELS + RESULT_MODELS, ids=lambda p: str(p.relative_to(REPO)))
def test_shipped_folder_is_small_and_loads_offline_in_one_line(folder, monkeypatch):
    import atomforge
    from ase.build import bulk

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert _mb(folder) <= 50.0
    cfg = json.loads((folder / "config.json").read_text())
    z = cfg["elements"]
    symbol = "Si" if 14 in z else None
    assert symbol, "the foundation model and the fine-tuned results all cover silicon"
    atoms = bulk("Si", "diamond", a=5.43, cubic=True)
    atoms.rattle(0.03, seed=0)
    atoms.calc = atomforge.calculator(str(folder))
    e, f = atoms.get_potential_energy(), atoms.get_forces()
    assert np.isfinite(e) and np.isfinite(f).all()
    if cfg["architecture"]["force_mode"] == "conservative":  # forces are -dE/dx: a finite difference agrees
        d = 1e-2  # float32 network energies: a larger step keeps rounding out of the difference
        p = atoms.copy()
        p.calc = atoms.calc
        p.positions[0, 0] += d
        ep = p.get_potential_energy()
        p.positions[0, 0] -= 2 * d
        em = p.get_potential_energy()
        assert -(ep - em) / (2 * d) == pytest.approx(f[0, 0], abs=5e-3)
    if (folder / "inference_ckpt.pt").is_file():
        b = atoms.copy()
        b.calc = atomforge.fairchem_calculator(str(folder))
        assert b.get_potential_energy() == pytest.approx(e, abs=1e-4)
        assert np.abs(b.get_forces() - f).max() < 1e-4



@pytest.mark.slow
def test_the_foundation_model_runs_compiled_on_a_chosen_head():
    """compile=True on a multi-head model: the calculator runs the one head asked for (the mixture-of-experts head
    of the whole model fails under inductor), on a copy whose weights need no gradient; the user's model is kept."""
    import atomforge
    from ase.build import bulk

    from atomforge.pipeline.models.folder import load

    model = load(REPO / "models" / "atomforge-fm-xs")
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    atoms = bulk("Si", "diamond", a=5.43, cubic=True)
    atoms.rattle(0.05, seed=1)
    atoms.calc = atomforge.calculator(model, compile=True, task="silicon_re")
    assert atoms.calc.net.compiled and not atoms.calc.net.tasks
    assert not any(p.requires_grad for p in atoms.calc.net.parameters())
    assert model.tasks and not model.compiled
    assert trainable == [n for n, p in model.named_parameters() if p.requires_grad]
    eager, default = atoms.copy(), atoms.copy()
    eager.calc = atomforge.calculator(model, task="silicon_re")
    default.calc = atomforge.calculator(model)
    for _ in range(2):  # a second geometry reuses the compiled graph
        e = eager.get_potential_energy()
        assert atoms.get_potential_energy() == pytest.approx(e, abs=1e-4)
        assert np.abs(atoms.get_forces() - eager.get_forces()).max() < 1e-4
        assert abs(default.get_potential_energy() - e) > 1e-2  # the head asked for is the head that ran
        for a in (atoms, eager, default):
            a.positions[0, 0] += 0.02
