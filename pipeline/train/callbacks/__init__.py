"""The trainer's callbacks (protocol in base.py) and the set a training run uses."""
from __future__ import annotations

from atomforge.pipeline.train.callbacks.base import Callback
from atomforge.pipeline.train.callbacks.checkpointing import CheckpointCallback, PreemptionCallback
from atomforge.pipeline.train.callbacks.ema import EMACallback
from atomforge.pipeline.train.callbacks.final_predictions import FinalPredictionsCallback
from atomforge.pipeline.train.callbacks.loss_guard import LossGuardCallback
from atomforge.pipeline.train.callbacks.metrics import MetricsCallback
from atomforge.pipeline.train.callbacks.profiler import ProfilerCallback
from atomforge.pipeline.train.config import TrainConfig

__all__ = ["Callback", "default_callbacks"]


def default_callbacks(tc: TrainConfig) -> list[Callback]:
    """In hook order: the EMA update before the profiler closes its optimizer section; in each step's row the
    guard's count, then logging, then the checkpoint, then the preemption check; at the end the logger closes
    (the final row is written), then the last checkpoint, then final predictions."""
    return [EMACallback(tc.ema_decay, tc.ema_warmup), LossGuardCallback(tc.max_bad_losses),
            *([ProfilerCallback()] if tc.profile else []), MetricsCallback(), CheckpointCallback(tc.ckpt_every),
            *([FinalPredictionsCallback()] if tc.final_predictions else []), PreemptionCallback()]
