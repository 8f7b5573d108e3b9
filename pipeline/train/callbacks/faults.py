"""Fault injection for the fault-tolerance tests (tests/faults), as a callback. Those tests start real ranks in
subprocesses, so the plan travels in ATOMFORGE_FAULTS (JSON): `from_env`, called once at a rank's start-up
(atomforge.pipeline.train.worker), is the only place that reads it; unset, no callback is added.

{"nan_loss": {"3": 1, "5": 99}}            the first 1 (99) batches drawn for optimizer step 3 (5) get a NaN loss
{"kill_in_save": {"step": 4, "rank": 0}}   SIGKILL that rank after its checkpoint files are written, before commit
"""
from __future__ import annotations

import json
import os
import signal

from atomforge.pipeline.train.callbacks.base import Callback


class FaultCallback(Callback):
    def __init__(self, plan: dict):
        self.nan_loss = {int(step): int(n) for step, n in plan.get("nan_loss", {}).items()}
        self.kill_in_save = plan.get("kill_in_save")
        self.poisoned: dict[int, int] = {}

    def on_loss(self, trainer, loss):
        step = trainer.step + 1
        if self.poisoned.get(step, 0) < self.nan_loss.get(step, 0):
            self.poisoned[step] = self.poisoned.get(step, 0) + 1
            return loss * float("nan")
        return loss

    def on_checkpoint_written(self, trainer):
        k = self.kill_in_save
        if k and k["step"] == trainer.step and k.get("rank", 0) == trainer.rank:
            os.kill(os.getpid(), signal.SIGKILL)


def from_env() -> list[FaultCallback]:
    raw = os.environ.get("ATOMFORGE_FAULTS", "")
    return [FaultCallback(json.loads(raw))] if raw else []
