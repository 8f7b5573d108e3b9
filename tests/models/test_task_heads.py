"""One energy head per dataset/task: the sample's dataset name picks its head; the backbone is shared."""
from __future__ import annotations

import pytest
import torch
from ase.build import bulk
from fairchem.core.datasets.atomic_data import AtomicData, atomicdata_list_to_batch

from atomforge.pipeline.models.config import ModelConfig
from atomforge.pipeline.models.potential import build_model


def _same_structure_two_tasks(tasks=("mptrj", "omat")):
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
    atoms.rattle(0.05, seed=0)
    return atomicdata_list_to_batch([AtomicData.from_ase(atoms, task_name=t) for t in tasks])


@pytest.mark.parametrize("mode", ["direct", "conservative"])
def test_two_tasks_give_different_energies_for_one_structure(mode):
    torch.manual_seed(0)
    model = build_model(ModelConfig(name="esen_xs", force_mode=mode, tasks=["omat", "mptrj"]), {29: -3.5}, 1.0)
    out = model(_same_structure_two_tasks())
    assert out["energy"].shape == (2,) and out["forces"].shape == (8, 3)
    assert torch.isfinite(out["energy"]).all() and torch.isfinite(out["forces"]).all()
    assert abs(float(out["energy"][0] - out["energy"][1])) > 1e-6  # same structure, different heads
    out["energy_nn"].sum().backward()
    experts = [p for n, p in model.named_parameters() if "output_heads" in n and p.grad is not None]
    assert experts and all(torch.isfinite(p.grad).all() for p in experts)


def test_shared_head_gives_equal_energies_and_unknown_task_is_named():
    torch.manual_seed(0)
    shared = build_model(ModelConfig(name="esen_xs"), {29: -3.5}, 1.0)
    e = shared(_same_structure_two_tasks())["energy"]
    assert torch.allclose(e[0], e[1])
    per_task = build_model(ModelConfig(name="esen_xs", tasks=["omat", "mptrj"]), {29: -3.5}, 1.0)
    with pytest.raises(ValueError, match="oc20"):
        per_task(_same_structure_two_tasks(("omat", "oc20")))


def _si_batch(tasks):
    from atomforge.data_prep.structure import Structure
    from atomforge.pipeline.data.convert import structures_to_batch

    a = bulk("Si", "diamond", a=5.43, cubic=True)
    a.rattle(0.05, seed=1)
    s = Structure.from_atoms(a, energy=0.0)
    return structures_to_batch([s] * len(tasks), list(tasks)) if tasks else structures_to_batch([s])


def _three_heads(mode):
    torch.manual_seed(0)
    cfg = ModelConfig(name="esen_xs", force_mode=mode, tasks=["teacher", "emt", "dft"], default_task="dft",
                      task_references={"teacher": {"14": -5.0}, "dft": {"14": -1.0}})
    return build_model(cfg, {"14": -3.0}, 1.0)


def test_each_task_adds_its_own_element_references_and_unnamed_structures_run_the_default_head():
    model = _three_heads("direct")
    b = _si_batch(["teacher", "emt", "dft"])
    refs = model.reference_energy(b)
    assert refs.tolist() == [-40.0, -24.0, -8.0]  # 8 Si atoms x (task refs; emt has none: the model's own)
    out = model(b)
    assert torch.allclose(out["energy"] - out["energy_nn"].double(), refs)
    plain = _si_batch([])  # no task name: the default head and its references
    assert model.task_names(plain) == ["dft"]
    assert float(model(plain)["energy"][0]) == pytest.approx(float(out["energy"][2]), abs=1e-5)
    with pytest.raises(ValueError, match="default_task"):
        ModelConfig(tasks=["a"], default_task="b")
    with pytest.raises(ValueError, match="task_references"):
        ModelConfig(tasks=["a"], task_references={"b": {"14": 1.0}})


@pytest.mark.parametrize("mode", ["direct", "conservative"])
def test_single_task_view_computes_exactly_what_that_head_computes(mode):
    from atomforge.pipeline.models.tasks import single_task

    model = _three_heads(mode)
    for task in model.tasks:
        one = single_task(model, task)
        assert not one.tasks
        a, b = model(_si_batch([task])), one(_si_batch([]))
        assert float(a["energy"][0]) == pytest.approx(float(b["energy"][0]), abs=1e-6)
        assert torch.allclose(a["forces"], b["forces"], atol=1e-6)
    with pytest.raises(ValueError, match="not one of"):
        single_task(model, "nope")


def test_a_new_task_starts_as_a_copy_of_its_source_head_with_its_own_references():
    from atomforge.pipeline.models.tasks import add_task

    model = _three_heads("direct")
    cfg, sd = add_task(model.cfg, model.state_dict(), "target", "teacher", {"14": -7.0})
    assert cfg.tasks == ["dft", "emt", "target", "teacher"] and cfg.default_task == "target"
    new = build_model(cfg, {"14": -3.0}, 1.0)
    new.load_state_dict(sd, strict=True)
    old_e = model(_si_batch(["teacher"]))
    new_e = new(_si_batch([]))  # the default head: target
    # same network output as the teacher head; the references differ by 8 x (-7 - -5) eV
    assert float(new_e["energy_nn"][0]) == pytest.approx(float(old_e["energy_nn"][0]), abs=1e-6)
    assert float(new_e["energy"][0] - old_e["energy"][0]) == pytest.approx(-16.0, abs=1e-5)
    for t in ("dft", "emt", "teacher"):  # the parent's heads are kept as they were
        assert float(new(_si_batch([t]))["energy"][0]) == pytest.approx(float(model(_si_batch([t]))["energy"][0]),
                                                                         abs=1e-6)
    with pytest.raises(ValueError, match="init_task_from"):
        add_task(model.cfg, model.state_dict(), "target", "missing", {})
