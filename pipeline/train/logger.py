"""metrics.jsonl (always), wandb (offline unless the user configured a key), on rank 0 only."""
from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

from atomforge.pipeline.train.run_dir import RunDir


def wandb_mode() -> str:
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    if (os.environ.get("WANDB_API_KEY")
            or (Path.home() / ".netrc").is_file() and "api.wandb.ai" in (Path.home() / ".netrc").read_text()):
        return "online"
    return "offline"


class MetricsLogger:
    def __init__(self, run_dir: Path, config: dict, use_wandb: bool, project: str, resume_step: int = 0):
        self.path = RunDir(run_dir).metrics
        if resume_step and self.path.exists():  # drop lines past the resumed step: the rerun writes them again
            lines = [ln for ln in self.path.read_text().splitlines()
                     if ln and json.loads(ln).get("step", 0) <= resume_step]
            self.path.write_text("".join(ln + "\n" for ln in lines))
        self.f = open(self.path, "a")
        self.run = None
        if use_wandb:
            import wandb

            self.run = wandb.init(project=project, dir=str(run_dir), mode=wandb_mode(), config=config,
                                  name=run_dir.name, resume="allow", id=_run_id(run_dir))

    def log(self, row: dict):
        self.f.write(json.dumps(row) + "\n")
        self.f.flush()
        if self.run is not None:
            self.run.log(row, step=row.get("step"))

    def close(self):
        self.f.close()
        if self.run is not None:
            self.run.finish()


def _run_id(run_dir: Path) -> str:
    f = run_dir / "wandb_id"
    if not f.exists():
        f.write_text(uuid.uuid4().hex[:12])
    return f.read_text().strip()
