"""Gradient accumulation: 2 micro-batches of B atoms give the same step as 1 batch holding both (real DeepSpeed
engine)."""
from __future__ import annotations

import socket

import pytest
import torch
from fairchem.core.datasets.atomic_data import atomicdata_list_to_batch

from atomforge.pipeline.data.loader import LoaderConfig, make_loader
from atomforge.pipeline.train.config import TrainConfig


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def one_step(tc: TrainConfig, batches) -> tuple[dict, dict]:
    from atomforge.pipeline.train.trainer import Trainer

    t = Trainer(tc)
    t.stream = iter(batches)  # the step's micro-batches, chosen by the test
    before = {n: p.detach().clone() for n, p in t.engine.module.named_parameters()}
    m = t.train_step()
    after = {n: p.detach().clone() for n, p in t.engine.module.named_parameters()}
    t.close()
    delta = torch.cat([(after[n] - before[n]).flatten() for n in before])
    assert delta.abs().max() > 0, "the step changed nothing"
    return m, delta


@pytest.fixture(scope="module")
def one_rank():
    """A 1-rank process group in this process (DeepSpeed keeps its groups: one per module, not per test)."""
    from atomforge.pipeline.train.trainer import init_distributed

    with pytest.MonkeyPatch.context() as mp:
        for k, v in {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "MASTER_ADDR": "127.0.0.1",
                     "MASTER_PORT": str(_port()), "DS_ACCELERATOR": "cpu"}.items():
            mp.setenv(k, v)
        init_distributed(TrainConfig(run_dir="", data_root=""))
        yield
        torch.distributed.destroy_process_group()


@pytest.mark.parametrize("stage", [0, 2])
def test_two_micro_batches_equal_one_double_batch(emt_dataset, tmp_path, one_rank, stage):
    it = iter(make_loader(LoaderConfig(root=str(emt_dataset), split="train", max_atoms=48, shuffle=False)))
    b1, b2 = next(it), next(it)
    while len(b1["natoms"]) == len(b2["natoms"]):  # unequal micro-batches (see below)
        b2 = next(it)
    # unequal micro-batches: a mean of per-micro-batch means would differ from the mean over the whole step
    both = atomicdata_list_to_batch(b1.batch_to_atomicdata_list() + b2.batch_to_atomicdata_list())
    common = dict(data_root=str(emt_dataset), steps=10, warmup_steps=0, lr=1e-3, weight_decay=0.0, grad_clip=0.0,
                  resume="none", wandb=False, progress=False, deepspeed={"stage": stage})
    m2, p2 = one_step(TrainConfig.from_dict({"run_dir": str(tmp_path / "a"), "grad_accum": 2, "max_atoms": 48,
                                             **common}), [b1, b2])
    m1, p1 = one_step(TrainConfig.from_dict({"run_dir": str(tmp_path / "b"), "grad_accum": 1, "max_atoms": 96,
                                             **common}), [both])
    assert m2["atoms"] == m1["atoms"]
    for k in ("loss", "energy", "forces", "grad_norm"):
        assert m2[k] == pytest.approx(m1[k], rel=1e-5), k
    # Adam's first step is ~lr * sign(g): parameters whose gradient is near eps may differ by rounding alone,
    # so the updates are compared as a whole and elementwise against a small fraction of lr.
    assert torch.linalg.vector_norm(p2 - p1) < 1e-3 * torch.linalg.vector_norm(p1)
    assert (p2 - p1).abs().max() < 0.02 * common["lr"]
