"""The real sbatch scripts on a real SLURM controller: a 2-rank job completes; a preempted job requeues
itself, resumes from its checkpoint and ends with exactly the uninterrupted run's losses."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import step_rows

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow
TRAIN = ["world_size=2", "train.steps=6", "train.max_atoms=128", "train.ckpt_every=2", "train.warmup_steps=2",
         "train.wandb=false", "train.progress=false", "cluster=slurm", "cluster.cpus_per_task=2",
         "cluster.time=00:10:00"]


def submit(slurm, data: Path, run_dir: Path, *extra) -> str:
    env = dict(slurm.env, PYTHONPATH=str(REPO), ATOMFORGE_DEBUG="1")
    res = subprocess.run([sys.executable, "-m", "atomforge.pipeline.cli", "train", *TRAIN, f"data.root={data}",
                          f"run_dir={run_dir}", *extra], env=env, capture_output=True, text=True, cwd=REPO)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "submitted SLURM job" in res.stdout
    return res.stdout.split("submitted SLURM job ")[1].split(":")[0]


def wait(slurm, job: str, until, timeout: float = 240) -> dict:
    t0 = time.time()
    while time.time() - t0 < timeout:
        info = slurm.job(job)
        if until(info):
            return info
        if info["JobState"] in ("FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY"):
            raise AssertionError(f"job {job} {info['JobState']}: {_out(job, info)}")
        time.sleep(0.3)
    raise AssertionError(f"job {job} still {slurm.job(job)['JobState']} after {timeout} s")


def _out(job, info) -> str:
    p = Path(info.get("StdOut", ""))
    return p.read_text()[-3000:] if p.is_file() else "(no output)"


def losses(run_dir: Path) -> dict[int, float]:
    return {s: r["loss"] for s, r in step_rows(run_dir).items()}


@pytest.fixture(scope="module")
def uninterrupted(slurm, emt_dataset, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("slurm_runs") / "plain"
    job = submit(slurm, emt_dataset, run_dir)
    info = wait(slurm, job, lambda i: i["JobState"] == "COMPLETED")
    return job, info, run_dir


def test_two_rank_job_completes(uninterrupted):
    job, info, run_dir = uninterrupted
    assert info["Restarts"] == "0"
    ranks = json.loads((run_dir / "ranks.json").read_text())
    assert ranks == {"world_size": 2, "steps_per_rank": [6, 6]}
    assert sorted(losses(run_dir)) == [1, 2, 3, 4, 5, 6]
    assert f"job {job} (restart 0)" in (run_dir / f"slurm-{job}.out").read_text()


def test_preempted_job_requeues_and_matches_uninterrupted(slurm, emt_dataset, uninterrupted, tmp_path):
    run_dir = tmp_path / "preempted"
    job = submit(slurm, emt_dataset, run_dir)
    metrics = run_dir / "metrics.jsonl"
    wait(slurm, job, lambda i: metrics.exists() and len(losses(run_dir)) >= 1)
    slurm.run("scancel", "--signal=USR1", job)  # what --signal=USR1@<s> delivers before the time limit
    wait(slurm, job, lambda i: i["Restarts"] != "0" and i["JobState"] == "PENDING")
    # SLURM holds requeued jobs ~2 min: shorten that to a few seconds, not to zero - slurmd refuses a credential
    # issued in the same second it revoked the old instance's ("Job credential revoked")
    slurm.run("scontrol", "update", f"JobId={job}", "StartTime=now+3")
    info = wait(slurm, job, lambda i: i["JobState"] == "COMPLETED", timeout=300)
    out = (run_dir / f"slurm-{job}.out").read_text()
    assert "preempted, checkpoint written; requeueing" in out and f"job {job} (restart 1)" in out, out[-3000:]
    assert int(info["Restarts"]) == 1
    want, got = losses(uninterrupted[2]), losses(run_dir)
    assert sorted(got) == sorted(want)
    assert got[6] == pytest.approx(want[6], rel=1e-6), "the final loss differs from the uninterrupted run's"
    assert got == pytest.approx(want, rel=1e-6)


def test_sweep_array_runs_with_a_concurrency_limit(slurm, emt_dataset, tmp_path, monkeypatch):
    from atomforge.pipeline.train.config import TrainConfig
    from atomforge.pipeline.train.submit import submit_array

    monkeypatch.setenv("SLURM_CONF", slurm.env["SLURM_CONF"])
    runs = [TrainConfig.from_dict({"run_dir": str(tmp_path / f"r{i}"), "data_root": str(emt_dataset), "steps": 2,
                                   "max_atoms": 64, "wandb": False, "progress": False, "ckpt_every": 0,
                                   "warmup_steps": 1, "seed": i}) for i in range(2)]
    job = submit_array(runs, {"max_concurrent": 1, "time": "00:10:00"}, tmp_path / "configs.txt")
    assert slurm.job(job)["ArrayTaskThrottle"] == "1"
    tasks = [wait(slurm, f"{job}_{i}", lambda i: i["JobState"] == "COMPLETED") for i in range(2)]
    first, second = sorted(tasks, key=lambda t: t["StartTime"])
    assert second["StartTime"] >= first["EndTime"], "the limit of 1 was not respected"
    assert all((tmp_path / f"r{i}" / "checkpoints" / "step_00000002" / "COMPLETE").is_file() for i in range(2))
