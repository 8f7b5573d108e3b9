"""EMA of the weights, updated after each optimizer step; checkpoints and final predictions read trainer.ema."""
from __future__ import annotations

from atomforge.pipeline.train.callbacks.base import Callback
from atomforge.pipeline.train.ema import EMA


class EMACallback(Callback):
    def __init__(self, decay: float, warmup: bool = True):
        self.decay, self.warmup = decay, warmup

    def on_attach(self, trainer):
        # before a resume loads the saved shadow into it
        trainer.ema = EMA(trainer.engine.module, self.decay, self.warmup)

    def on_optim_step(self, trainer, metrics):
        trainer.ema.update(trainer.step + 1)  # emitted before the trainer counts this step
