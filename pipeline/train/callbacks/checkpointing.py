"""When checkpoints are written: every train.ckpt_every steps and at the end (CheckpointCallback); on a
preemption signal, after the step all ranks agree on, then training stops for requeue (PreemptionCallback)."""
from __future__ import annotations

import logging

from atomforge.pipeline.train import signals
from atomforge.pipeline.train.callbacks.base import Callback

log = logging.getLogger(__name__)


class CheckpointCallback(Callback):
    def __init__(self, every: int):
        self.every = every

    def _due(self, step: int) -> bool:
        return bool(self.every and step % self.every == 0)

    def on_step_end(self, trainer, row):
        if self._due(trainer.step):
            trainer.save()

    def on_train_end(self, trainer, summary):
        if summary is not None and not self._due(trainer.step):  # a preempted run saved already
            trainer.save()


class PreemptionCallback(Callback):
    def __init__(self):
        self.preemption = signals.Preemption()  # built before the trainer: a signal during start-up is not lost

    def on_train_start(self, trainer):
        if trainer.rank == 0:
            signals.clear(trainer.run_dir)

    def on_step_end(self, trainer, row):  # after CheckpointCallback's: a checkpoint of this step may exist
        if not self.preemption.agreed():  # collective, every step
            return
        if trainer.saved_step != trainer.step:
            trainer.save()
        if trainer.rank == 0:
            signals.mark(trainer.run_dir, trainer.step, self.preemption.signum)
            log.warning("preempted after step %d: checkpoint written, exiting for requeue", trainer.step)
        trainer.stop = True
