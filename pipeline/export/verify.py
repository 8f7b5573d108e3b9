"""The check that an export reproduces the predictions its run recorded at the end of training."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from atomforge.pipeline.models.predict import predict
from atomforge.pipeline.train.final_predictions import PREDICTIONS, recorded_structures


def _relative(rows: list[dict], preds: list[dict], f_floor: float) -> float:
    rel = 0.0
    for r, p in zip(rows, preds):
        f_ref = np.asarray(r["forces"])
        rel = max(rel, abs(p["energy"] - r["energy"]) / max(abs(r["energy"]), 1e-12),
                  float(np.abs(p["forces"] - f_ref).max() / max(np.abs(f_ref).max(), f_floor, 1e-12)))
    return rel


def compare(model, run_dir: str | Path, data_root: str | None = None, repeats: int = 0) -> tuple[float, float]:
    """(largest relative difference between `model` and the run's recorded predictions, the same measure between
    `repeats` + 1 evaluations of `model` itself). Energies relative to |E|; forces relative to the larger of the
    structure's max |F| and the training force scale: near equilibrium forces are ~0, and float32 sums in another
    order alone would move them by more than 1e-6 of themselves. The self-difference is the model's own
    repeatability: conservative forces (autograd through scatter sums) differ by ~1e-6 eV/Å between two
    evaluations of the same weights on the same input."""
    rec = json.loads((Path(run_dir) / PREDICTIONS).read_text())
    rows = rec["structures"]
    structs = recorded_structures(data_root or rec["data_root"], len(rows), [r["key"] for r in rows])
    atoms = [s.to_atoms() for s in structs]
    f_floor = float(getattr(model, "energy_scale", 0.0) or 0.0)
    preds = predict(model, atoms)
    first = [{"energy": p["energy"], "forces": p["forces"]} for p in preds]
    noise = max((_relative(first, predict(model, atoms), f_floor) for _ in range(repeats)), default=0.0)
    return _relative(rows, preds, f_floor), noise
