"""The non-finite loss guard as a callback: a skipped batch on every rank, counted in each metrics row, the
summary and the checkpoint (so a resumed run goes on counting)."""
from __future__ import annotations

from atomforge.pipeline.train.callbacks.base import Callback
from atomforge.pipeline.train.guard import LossGuard


class LossGuardCallback(Callback):
    def __init__(self, limit: int):
        self.guard = LossGuard(limit)

    def on_load(self, trainer, state):
        self.guard.skipped = state.get("nonfinite_skipped", 0)

    def on_loss(self, trainer, loss):
        return loss if self.guard.ok(loss, trainer.step) else None  # collective

    def on_step_end(self, trainer, row):
        row["nonfinite_skipped"] = self.guard.skipped

    def on_save(self, trainer, state):
        state.update(self.guard.state())

    def on_train_end(self, trainer, summary):
        if summary is not None:
            summary["nonfinite_skipped"] = self.guard.skipped
