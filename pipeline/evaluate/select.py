"""`atomforge eval select run=<dir>`: rank a run's checkpoints by a validation score that includes the RE
force error, beside the all-atom force RMSE, and record the winner in <run>/best_checkpoint.json
(read by `export checkpoint=best`)."""
from __future__ import annotations

import json
from pathlib import Path

from atomforge.pipeline.data.dataset import read_split
from atomforge.pipeline.evaluate.rare_events import rare_event_metrics
from atomforge.pipeline.evaluate.standard import standard_metrics
from atomforge.pipeline.models.predict import predict_structures
from atomforge.pipeline.train.consolidate import checkpoint_model
from atomforge.pipeline.train.run_dir import RunDir


def selection_score(force_rmse: float, re_force_rms: float | None, re_weight: float = 1.0) -> float:
    """force_rmse + re_weight * re_force_rms; without RE atoms in the split it falls back to force_rmse."""
    return force_rmse + (re_weight * re_force_rms if re_force_rms is not None else 0.0)


def score_model(model, structures, device: str = "cpu", re_weight: float = 1.0) -> dict:
    pairs = list(predict_structures(model, structures, device=device))
    std = standard_metrics(pairs)["all"]
    re, _ = rare_event_metrics(pairs)
    row = {"force_rmse": std["force_rmse"], "force_mae": std["force_mae"],
           "energy_mae_per_atom": std["energy_mae_per_atom"], "re_force_rms": re.get("re_force_rms"),
           "re_force_mae": re.get("re_force_mae"), "n_re_atoms": re["n_re_atoms"]}
    row["selection_score"] = selection_score(row["force_rmse"], row["re_force_rms"], re_weight)
    return row


def select_checkpoints(run_dir: str, data_root: str, split: str = "val", re_weight: float = 1.0, device: str = "cpu",
                       ema: bool = True, progress: bool = True) -> dict:
    from tqdm import tqdm

    rd = RunDir(run_dir)
    run, cks = rd.path, rd.complete_checkpoints()
    if not cks:
        raise FileNotFoundError(f"no complete checkpoint under {rd.checkpoints}")
    structures = list(read_split(data_root, split))
    if not structures:
        raise ValueError(f"split {split!r} of {data_root} is empty: nothing to select on")
    rows = {}
    for ck in tqdm(cks, desc="scoring checkpoints", disable=not progress):  # each as its export would hold it
        rows[ck.name] = score_model(checkpoint_model(ck, ema, device), structures, device, re_weight)
    by_score = sorted(rows, key=lambda t: rows[t]["selection_score"])
    by_avg = sorted(rows, key=lambda t: rows[t]["force_rmse"])
    for t in rows:
        rows[t]["rank_selection_score"] = by_score.index(t) + 1
        rows[t]["rank_force_rmse"] = by_avg.index(t) + 1
    result = {"run": str(run), "data": str(data_root), "split": split, "re_weight": re_weight, "best": by_score[0],
              "best_by_force_rmse": by_avg[0], "rankings_agree": by_score == by_avg, "checkpoints": rows,
              "definition": "selection_score = force_rmse + re_weight * re_force_rms (eV/Å, lower is better)"}
    if all(r["n_re_atoms"] == 0 for r in rows.values()):
        result["warning"] = f"split {split!r} has no rare-event atoms: selection_score equals force_rmse"
    analysis_only = split == "test"  # a checkpoint is never chosen on the test set
    if analysis_only:
        result["note"] = ("ranking on the test split: analysis only, best_checkpoint.json (chosen on validation data) "
                          "is left as it is")
    stem = run / ("ranking-test" if analysis_only else "selection")
    result["files"] = [str(stem) + ".json", str(stem) + ".md"]
    Path(result["files"][0]).write_text(json.dumps(result, indent=1))
    Path(result["files"][1]).write_text(_markdown(result))
    if analysis_only:
        return result
    rd.best.write_text(json.dumps({"tag": by_score[0], "metric": "selection_score",
                                                          "value": rows[by_score[0]]["selection_score"],
                                                          "split": split}, indent=1))
    return result


def _markdown(r: dict) -> str:
    cols = ["selection_score", "rank_selection_score", "force_rmse", "rank_force_rmse", "re_force_rms", "re_force_mae",
            "n_re_atoms"]
    fmt = lambda v: f"{v:.5g}" if isinstance(v, float) else str(v)  # noqa: E731
    lines = [f"# Checkpoint selection for {r['run']}", "", r["definition"], "",
             "| checkpoint | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    lines += [f"| {t} | " + " | ".join(fmt(row[c]) for c in cols) + " |" for t, row in r["checkpoints"].items()]
    lines += ["", f"best by selection_score: {r['best']}; best by force_rmse: {r['best_by_force_rmse']}"]
    return "\n".join(lines) + "\n"
