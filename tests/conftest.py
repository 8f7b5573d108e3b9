"""Shared fixtures: small real datasets built once per session, and a helper to run real training."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"
os.environ.setdefault("TORCH_EXTENSIONS_DIR", str(REPO / "build" / "torch_extensions"))
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("DS_ACCELERATOR", "cpu")

SMALL_EMT = {"type": "emt", "elements": ["Cu", "Al"], "per_kind": {"bulk": 8, "strain": 8, "rattle": 8, "vacancy": 8, "surface": 4, "md": 16}}


def build_dataset(out: Path, sources: list[dict], **kw) -> Path:
    from data_prep.build import BuildConfig, build

    build(BuildConfig(out=str(out), sources=sources, **kw), progress=False)
    return out


@pytest.fixture(scope="session")
def emt_dataset(tmp_path_factory) -> Path:
    """~100 EMT Cu/Al structures (bulk, strain, rattle, vacancy, surface, MD) as built shards."""
    return build_dataset(tmp_path_factory.mktemp("data") / "emt_small", [SMALL_EMT], workers=1)


def train(run_dir: Path, data_root: Path, **overrides) -> Path:
    """Run real training (torchrun + DeepSpeed over gloo when world_size > 1); returns the run dir."""
    from pipeline.train.config import TrainConfig
    from pipeline.train.launch import launch

    cfg = {"run_dir": str(run_dir), "data_root": str(data_root), "steps": 6, "max_atoms": 128, "wandb": False,
           "progress": False, "ckpt_every": 0, "warmup_steps": 2, "resume": "auto"}
    cfg.update(overrides)
    rc = launch(TrainConfig.from_dict(cfg))
    assert rc == 0, f"training exited with {rc}"
    return run_dir
