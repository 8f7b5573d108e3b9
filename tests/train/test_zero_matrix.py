"""The supported DeepSpeed matrix on 2 gloo ranks: ZeRO 0-3 with direct forces, ZeRO 0-2 with conservative forces."""
from __future__ import annotations

import json
import math

import pytest

from helpers import train
from atomforge.pipeline.train.config import DeepSpeedConfig, TrainConfig
from atomforge.pipeline.train.run_dir import RunDir


def rows(run_dir) -> list[dict]:
    return [r for r in RunDir(run_dir).rows() if "loss" in r]


def test_zero3_conservative_is_refused_with_the_alternative(tmp_path):
    with pytest.raises(ValueError, match="ZeRO-3.*deepspeed=zero2"):
        TrainConfig.from_dict({"run_dir": str(tmp_path), "data_root": str(tmp_path), "deepspeed": {"stage": 3},
                               "model": {"force_mode": "conservative"}})
    with pytest.raises(ValueError, match="offload_param needs ZeRO stage 3"):
        TrainConfig.from_dict({"run_dir": str(tmp_path), "data_root": str(tmp_path),
                               "deepspeed": {"stage": 2, "offload_param": True}})


def test_cli_refuses_zero3_conservative_in_one_line(capsys, emt_dataset, tmp_path):
    from atomforge.pipeline.cli import main

    rc = main(["train", "deepspeed=zero3", "model.force_mode=conservative", f"data.root={emt_dataset}",
               f"run_dir={tmp_path}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "zero2" in err[0], err


@pytest.mark.slow
@pytest.mark.parametrize("stage", [0, 1, 3])  # ZeRO-2 direct is covered (60 steps) by test_resume
def test_direct_forces_loss_falls(emt_dataset, tmp_path, stage):
    run = train(tmp_path / f"z{stage}", emt_dataset, world_size=2, steps=16, max_atoms=64, warmup_steps=2, lr=3e-3,
                deepspeed={"stage": stage})
    r = rows(run)
    assert [x["step"] for x in r] == list(range(1, 17))
    assert all(math.isfinite(x["loss"]) and math.isfinite(x["grad_norm"]) and x["grad_norm"] > 0 for x in r)
    first, last = sum(x["loss"] for x in r[:4]), sum(x["loss"] for x in r[-4:])
    assert last < 0.8 * first, (first, last)
    assert json.loads((run / "ranks.json").read_text())["steps_per_rank"] == [16, 16]


@pytest.mark.slow
@pytest.mark.parametrize("stage", [0, 1, 2])
def test_conservative_forces_train(emt_dataset, tmp_path, stage):
    run = train(tmp_path / f"c{stage}", emt_dataset, world_size=2, steps=8, max_atoms=64, warmup_steps=1, lr=3e-3,
                deepspeed={"stage": stage}, model={"name": "esen_xs", "force_mode": "conservative", "stress": True})
    r = rows(run)
    assert len(r) == 8 and all(math.isfinite(x["loss"]) and x["grad_norm"] > 0 for x in r)
    assert "stress" in r[0]
    first, last = sum(x["loss"] for x in r[:3]), sum(x["loss"] for x in r[-3:])
    assert last < first, (first, last)
    assert json.loads((run / "ranks.json").read_text())["steps_per_rank"] == [8, 8]


def _cpu_bf16() -> bool:
    import torch

    return torch.cuda.is_available() or torch.ops.mkldnn._is_mkldnn_bf16_supported()


@pytest.mark.slow
@pytest.mark.skipif(not _cpu_bf16(), reason="this CPU has no bf16 kernels")
def test_bf16_direct_zero2_loss_falls(emt_dataset, tmp_path):
    run = train(tmp_path / "bf16", emt_dataset, world_size=2, steps=16, max_atoms=64, warmup_steps=2, lr=3e-3,
                deepspeed={"stage": 2, "bf16": True})
    r = rows(run)
    assert len(r) == 16 and all(math.isfinite(x["loss"]) for x in r)
    first, last = sum(x["loss"] for x in r[:4]), sum(x["loss"] for x in r[-4:])
    assert last < 0.8 * first, (first, last)


def test_bf16_is_autocast_over_fp32_weights():
    from atomforge.pipeline.train.trainer import deepspeed_json

    cfg = deepspeed_json(TrainConfig(run_dir="", data_root="", deepspeed=DeepSpeedConfig(stage=2, bf16=True)))
    assert cfg["torch_autocast"] == {"enabled": True, "dtype": "bfloat16"} and not cfg.get("bf16", {}).get("enabled")
