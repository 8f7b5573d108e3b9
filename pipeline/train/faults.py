"""Fault injection for the fault-tolerance tests, driven by ATOMFORGE_FAULTS (JSON); inert when unset.

{"nan_loss": {"3": 1, "5": 99}}            the first 1 (99) batches drawn for optimizer step 3 (5) get a NaN loss
{"kill_in_save": {"step": 4, "rank": 0}}   SIGKILL that rank after its checkpoint files are written, before commit
"""
from __future__ import annotations

import json
import os
import signal

import torch


def _plan() -> dict:
    raw = os.environ.get("ATOMFORGE_FAULTS", "")
    return json.loads(raw) if raw else {}


_poisoned: dict[int, int] = {}


def poison_loss(loss: torch.Tensor, step: int) -> torch.Tensor:
    budget = int(_plan().get("nan_loss", {}).get(str(step), 0))
    if _poisoned.get(step, 0) < budget:
        _poisoned[step] = _poisoned.get(step, 0) + 1
        return loss * float("nan")
    return loss


def in_save(step: int, rank: int):
    k = _plan().get("kill_in_save")
    if k and k["step"] == step and k.get("rank", 0) == rank:
        os.kill(os.getpid(), signal.SIGKILL)
