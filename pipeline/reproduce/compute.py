"""Training compute of a finished run: counted FLOPs per atom of its model (forward + backward of the training
loss, torch FlopCounterMode on a real batch of its data) x the atoms it processed (all ranks, metrics.jsonl)."""
from __future__ import annotations

import json
from pathlib import Path

from atomforge.pipeline.models.config import ModelConfig
from atomforge.pipeline.sweep.flops import count_flops, sample_batch
from atomforge.pipeline.train.run_dir import RunDir


def atoms_processed(run_dir: Path) -> tuple[int, int, float]:
    """(atoms, steps, wall seconds) summed over the run's logged steps (every step: log_every=1)."""
    atoms, steps, wall = 0.0, 0, 0.0
    for row in RunDir(run_dir).rows():
        if "atoms_per_s" in row and "step_time_s" in row:
            atoms += row["atoms_per_s"] * row["step_time_s"]
            steps += 1
            wall += row["step_time_s"]
    return int(round(atoms)), steps, wall


def run_compute(run_dir: Path, data_root: Path, max_atoms: int = 128) -> dict:
    mcfg = _model_config(run_dir)
    batch, _ = sample_batch(str(data_root), max_atoms)
    fpa = count_flops(mcfg, batch)
    atoms, steps, wall = atoms_processed(run_dir)
    return {"model": mcfg.name, "force_mode": mcfg.force_mode, "steps": steps, "atoms": atoms,
            "flops_per_atom": fpa, "flops": fpa * atoms, "wall_s": round(wall, 1)}


def _model_config(run_dir: Path):
    """The model a run trained, from its newest checkpoint's record."""
    rec = json.loads((RunDir(run_dir).checkpoint("latest") / "config.json").read_text())
    return ModelConfig(**rec["train"]["model"])
