"""EMA of the weights, updated after each optimizer step; checkpoints and final predictions read trainer.ema."""
from __future__ import annotations

from atomforge.pipeline.train.callbacks.base import Callback
from atomforge.pipeline.train.ema import EMA


class EMACallback(Callback):
    def __init__(self, decay: float):
        self.decay = decay

    def on_attach(self, trainer):
        trainer.ema = EMA(trainer.engine.module, self.decay)  # before a resume loads the saved shadow into it

    def on_optim_step(self, trainer, metrics):
        trainer.ema.update()
