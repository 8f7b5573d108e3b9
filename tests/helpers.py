"""Helpers the tests import (`from helpers import train`): building small real datasets and running real training."""
from __future__ import annotations

from pathlib import Path

# what the fault and hostile-input tests record; tests/conftest.py prints both lines at the end of the run
FAULTS = {"injected": 0, "survived": 0, "samples_lost": 0}
HOSTILE = {"tried": 0, "handled": 0, "lost": 0}

SMALL_EMT = {"type": "emt", "elements": ["Cu", "Al"],
             "per_kind": {"bulk": 8, "strain": 8, "rattle": 8, "vacancy": 8, "surface": 4, "md": 16}}


def build_dataset(out: Path, sources: list[dict], **kw) -> Path:
    from atomforge.data_prep.build import BuildConfig, build

    build(BuildConfig(out=str(out), sources=sources, **kw), progress=False)
    return out


def train(run_dir: Path, data_root: Path, **overrides) -> Path:
    """Run real training (torchrun + DeepSpeed over gloo when world_size > 1); returns the run dir."""
    from atomforge.pipeline.evaluate.after_training import select_after_training
    from atomforge.pipeline.train.config import TrainConfig
    from atomforge.pipeline.train.launch import launch

    cfg = {"run_dir": str(run_dir), "data_root": str(data_root), "steps": 6, "max_atoms": 128, "wandb": False,
           "progress": False, "ckpt_every": 0, "warmup_steps": 2, "resume": "auto"}
    cfg.update(overrides)
    tc = TrainConfig.from_dict(cfg)
    rc = launch(tc)
    assert rc == 0, f"training exited with {rc}"
    select_after_training(tc)  # train.select_best, as the CLI does after training
    return run_dir


def step_rows(run_dir: Path) -> dict[int, dict]:
    """A run's training rows from metrics.jsonl, by step (validation and final rows left out)."""
    from atomforge.pipeline.train.run_dir import RunDir

    return {r["step"]: r for r in RunDir(run_dir).rows() if "loss" in r}
