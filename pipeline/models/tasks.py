"""Per-task energy heads across fine-tuning and export: add a head for a new dataset (initialised from an existing
task's expert, as MACE's multi-head fine-tuning starts its new head from the pre-training head), and a one-head view
of a multi-task model for tools that know one task (fairchem's calculator, LAMMPS)."""
from __future__ import annotations

import dataclasses

import torch
from atomforge.pipeline.models.potential import build_model

_EXPERT = ".weights"  # fairchem's MOLE layers: weights [num_experts, out, in]; biases are shared


def _head_prefix(cfg) -> str:
    return "model.output_heads." + ("energy." if cfg.force_mode == "direct" else "efs.")


def remap_experts(state: dict, cfg, old_tasks: list[str], new_tasks: list[str], source: dict[str, str]) -> dict:
    """Expert rows re-ordered for `new_tasks` (sorted, as the model orders them); a new task's row is a copy of
    its `source` task's row."""
    prefix, out = _head_prefix(cfg), {}
    for k, v in state.items():
        if k.startswith(prefix) and k.endswith(_EXPERT) and v.shape[0] == len(old_tasks):
            v = torch.stack([v[old_tasks.index(source.get(t, t))] for t in new_tasks])
        out[k] = v
    return out


def add_task(cfg, state: dict, task: str, from_task: str, refs: dict):
    """(config, weights) with a head for `task` (a copy of `from_task`'s), `task` its default head and `refs` its
    element references; a task the model already has keeps its head and gets `refs`."""
    old = sorted(cfg.tasks)
    if from_task not in old:
        raise ValueError(f"init_task_from={from_task!r} is not one of the parent's tasks {old}")
    new = sorted(set(old) | {task})
    new_cfg = dataclasses.replace(cfg, tasks=new, default_task=task,
                                  task_references={**cfg.task_references, task: dict(refs)})
    return new_cfg, remap_experts(state, cfg, old, new, {task: from_task} if task not in old else {})


def single_task(model, task: str | None = None):
    """A model without per-task heads that computes exactly what `model` computes for `task` (default: its
    default head)."""
    task = task or model.default_task
    if not model.tasks:
        return model
    if task not in model.tasks:
        raise ValueError(f"task {task!r} is not one of this model's heads {model.tasks}")
    cfg = dataclasses.replace(model.cfg, tasks=[], default_task="", task_references={})
    refs = {str(z): float(v) for z, v in enumerate(model.task_refs[model.tasks.index(task) + 1].tolist()) if v != 0.0}
    one = build_model(cfg, refs, model.energy_scale)
    row = model.tasks.index(task)
    prefix = _head_prefix(model.cfg)
    sd = {}
    for k, v in model.state_dict().items():
        if k.startswith(prefix) and k.endswith(_EXPERT) and v.shape[0] == len(model.tasks):
            # the wrapper's head is `<prefix>head.<layer>`; the plain head is `<prefix><layer>` with a Linear `.weight`
            k, v = k.replace(prefix + "head.", prefix)[: -len(_EXPERT)] + ".weight", v[row]
        elif k.startswith(prefix + "head."):
            k = k.replace(prefix + "head.", prefix)
        sd[k] = v
    one.load_state_dict(sd, strict=True)
    return one.to(next(model.parameters()).device).eval()
