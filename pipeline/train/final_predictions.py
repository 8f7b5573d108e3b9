"""The EMA model's predictions on a few recorded structures at the end of training: the reference an export of
the run must reproduce (atomforge.pipeline.export.verify.compare)."""
from __future__ import annotations

import json
from itertools import islice
from pathlib import Path

from atomforge.pipeline.data.dataset import read_split
from atomforge.pipeline.models.potential import build_model
from atomforge.pipeline.models.predict import predict

PREDICTIONS = "final_predictions.json"


def recorded_structures(data_root: str, n: int, keys: list[str] | None = None):
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
    fresh = build_model(model.cfg, {str(z): float(model.element_refs[z]) for z in model.elements}, model.energy_scale)
    # named_buffers() also lists non-persistent buffers; keep only what a state dict holds (missing keys still fail)
    fresh.load_state_dict({k: v for k, v in state.items() if k in fresh.state_dict()}, strict=True)
    fresh.eval()
    structs = recorded_structures(tc.data_root, tc.final_predictions)
    preds = predict(fresh, [s.to_atoms() for s in structs])
    rows = [{"key": s.info.get("key"), "energy": p["energy"], "forces": p["forces"].tolist()}
            for s, p in zip(structs, preds)]
    Path(out).write_text(json.dumps({"data_root": str(tc.data_root), "step": step, "structures": rows}))
    return Path(out)
