"""Training processes die with the process that started them.

A launcher killed with SIGKILL (a scheduler after its grace period, a user's kill -9) cannot forward
anything, and torchrun's ranks are session leaders of their own: without this they are re-parented to init
and go on training and writing into the run folder with nobody watching. torchrun gets a kernel death
signal tied to the launcher, and each rank one tied to torchrun plus a watchdog thread (atomforge.data_prep.workers).
"""
from __future__ import annotations

import os
import signal

from atomforge.data_prep.workers import init_worker, set_pdeathsig
from atomforge.pipeline.train.signals import PREEMPT_SIGNALS


def torchrun_preexec(launcher_pid: int):
    """preexec_fn for torchrun: preemption signals are ours to forward (ignored there), and it dies with us."""
    for s in PREEMPT_SIGNALS:
        signal.signal(s, signal.SIG_IGN)
    set_pdeathsig()
    if os.getppid() != launcher_pid:  # the launcher died before the death signal was armed
        os._exit(1)


def rank_dies_with_parent():
    """Called first thing in a rank: its parent is torchrun (or srun's task), whose death ends it."""
    init_worker(os.getppid())
