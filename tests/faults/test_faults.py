"""Each failure is injected into a real 2-rank DeepSpeed run (gloo) and its outcome asserted.

Runs that recover are compared step by step with one uninterrupted run: equal losses and equal sample
counts mean nothing was lost or seen twice.
"""
from __future__ import annotations

import shutil
import signal
import subprocess
import time

import pytest

from atomforge.pipeline.train.run_dir import complete_checkpoints
from atomforge.pipeline.train.signals import EXIT_REQUEUE, preempted
import fault_runs as runs

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def baseline(emt_dataset, tmp_path_factory):
    d = tmp_path_factory.mktemp("baseline")
    rc, log = runs.run(d, emt_dataset)
    assert rc == 0, log[-2000:]
    assert sorted(runs.step_rows(d)) == [1, 2, 3, 4, 5, 6]
    return d


def assert_same_as(baseline, run_dir, ledger):
    """Every step's loss equals the uninterrupted run's; any missing or repeated batch would change them."""
    want, got = runs.step_rows(baseline), runs.step_rows(run_dir)
    assert sorted(got) == sorted(want)
    for s in want:
        assert got[s]["loss"] == pytest.approx(want[s]["loss"], rel=1e-6, abs=1e-9), f"step {s}"
    lost = runs.samples(baseline) - runs.samples(run_dir)
    ledger["samples_lost"] += abs(lost)
    assert lost == 0


def test_preemption_usr1_and_sigterm_checkpoint_and_resume(baseline, emt_dataset, tmp_path, ledger):
    d = tmp_path / "run"
    stops = []
    for sig, target in ((signal.SIGUSR1, "launcher"), (signal.SIGTERM, "rank1")):
        ledger["injected"] += 1
        proc = runs.start(d, emt_dataset)
        runs.wait_for_step(d, proc, (stops[-1] + 1) if stops else 1)
        if target == "launcher":
            proc.send_signal(sig)  # forwarded by the node launcher to every rank
        else:
            runs.signal_rank(proc, 1, sig)  # one rank only: the others learn it at the end of the step
        rc, log = runs.finish(proc, d)
        assert rc == EXIT_REQUEUE, log[-2000:]
        mark = preempted(d)
        assert mark and mark["signal"] in ("SIGUSR1", "SIGTERM", "peer")
        assert complete_checkpoints(d / "checkpoints")[-1].name == f"step_{mark['step']:08d}"
        assert max(runs.step_rows(d)) == mark["step"] < 6
        stops.append(mark["step"])
    rc, log = runs.run(d, emt_dataset)  # the same command again: resumes from the newest checkpoint
    assert rc == 0, log[-2000:]
    assert preempted(d) is None
    assert_same_as(baseline, d, ledger)
    ledger["survived"] += 2


def test_sigkill_of_a_rank_fails_the_job_in_bounded_time(emt_dataset, tmp_path, ledger):
    ledger["injected"] += 1
    d = tmp_path / "run"
    proc = runs.start(d, emt_dataset, steps=500, ckpt_every=0, dist_timeout_s=30)
    runs.wait_for_step(d, proc, 1)
    t0 = time.time()
    runs.signal_rank(proc, 1, signal.SIGKILL)
    rc, log = runs.finish(proc, d, timeout=90)
    elapsed = time.time() - t0
    assert rc not in (0, EXIT_REQUEUE), log[-2000:]
    assert elapsed < 60, f"job took {elapsed:.0f} s to fail after a rank died"
    ledger["survived"] += 1


def test_kill_during_checkpoint_write_keeps_previous(baseline, emt_dataset, tmp_path, ledger):
    ledger["injected"] += 1
    d = tmp_path / "run"
    rc, log = runs.run(d, emt_dataset, faults={"kill_in_save": {"step": 4, "rank": 0}})
    assert rc not in (0, EXIT_REQUEUE)
    ck = d / "checkpoints"
    assert [p.name for p in complete_checkpoints(ck)] == ["step_00000002"]
    assert (ck / "tmp-step_00000004").is_dir() and not (ck / "step_00000004").exists()
    rc, log = runs.run(d, emt_dataset)
    assert rc == 0, log[-2000:]
    assert not list(ck.glob("tmp-*"))
    assert_same_as(baseline, d, ledger)
    ledger["survived"] += 1


def test_full_disk_during_save_is_an_error_and_keeps_previous(baseline, emt_dataset, tmp_path, ledger):
    ck = tmp_path / "run" / "checkpoints"
    ck.mkdir(parents=True)
    size = sum(f.stat().st_size for f in complete_checkpoints(baseline / "checkpoints")[0].rglob("*") if f.is_file())
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={int(size * 1.4)}", "tmpfs", str(ck)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {mounted.stderr.strip()}")
    ledger["injected"] += 1
    try:
        rc, log = runs.run(tmp_path / "run", emt_dataset)
        assert rc not in (0, EXIT_REQUEUE)
        assert "checkpoint step_00000004 not written" in log and "kept step_00000002" in log, log[-3000:]
        assert [p.name for p in complete_checkpoints(ck)] == ["step_00000002"]
        assert not list(ck.glob("tmp-*")), "the partial checkpoint must be removed to give the space back"
        resumed = tmp_path / "resumed"
        shutil.copytree(ck, resumed / "checkpoints")
        shutil.copy(tmp_path / "run" / "metrics.jsonl", resumed / "metrics.jsonl")
    finally:
        subprocess.run(["umount", str(ck)], check=True)
    rc, log = runs.run(resumed, emt_dataset)
    assert rc == 0, log[-2000:]
    assert_same_as(baseline, resumed, ledger)
    ledger["survived"] += 1


def test_corrupt_newest_checkpoint_is_skipped_with_a_warning(baseline, emt_dataset, tmp_path, ledger):
    ledger["injected"] += 1
    d = tmp_path / "run"
    shutil.copytree(baseline / "checkpoints", d / "checkpoints")
    shutil.copy(baseline / "metrics.jsonl", d / "metrics.jsonl")
    newest = complete_checkpoints(d / "checkpoints")[-1]
    assert newest.name == "step_00000006"
    for f in newest.glob("*model_states.pt"):
        f.write_bytes(b"\0garbage" * 100)
    rc, log = runs.run(d, emt_dataset, steps=6)
    assert rc == 0, log[-2000:]
    assert "skipping unreadable checkpoint" in log and "step_00000006" in log
    assert_same_as(baseline, d, ledger)
    ledger["survived"] += 1


def test_nonfinite_losses_are_skipped_counted_and_stop_after_k(emt_dataset, tmp_path, ledger):
    ledger["injected"] += 2
    d = tmp_path / "run"
    rc, log = runs.run(d, emt_dataset, faults={"nan_loss": {"3": 1, "5": 99}}, max_bad_losses=3, ckpt_every=0)
    assert rc not in (0, EXIT_REQUEUE)
    assert "loss was NaN/inf on 3 batches in a row" in log, log[-2000:]
    rows = runs.step_rows(d)
    assert max(rows) == 4 and rows[3]["nonfinite_skipped"] == 1 and rows[2]["nonfinite_skipped"] == 0
    assert all(r["loss"] == r["loss"] for r in rows.values()), "a NaN loss reached the optimizer"
    ledger["survived"] += 2
