"""model.compile: compiled training resumes exactly and exports through the round-trip check; where a graph
cannot compile (conservative forces in training, ZeRO-3, a dynamo failure) it runs eager with one warning."""
from __future__ import annotations

import json
import logging

import pytest
import torch
from torch._dynamo.exc import Unsupported

from helpers import step_rows as losses, train

from atomforge.pipeline.models.config import ModelConfig
from atomforge.pipeline.models.potential import build_model

TINY = {"sphere_channels": 8, "hidden_channels": 8, "edge_channels": 8, "num_distance_basis": 8, "lmax": 1, "mmax": 1,
        "num_layers": 1}
STEPS, STOP = 8, 4
COMMON = dict(world_size=1, steps=STEPS, max_atoms=64, deepspeed={"stage": 2}, ckpt_every=STOP, keep_last=2,
              warmup_steps=2)


@pytest.mark.slow
def test_compiled_training_resumes_exactly_and_exports(emt_dataset, tmp_path):
    from atomforge.pipeline.export import export, load

    # aot_eager: dynamo + AOTAutograd trace forward and backward as inductor would, without its C++ codegen
    model = {"name": "esen_xs", "backbone": TINY, "compile": True, "compile_backend": "aot_eager"}
    full_dir = train(tmp_path / "full", emt_dataset, model=model, **COMMON)
    full = losses(full_dir)
    assert sorted(full) == list(range(1, STEPS + 1))
    # a new compiled run resumed from the uninterrupted run's mid-way checkpoint continues it step for step
    # (stopping by signal and resuming into the same folder is tests/train/test_resume.py's; one compile fewer)
    mid = full_dir / "checkpoints" / f"step_{STOP:08d}"
    resumed = losses(train(tmp_path / "resumed", emt_dataset, model=model, resume=str(mid), **COMMON))
    assert sorted(resumed) == list(range(STOP + 1, STEPS + 1))
    for s in resumed:
        for k in ("loss", "energy", "forces"):
            assert resumed[s][k] == pytest.approx(full[s][k], rel=1e-5, abs=1e-12), (s, k)
    # the same maths as eager: the first step (before any update) agrees with an eager run's
    eager = losses(train(tmp_path / "eager", emt_dataset, model={**model, "compile": False}, **{**COMMON, "steps": 1}))
    assert eager[1]["loss"] == pytest.approx(full[1]["loss"], rel=1e-4)
    hub = export(str(full_dir), str(tmp_path / "hub"))  # refuses an export that does not reproduce the run
    cfg = json.loads((hub / "config.json").read_text())
    assert cfg["round_trip"] is not None and "compile" not in cfg["architecture"]  # runtime choice, not architecture
    assert load(str(hub)).compiled is False


def test_compile_refusals_warn_once_and_train_eager(caplog):
    with caplog.at_level(logging.WARNING, logger="atomforge.pipeline.models.potential"):
        cons = build_model(ModelConfig(name="esen_xs", force_mode="conservative", backbone=TINY))
        assert cons.compile_network(training=True) is False and not cons.compiled
        direct = build_model(ModelConfig(name="esen_xs", backbone=TINY))
        assert direct.compile_network(training=True, zero_stage=3) is False
    msgs = [r.getMessage() for r in caplog.records]
    assert len(msgs) == 2 and "double backward" in msgs[0] and "ZeRO-3" in msgs[1]
    assert all("\n" not in m for m in msgs)
    assert cons.compile_network(training=False, backend="eager") is True  # inference: one backward, compiles


def test_a_graph_that_fails_to_compile_runs_eager_with_one_warning(caplog):
    torch.manual_seed(0)
    model = build_model(ModelConfig(name="esen_xs", backbone=TINY), {"29": -3.5})
    eager = build_model(ModelConfig(name="esen_xs", backbone=TINY), {"29": -3.5})
    eager.load_state_dict(model.state_dict())
    assert model.compile_network(training=True, backend="eager")

    def fails(*args, **kwargs):
        raise Unsupported("a graph dynamo cannot trace")

    model.model._compiled_call_impl = fails
    batch = _batch()
    with caplog.at_level(logging.WARNING, logger="atomforge.pipeline.models.potential"):
        first, second = model(batch), model(batch)
    msgs = [r.getMessage() for r in caplog.records]
    assert len(msgs) == 1 and "running eager" in msgs[0] and "Unsupported" in msgs[0] and not model.compiled
    ref = eager(batch)
    for out in (first, second):
        assert torch.allclose(out["forces"], ref["forces"], atol=1e-6) and torch.allclose(out["energy"], ref["energy"])


def _batch():
    from ase.build import bulk

    from atomforge.data_prep.structure import Structure
    from atomforge.pipeline.data.convert import structures_to_batch

    atoms = bulk("Cu", "fcc", a=3.61, cubic=True)
    atoms.rattle(0.05, seed=0)
    return structures_to_batch([Structure.from_atoms(atoms, energy=0.0)])
