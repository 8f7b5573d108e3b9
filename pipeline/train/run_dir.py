"""A training run's folder, the one place that knows its layout:

    <run>/train_config.json      what every rank (and a SLURM requeue) starts from
    <run>/metrics.jsonl          one row per logged step, validation and final rows
    <run>/checkpoints/step_N/    DeepSpeed's files + ema.pt + trainer_state.json, COMPLETE written last
    <run>/summary.json, ranks.json, final_predictions.json   written when training ends
    <run>/best_checkpoint.json   the checkpoint chosen on validation data (`atomforge eval select`)
    <run>/hub/, <run>/eval/      an export of the run and its evaluation, where the CLI and recipes put them
"""
from __future__ import annotations

import json
from pathlib import Path

MARKER = "COMPLETE"  # written last into a checkpoint folder: without it the folder is not a checkpoint


def tag_for(step: int) -> str:
    return f"step_{step:08d}"


def complete_checkpoints(root: Path) -> list[Path]:
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith("step_") and (p / MARKER).is_file())


class RunDir:
    def __init__(self, path):
        self.path = Path(path)

    config = property(lambda self: self.path / "train_config.json")
    metrics = property(lambda self: self.path / "metrics.jsonl")
    checkpoints = property(lambda self: self.path / "checkpoints")
    summary = property(lambda self: self.path / "summary.json")
    ranks = property(lambda self: self.path / "ranks.json")
    best = property(lambda self: self.path / "best_checkpoint.json")
    hub = property(lambda self: self.path / "hub")
    eval = property(lambda self: self.path / "eval")

    def rows(self) -> list[dict]:
        """Every row of metrics.jsonl (training steps, validations and the final row), in order."""
        if not self.metrics.is_file():
            return []
        return [json.loads(ln) for ln in self.metrics.read_text().splitlines() if ln.strip()]

    def complete_checkpoints(self) -> list[Path]:
        return complete_checkpoints(self.checkpoints)

    def checkpoint(self, which: str = "latest") -> Path:
        """A complete checkpoint folder: `latest`, `best` (best_checkpoint.json), a step number or a tag."""
        cks = self.complete_checkpoints()
        if not cks:
            raise FileNotFoundError(f"no complete checkpoint under {self.checkpoints}")
        if which == "latest":
            return cks[-1]
        if which == "best":
            if not self.best.is_file():
                raise FileNotFoundError(f"{self.best} not found: run `atomforge eval select` first or use "
                                        "checkpoint=latest")
            return self.checkpoints / json.loads(self.best.read_text())["tag"]
        tag = which if which.startswith("step_") else tag_for(int(which))
        if not (self.checkpoints / tag / MARKER).is_file():
            raise FileNotFoundError(f"checkpoint {tag} not found or incomplete in {self.checkpoints}")
        return self.checkpoints / tag

    def is_run(self) -> bool:
        return self.checkpoints.is_dir()
