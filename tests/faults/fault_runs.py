"""Helpers: real training runs in a child process (so signals and kills hit real ranks), and their metrics."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil

from atomforge.pipeline.train.run_dir import RunDir

REPO = Path(__file__).resolve().parents[2]
BASE = {"steps": 6, "max_atoms": 128, "wandb": False, "progress": False, "ckpt_every": 2, "warmup_steps": 2,
        "world_size": 2, "resume": "auto", "keep_last": 3}


def start(run_dir: Path, data_root: Path, faults: dict | None = None, **over) -> subprocess.Popen:
    cfg = {**BASE, "run_dir": str(run_dir), "data_root": str(data_root), **over}
    env = dict(os.environ, PYTHONPATH=str(REPO))
    env.pop("ATOMFORGE_FAULTS", None)
    if faults:
        env["ATOMFORGE_FAULTS"] = json.dumps(faults)
    code = ("import json,sys; from atomforge.pipeline.train.config import TrainConfig; "
            "from atomforge.pipeline.train.launch import launch; "
            f"sys.exit(launch(TrainConfig.from_dict(json.loads({json.dumps(json.dumps(cfg))}))))")
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    log = open(Path(run_dir) / "launch.log", "a")
    return subprocess.Popen([sys.executable, "-c", code], env=env, stdout=log, stderr=subprocess.STDOUT)


def finish(proc: subprocess.Popen, run_dir: Path, timeout: float = 180) -> tuple[int, str]:
    rc = proc.wait(timeout=timeout)
    return rc, (Path(run_dir) / "launch.log").read_text()


def run(run_dir: Path, data_root: Path, faults: dict | None = None, **over) -> tuple[int, str]:
    return finish(start(run_dir, data_root, faults, **over), run_dir)


def rows(run_dir: Path) -> list[dict]:
    return RunDir(run_dir).rows()


def step_rows(run_dir: Path) -> dict[int, dict]:
    return {r["step"]: r for r in rows(run_dir) if "loss" in r}


def wait_for_step(run_dir: Path, proc: subprocess.Popen, step: int, timeout: float = 120):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if max(step_rows(run_dir), default=0) >= step:
            return
        if proc.poll() is not None:
            raise AssertionError(f"run ended (rc {proc.returncode}) before step {step}")
        time.sleep(0.05)
    raise AssertionError(f"step {step} not reached in {timeout} s")


def rank_pid(proc: subprocess.Popen, rank: int) -> int:
    for p in psutil.Process(proc.pid).children(recursive=True):
        try:
            if "atomforge.pipeline.train.worker" in " ".join(p.cmdline()) and p.environ().get("RANK") == str(rank):
                return p.pid
        except psutil.Error:
            continue
    raise AssertionError(f"rank {rank} not found")


def signal_rank(proc, rank: int, sig: int):
    os.kill(rank_pid(proc, rank), sig)


def samples(run_dir: Path) -> int:
    return sum(r["samples"] for r in step_rows(run_dir).values())
