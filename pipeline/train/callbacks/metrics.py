"""Metrics rows to metrics.jsonl (and wandb) on rank 0: every log_every-th step, the last step, the final
validation."""
from __future__ import annotations

from atomforge.pipeline.train.callbacks.base import Callback
from atomforge.pipeline.train.logger import MetricsLogger


class MetricsCallback(Callback):
    logger = None

    def on_train_start(self, trainer):
        tc = trainer.tc
        if trainer.rank == 0:
            self.logger = MetricsLogger(trainer.run_dir, tc.to_dict(), tc.wandb, tc.wandb_project, trainer.step)

    def on_step_end(self, trainer, row):
        if self.logger and (trainer.step % trainer.tc.log_every == 0 or trainer.step == trainer.tc.steps):
            self.logger.log(row)

    def on_final_validation(self, trainer, row):
        if self.logger:
            self.logger.log(row)

    def on_train_end(self, trainer, summary):
        if self.logger:
            self.logger.close()
