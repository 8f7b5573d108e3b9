"""Single-process checks of the pieces the multi-process fault tests rely on."""
from __future__ import annotations

import json
import os
import signal
from types import SimpleNamespace

import pytest
import torch

from atomforge.pipeline.train.callbacks.faults import from_env
from atomforge.pipeline.train.callbacks.loss_guard import LossGuardCallback
from atomforge.pipeline.train.guard import LossGuard, NonFiniteLoss
from atomforge.pipeline.train.node import LaunchError, check_slurm_layout
from atomforge.pipeline.train.signals import Preemption


def test_one_srun_task_per_node_is_enforced():
    check_slurm_layout({"SLURM_STEP_ID": "0", "SLURM_NTASKS": "2", "SLURM_NNODES": "2"})
    check_slurm_layout({"SLURM_NTASKS": "8", "SLURM_NNODES": "1"})  # the batch shell itself is not a step
    with pytest.raises(LaunchError, match="one task per node"):
        check_slurm_layout({"SLURM_STEP_ID": "0", "SLURM_NTASKS": "8", "SLURM_NNODES": "1"})


def test_loss_guard_counts_and_stops_after_k_in_a_row():
    g = LossGuard(limit=2)
    assert g.ok(torch.tensor(1.0), 0)
    assert not g.ok(torch.tensor(float("inf")), 1)
    assert g.ok(torch.tensor(2.0), 1) and g.in_a_row == 0 and g.skipped == 1
    assert not g.ok(torch.tensor(float("nan")), 2)
    with pytest.raises(NonFiniteLoss, match="2 batches in a row"):
        g.ok(torch.tensor(float("nan")), 2)
    assert g.state() == {"nonfinite_skipped": 3}


def test_fault_callback_poisons_the_planned_batches_and_the_guard_skips_them(monkeypatch):
    monkeypatch.delenv("ATOMFORGE_FAULTS", raising=False)
    assert from_env() == []  # unset: no fault callback at all
    monkeypatch.setenv("ATOMFORGE_FAULTS", json.dumps({"nan_loss": {"3": 2}}))
    (fault,) = from_env()
    guard = LossGuardCallback(limit=5)
    trainer = SimpleNamespace(step=2)  # drawing the batches of optimizer step 3
    got = [guard.on_loss(trainer, fault.on_loss(trainer, torch.tensor(1.0))) for _ in range(3)]
    assert got[:2] == [None, None] and got[2] == 1.0 and guard.guard.skipped == 2
    trainer.step = 3
    assert fault.on_loss(trainer, torch.tensor(1.0)) == 1.0
    state = {}
    guard.on_save(trainer, state)
    assert state == {"nonfinite_skipped": 2}


def test_preemption_records_usr1_and_sigterm():
    old = {s: signal.getsignal(s) for s in (signal.SIGUSR1, signal.SIGTERM)}
    try:
        for sig in (signal.SIGUSR1, signal.SIGTERM):
            p = Preemption()
            assert not p.agreed()
            os.kill(os.getpid(), sig)
            assert p.agreed() and p.signum == sig
    finally:
        for s, h in old.items():
            signal.signal(s, h)
