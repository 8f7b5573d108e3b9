"""One energy head per dataset/task: the sample's dataset name picks its head; the backbone is shared."""
from __future__ import annotations

import pytest
import torch
from ase.build import bulk
from fairchem.core.datasets.atomic_data import AtomicData, atomicdata_list_to_batch

from pipeline.models.config import ModelConfig


def _same_structure_two_tasks(tasks=("mptrj", "omat")):
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
    atoms.rattle(0.05, seed=0)
    return atomicdata_list_to_batch([AtomicData.from_ase(atoms, task_name=t) for t in tasks])


@pytest.mark.parametrize("mode", ["direct", "conservative"])
def test_two_tasks_give_different_energies_for_one_structure(mode):
    torch.manual_seed(0)
    model = ModelConfig(name="esen_xs", force_mode=mode, tasks=["omat", "mptrj"]).build({29: -3.5}, 1.0)
    out = model(_same_structure_two_tasks())
    assert out["energy"].shape == (2,) and out["forces"].shape == (8, 3)
    assert torch.isfinite(out["energy"]).all() and torch.isfinite(out["forces"]).all()
    assert abs(float(out["energy"][0] - out["energy"][1])) > 1e-6  # same structure, different heads
    out["energy_nn"].sum().backward()
    experts = [p for n, p in model.named_parameters() if "output_heads" in n and p.grad is not None]
    assert experts and all(torch.isfinite(p.grad).all() for p in experts)


def test_shared_head_gives_equal_energies_and_unknown_task_is_named():
    torch.manual_seed(0)
    shared = ModelConfig(name="esen_xs").build({29: -3.5}, 1.0)
    e = shared(_same_structure_two_tasks())["energy"]
    assert torch.allclose(e[0], e[1])
    per_task = ModelConfig(name="esen_xs", tasks=["omat", "mptrj"]).build({29: -3.5}, 1.0)
    with pytest.raises(ValueError, match="oc20"):
        per_task(_same_structure_two_tasks(("omat", "oc20")))
