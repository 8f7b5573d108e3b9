"""train.profile: wall seconds per training-step section (on GPU, synchronised at each boundary) as time_*_s in
each metrics row; communication from DeepSpeed's comms logger, which times every collective it issues (a part of
backward / optimizer time)."""
from __future__ import annotations

import time

import torch

from atomforge.pipeline.train.callbacks.base import Callback

SECTIONS = ("loader", "forward", "backward", "optimizer")


def _comm_total() -> float:
    from deepspeed.comm.comm import comms_logger

    # each op's timer is cumulative (DeepSpeed reads it with reset=False): its newest record is its total, in ms
    return sum(max(max(rec[1]) for rec in sizes.values()) for sizes in comms_logger.comms_dict.values()) / 1e3


class ProfilerCallback(Callback):
    def on_attach(self, trainer):
        import deepspeed.comm as dscomm

        dscomm.configure(enabled=True, prof_all=True)

    def on_step_start(self, trainer):
        self.t = dict.fromkeys(SECTIONS, 0.0)
        self._comm0 = _comm_total()
        self._since = time.perf_counter()

    def on_section(self, trainer, name):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        now = time.perf_counter()
        self.t[name] += now - self._since
        self._since = now

    def on_optim_step(self, trainer, metrics):
        self.on_section(trainer, "optimizer")  # the EMA update (an earlier callback) counts as optimizer time
        metrics.update({f"time_{k}_s": v for k, v in self.t.items()})
        metrics["time_comm_s"] = _comm_total() - self._comm0
