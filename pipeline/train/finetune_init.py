"""Fine-tuning from an exported folder: the parent's architecture and weights, optionally fresh heads,
element references refitted on the new data, and a backbone held still for the first steps."""
from __future__ import annotations

import logging

import torch

from atomforge.pipeline.models.config import ModelConfig
from atomforge.pipeline.models.folder import load_state
from atomforge.pipeline.models.potential import build_model
from atomforge.pipeline.models.tasks import add_task

log = logging.getLogger(__name__)
HEADS = "model.output_heads."


def build_from_parent(tc, card: dict):
    """The model to fine-tune; sets `tc.model` to the parent's architecture so checkpoints record it."""
    parent, sd = load_state(tc.init_from)
    arch = ModelConfig(**parent["architecture"])
    if tc.model.name != arch.name:
        log.warning("init_from: using the parent's architecture %s instead of model=%s", arch.name, tc.model.name)
    tc.model = arch
    refs = {str(k): float(v) for k, v in parent["element_references"].items()}
    if tc.init_refs == "refit":  # the new data's least-squares references win for its elements
        refs.update({str(k): float(v) for k, v in card["element_references"].items()})
    missing = sorted(set(map(int, card["element_references"])) - set(map(int, refs)))
    if missing:
        raise ValueError(f"the new data has elements {missing} the parent model has no reference for; "
                         "use init_refs=refit")
    if arch.tasks:  # a multi-task parent: the new data gets its own head, started from one of the parent's

        base = arch.default_task or arch.tasks[0]
        src = tc.init_task_from or base
        task_refs = dict(arch.task_references.get(src, refs))
        if tc.init_refs == "refit":
            task_refs.update({str(k): float(v) for k, v in card["element_references"].items()})
        arch, sd = add_task(arch, sd, tc.init_task or str(card.get("name") or "finetune"), src, task_refs)
        tc.model = arch
    elif tc.init_task or tc.init_task_from:
        raise ValueError(f"init_task/init_task_from need a parent with per-task heads; {tc.init_from} has one head")
    model = build_model(arch, refs, parent["energy_scale"])
    if tc.init_reinit_heads:
        sd = {k: v for k, v in sd.items() if not k.startswith(HEADS)}
    missing_keys, unexpected = model.load_state_dict(sd, strict=False)
    if unexpected or (missing_keys and not tc.init_reinit_heads):
        raise ValueError(f"{tc.init_from} does not fit its own architecture: missing {missing_keys[:3]}, "
                         f"unexpected {unexpected[:3]}")
    return model


def param_groups(model: torch.nn.Module) -> list[dict]:
    """Backbone first, so `hold_backbone` can find it by position in the optimizer."""
    backbone = [p for n, p in model.named_parameters() if p.requires_grad and not n.startswith(HEADS)]
    heads = [p for n, p in model.named_parameters() if p.requires_grad and n.startswith(HEADS)]
    return [{"params": backbone}, {"params": heads}]


def hold_backbone(optimizer):
    """Learning rate 0 for the backbone group until the scheduler's next step resets it (AdamW: no decay either)."""
    optimizer.param_groups[0]["lr"] = 0.0
