"""Our exported models scored on a raw test set exactly as `reproduce zero-shot` scores the peers (same reader,
same metrics, the same energy-offset convention), and the table that puts them side by side."""
from __future__ import annotations

from pathlib import Path

from atomforge.pipeline.data.dataset import read_split
from atomforge.pipeline.evaluate.run import score_pairs
from atomforge.pipeline.models.folder import load
from atomforge.pipeline.models.predict import check_elements as _check_elements
from atomforge.pipeline.models.predict import predict_structures
from atomforge.pipeline.reproduce.runner import table
from atomforge.pipeline.reproduce.zero_shot import read_set, score_set


class _Exported:
    """The peer interface of atomforge.pipeline.reproduce.zero_shot over an exported folder."""

    def __init__(self, path: str | Path, device: str):
        self.model, self.device = load(path, device), device

    def check_elements(self, numbers) -> None:
        _check_elements(self.model, list(numbers))

    def predict(self, structures):
        return predict_structures(self.model, structures, device=self.device)


def score_model(path: str | Path, spec: dict, device: str = "cpu", limit: int | None = None) -> dict:
    structures, bad = read_set(spec, limit)
    return dict(score_set(_Exported(path, device), structures), quarantined=bad)


def zero_shot_rows(ours: dict, peers: dict, label: str) -> list[str]:
    """One row per (set, model): ours first, then every peer measured on the same set."""
    header = ["set", "model", "structures", "F MAE (eV/Å)", "F RMSE (eV/Å)", "E MAE (eV/atom)",
              "E MAE shifted (eV/atom)", "RE force error (eV/Å)"]
    rows = []
    for name, m in ours.items():
        for who, res in [(label, m)] + [(p, sets.get(name)) for p, sets in peers.items()]:
            if res:
                rows.append([name, who, res["n_structures"], res["force_mae"], res["force_rmse"],
                             res["energy_mae_per_atom"], res["energy_mae_per_atom_shifted"], res.get("re_force_rms")])
    return table(header, rows) + [""]


def score_split(path: str | Path, root: str | Path, split: str, task: str, device: str = "cpu") -> dict:
    """A built dataset's split scored through one named head of an exported model (forgetting: the corpus val
    error through the teacher head, before and after fine-tuning)."""
    model = load(path, device)
    if task not in model.tasks:
        raise ValueError(f"{path} has no head {task!r} (its heads: {model.tasks or 'one shared head'})")
    rep, _ = score_pairs(predict_structures(model, list(read_split(str(root), split)), device=device, task=task))
    a = rep["all"]
    return {"task": task, "split": split, "force_mae": a["force_mae"], "force_rmse": a["force_rmse"],
            "energy_mae_mev_atom": 1000.0 * a["energy_mae_per_atom"]}
