"""train.final_predictions: the EMA model's predictions on a few val structures at the end of a finished run,
for checking exports against (final_predictions.json)."""
from __future__ import annotations

from atomforge.pipeline.train.callbacks.base import Callback
from atomforge.pipeline.train.final_predictions import PREDICTIONS, record_predictions


class FinalPredictionsCallback(Callback):
    def on_train_end(self, trainer, summary):
        if summary is None or trainer.step < trainer.tc.steps:
            return
        full = trainer.ema.full_state_dict()  # collective
        if trainer.rank == 0:
            buffers = {n: b.detach().cpu() for n, b in trainer.engine.module.named_buffers()}
            record_predictions(trainer.tc, trainer.model, {**buffers, **full}, trainer.run_dir / PREDICTIONS,
                               trainer.step)
