"""Preemption: SIGUSR1, SIGTERM (and Ctrl-C's SIGINT) set a flag; ranks agree on it after each step, checkpoint,
and exit for requeue.

The handler only records the signal: the step in flight finishes on every rank, then `agreed()` (one tiny
all-reduce per step) makes all ranks stop after the same step, so the checkpoint is consistent.
"""
from __future__ import annotations

import json
import signal
import threading
from pathlib import Path

import torch
import torch.distributed as dist

PREEMPT_SIGNALS = (signal.SIGUSR1, signal.SIGTERM, signal.SIGINT)  # Ctrl-C stops as cleanly as a scheduler does
EXIT_REQUEUE = 75  # EX_TEMPFAIL: "checkpoint written, run again to resume"
MARKER = "PREEMPTED"
_pending: list[int] = []


def hold_early():
    """A rank's first act: a signal that arrives while it starts (imports, rendezvous) waits for Preemption
    instead of killing the rank with a traceback."""
    if threading.current_thread() is threading.main_thread():
        for s in PREEMPT_SIGNALS:
            signal.signal(s, lambda signum, frame: _pending.append(signum))


class Preemption:
    def __init__(self):
        self.signum: int | None = _pending[-1] if _pending else None
        if threading.current_thread() is threading.main_thread():
            for s in PREEMPT_SIGNALS:
                signal.signal(s, self._handle)

    def _handle(self, signum, frame):
        self.signum = signum

    def agreed(self) -> bool:
        """True on every rank when any rank got a signal (collective: call on all ranks each step)."""
        flag = torch.tensor([0 if self.signum is None else 1], dtype=torch.int32)
        if dist.is_initialized() and dist.get_world_size() > 1:
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item())


def mark(run_dir: Path, step: int, signum: int | None):
    name = signal.Signals(signum).name if signum else "peer"
    (Path(run_dir) / MARKER).write_text(json.dumps({"step": step, "signal": name}))


def clear(run_dir: Path):
    (Path(run_dir) / MARKER).unlink(missing_ok=True)


def preempted(run_dir: Path) -> dict | None:
    p = Path(run_dir) / MARKER
    return json.loads(p.read_text()) if p.is_file() else None
