"""A training launcher killed with SIGKILL takes its ranks with it, and a run folder has one training at a time."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


def start_training(run: Path, data: Path, steps: int = 400) -> subprocess.Popen:
    args = ["train", f"run_dir={run}", f"data.root={data}", f"train.steps={steps}", "train.wandb=false",
            "train.progress=false", "train.max_atoms=64", "train.ckpt_every=0", "world_size=2", "deepspeed=zero2"]
    return subprocess.Popen([sys.executable, "-m", "atomforge.pipeline.cli", *args], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def steps_logged(run: Path) -> int:
    p = run / "metrics.jsonl"
    return sum(1 for ln in p.read_text().splitlines() if '"loss"' in ln) if p.exists() else 0


def wait_for_steps(run: Path, proc: subprocess.Popen, n: int, timeout: float = 180):
    t0 = time.time()
    while steps_logged(run) < n:
        assert proc.poll() is None, proc.stderr.read()[-2000:]
        assert time.time() - t0 < timeout, "training did not start"
        time.sleep(0.2)


def test_sigkilled_launcher_leaves_no_ranks(emt_dataset, tmp_path, tally, ledger):
    tally.tried()
    ledger["injected"] += 1
    run = tmp_path / "run"
    proc = start_training(run, emt_dataset)
    try:
        wait_for_steps(run, proc, 1)
        family = psutil.Process(proc.pid).children(recursive=True)
        ranks = [p for p in family if "RANK" in p.environ() and "atomforge.pipeline.train.worker" in p.cmdline()]
        assert len(ranks) == 2 and len(family) >= 3  # torchrun and its two ranks
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        gone, alive = psutil.wait_procs(family, timeout=20)
        assert not alive, f"still running after the launcher was killed: {[p.cmdline()[:4] for p in alive]}"
        n = steps_logged(run)
        time.sleep(2)
        assert steps_logged(run) == n  # nobody is writing into the run folder any more
        tally.handled()
        ledger["survived"] += 1
    finally:
        for p in psutil.Process().children(recursive=True):
            p.kill()


def test_second_training_into_a_busy_run_folder_is_refused(emt_dataset, tmp_path, tally, ledger):
    tally.tried()
    ledger["injected"] += 1
    run = tmp_path / "run"
    first = start_training(run, emt_dataset)
    try:
        wait_for_steps(run, first, 1)
        cfg_before = (run / "train_config.json").read_text()
        second = subprocess.run([sys.executable, "-m", "atomforge.pipeline.cli", "train", f"run_dir={run}",
                                 f"data.root={emt_dataset}", "train.steps=3", "train.wandb=false"], cwd=REPO,
                                capture_output=True, text=True, timeout=120)
        err = second.stderr.strip().splitlines()
        assert second.returncode == 2 and err and "in use by another training" in err[-1], second.stderr[-2000:]
        assert f"pid {first.pid}" in err[-1] and (run / "train_config.json").read_text() == cfg_before
        assert first.poll() is None  # the first run goes on untouched
        tally.handled()
        ledger["survived"] += 1
    finally:
        first.send_signal(signal.SIGTERM)  # preempted: checkpoint and exit 75 through the CLI's one line
        first.wait(120)
    out = json.loads((run / "train_config.json").read_text())
    assert out["steps"] == 400
