"""Reference predictions recorded inside training, and the check that an export reproduces them."""
from __future__ import annotations

import json
from itertools import islice
from pathlib import Path

import numpy as np

PREDICTIONS = "final_predictions.json"



def _structures(data_root: str, n: int, keys: list[str] | None = None):
    from pipeline.evaluate.standard import read_split

    for split in ("val", "test", "train"):
        try:
            structs = list(read_split(data_root, split)) if keys else list(islice(read_split(data_root, split), n))
        except (FileNotFoundError, ValueError):
            continue
        if keys:
            by_key = {s.info.get("key"): s for s in structs}
            if all(k in by_key for k in keys):
                return [by_key[k] for k in keys]
        elif structs:
            return structs
    raise FileNotFoundError(f"no structures{' with the recorded keys' if keys else ''} in {data_root}")


def record_predictions(tc, model, state: dict, out: Path, step: int) -> Path:
    """A fresh Potential with `state` (EMA weights + buffers) predicting the first val structures."""
    from pipeline.export.calculator import predict

    fresh = model.cfg.build({str(z): float(model.element_refs[z]) for z in model.elements}, model.energy_scale)
    # named_buffers() also lists non-persistent buffers; keep only what a state dict holds (missing keys still fail)
    fresh.load_state_dict({k: v for k, v in state.items() if k in fresh.state_dict()}, strict=True)
    fresh.eval()
    structs = _structures(tc.data_root, tc.final_predictions)
    preds = predict(fresh, [s.to_atoms() for s in structs])
    rows = [{"key": s.info.get("key"), "energy": p["energy"], "forces": p["forces"].tolist()} for s, p in zip(structs, preds)]
    Path(out).write_text(json.dumps({"data_root": str(tc.data_root), "step": step, "structures": rows}))
    return Path(out)


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
    from pipeline.export.calculator import predict

    rec = json.loads((Path(run_dir) / PREDICTIONS).read_text())
    rows = rec["structures"]
    structs = _structures(data_root or rec["data_root"], len(rows), [r["key"] for r in rows])
    atoms = [s.to_atoms() for s in structs]
    f_floor = float(getattr(model, "energy_scale", 0.0) or 0.0)
    preds = predict(model, atoms)
    first = [{"energy": p["energy"], "forces": p["forces"]} for p in preds]
    noise = max((_relative(first, predict(model, atoms), f_floor) for _ in range(repeats)), default=0.0)
    return _relative(rows, preds, f_floor), noise
