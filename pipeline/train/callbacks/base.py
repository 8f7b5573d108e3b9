"""The trainer's callback protocol: every hook is a no-op here; a callback overrides the ones it needs.

The trainer calls each hook on its callbacks in list order, on every rank (a hook that runs a collective runs
it on all ranks alike). `trainer` is the atomforge.pipeline.train.trainer.Trainer.
"""
from __future__ import annotations


class Callback:
    def on_attach(self, trainer):
        """The engine exists, no checkpoint is loaded yet (what a resume loads into is made here)."""

    def on_load(self, trainer, state: dict):
        """Resumed from a checkpoint: `state` is its JSON trainer state."""

    def on_train_start(self, trainer):
        """fit() begins, after any resume (trainer.step is the resumed step)."""

    def on_step_start(self, trainer):
        """An optimizer step begins, before its batches are drawn."""

    def on_section(self, trainer, name: str):
        """A section of the step ended: loader, forward, backward or optimizer."""

    def on_loss(self, trainer, loss):
        """A micro-batch's loss before backward: return it (or a replacement), or None to skip the batch; a skip
        must be agreed on every rank (the loss guard's is)."""
        return loss

    def on_optim_step(self, trainer, metrics: dict):
        """The step's optimizer updates are done (trainer.step not yet advanced); `metrics` may be added to."""

    def on_step_end(self, trainer, row: dict):
        """The step's metrics row (trainer.step is the finished step); may be added to, or set trainer.stop."""

    def on_save(self, trainer, state: dict):
        """A checkpoint is about to be written: add JSON-able entries to its trainer state."""

    def on_checkpoint_written(self, trainer):
        """This rank's checkpoint files are written; nothing is committed yet."""

    def on_final_validation(self, trainer, row: dict):
        """The validation after the last step, as a metrics row."""

    def on_train_end(self, trainer, summary: dict | None):
        """fit() ends: `summary` (may be added to) goes to summary.json; None when a callback stopped the run."""
