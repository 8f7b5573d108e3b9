"""Training defaults are written twice on purpose (the dataclass for the Python API, the yaml for hydra's
overrides); they must say the same thing, and every field a user may set must be overridable from the CLI."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import yaml

from atomforge.pipeline.train.config import TrainConfig

REPO = Path(__file__).resolve().parents[2]
SET_ELSEWHERE = {"run_dir", "data_root", "model", "deepspeed", "world_size", "seed"}  # their own config groups / keys


def test_train_yaml_and_dataclass_defaults_agree():
    y = yaml.safe_load((REPO / "configs" / "train" / "default.yaml").read_text())
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    assert set(y) <= set(fields), f"yaml keys the dataclass lacks: {sorted(set(y) - set(fields))}"
    missing = sorted(set(fields) - set(y) - SET_ELSEWHERE)
    assert not missing, ("TrainConfig fields not in configs/train/default.yaml (not overridable as train.<key>): "
                         f"{missing}")
    for k, v in y.items():
        f = fields[k]
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        assert default == v, f"train.{k}: yaml says {v!r}, TrainConfig says {default!r}"
