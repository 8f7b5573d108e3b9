"""What the training loader draws from: one dataset, a weighted mix, and rare-event structures drawn more often.

Up-weighting reuses the mixer: each dataset appears twice, once whole (weight = its size) and once with only its
samples flagged `rare_event` (weight = (k - 1) x their count), and the epoch is sized so that every structure is
seen once and every rare-event structure k times per epoch (the paper's RE-enhanced training, without copying data).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from atomforge.pipeline.data.dataset import BuiltDataset

RE_FLAG = "rare_event"


def _counts(root: str) -> tuple[int, int]:
    """(training structures, those flagged rare_event), from one read of the manifest."""
    t = BuiltDataset(root).manifest(["split", "flags"]).to_pylist()
    train = [r["flags"] or () for r in t if r["split"] == "train"]
    return len(train), sum(RE_FLAG in f for f in train)


def train_mix(data_root: str, mix: list | None, temperature: float,
              re_upweight: float) -> tuple[list | None, int | None]:
    """(mix entries for LoaderConfig.mix, epoch size) — (None, None) for a plain single dataset."""
    if re_upweight < 1:
        raise ValueError(f"re_upweight must be >= 1 (1: no up-weighting), got {re_upweight}")
    entries = [dict(m) for m in mix] if mix else None
    if re_upweight == 1:
        return entries, None
    if entries and any(m.get("weight") is not None for m in entries):
        raise ValueError("re_upweight works with size-proportional mixing; drop the explicit mix weights or set "
                         "re_upweight=1")
    if temperature != 1.0:
        raise ValueError("re_upweight needs mix_temperature=1 (each structure once, rare-event ones re_upweight times)")
    out, total = [], 0
    for m in entries or [{"root": data_root}]:
        n, n_re = _counts(m["root"])
        out.append({**m, "weight": float(n)})  # keeps the entry's task (energy head)
        total += n
        if n_re:
            out.append({**m, "weight": (re_upweight - 1.0) * n_re, "flag": RE_FLAG})
            total += round((re_upweight - 1.0) * n_re)
    if len(out) == len(entries or [None]):
        raise ValueError(f"re_upweight={re_upweight} but no training structure is flagged {RE_FLAG!r}")
    return out, total


def with_task_references(model_cfg, data_root: str, mix: list | None):
    """The model config with each mixed dataset's own element references under its task (its energy head), and
    the training dataset's task as the default head; unchanged without per-task heads or a mix."""
    if not model_cfg.tasks or not mix or model_cfg.task_references:
        return model_cfg
    refs, default = {}, model_cfg.default_task
    for m in mix:
        task = m.get("task")
        if task is None:
            continue
        ds_refs = BuiltDataset(m["root"]).element_references
        if refs.get(task, ds_refs) != ds_refs:
            raise ValueError(f"mix entries of task {task!r} were built with different element references; "
                             "give each dataset its own task")
        refs[task] = ds_refs
        if not default and Path(m["root"]).resolve() == Path(data_root).resolve():
            default = task
    return dataclasses.replace(model_cfg, task_references={t: refs[t] for t in model_cfg.tasks if t in refs},
                               default_task=default)
