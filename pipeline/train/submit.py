"""Submit training to SLURM: `atomforge train cluster=slurm ...` -> sbatch slurm/train.sbatch <train_config.json>."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from atomforge.data_prep.errors import AtomforgeError
from atomforge.pipeline.train.config import TrainConfig
from atomforge.pipeline.train.run_dir import RunDir

REPO = Path(__file__).resolve().parents[2]
WHEEL_SLURM = Path("share") / "atomforge" / "slurm"  # where pyproject's data-files put slurm/ in an installed wheel


def slurm_script(name: str, repo: Path = REPO) -> Path:
    """slurm/<name> of the source checkout, else of the installed wheel (sysconfig's data prefix)."""
    for folder in (repo / "slurm", Path(sysconfig.get_path("data")) / WHEEL_SLURM):
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(f"slurm/{name} is neither in {repo} nor in the installed package: reinstall atomforge")


def job_dir(repo: Path = REPO) -> Path:
    """Where jobs start: the source checkout (relative paths of its configs), else the submitting directory."""
    return repo if (repo / "pyproject.toml").is_file() else Path.cwd()


class SubmitError(AtomforgeError, RuntimeError):
    pass


def _ranks_per_node(tc: TrainConfig, cluster: dict) -> int:
    nodes, per = int(cluster.get("nodes") or 1), int(cluster.get("ranks_per_node") or 1)
    if nodes * per != tc.world_size:
        raise SubmitError(f"world_size={tc.world_size} but cluster.nodes x cluster.ranks_per_node = {nodes} x {per}: "
                          "set cluster.ranks_per_node to the GPUs per node")
    return per


def sbatch_options(cluster: dict, run_dir: Path, name: str) -> list[str]:
    opts = [f"--job-name={name}", f"--output={run_dir}/slurm-%j.out", f"--chdir={job_dir()}",
            f"--signal=USR1@{int(cluster.get('signal_s') or 120)}"]
    for key, flag in (("partition", "partition"), ("account", "account"), ("qos", "qos"), ("time", "time"),
                      ("gres", "gres"), ("cpus_per_task", "cpus-per-task"), ("mem", "mem")):
        if cluster.get(key) not in (None, ""):
            opts.append(f"--{flag}={cluster[key]}")
    if cluster.get("wait"):
        opts.append("--wait")
    return opts + list(cluster.get("extra") or [])


def _env(per_node: int) -> dict:
    env = dict(os.environ, ATOMFORGE_PYTHON=sys.executable, ATOMFORGE_NPROC_PER_NODE=str(per_node))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    return env


def _sbatch(args: list[str], env: dict) -> str:
    if shutil.which("sbatch") is None:
        raise SubmitError("sbatch not found: cluster=slurm needs the SLURM client tools on this machine")
    res = subprocess.run(["sbatch", "--parsable", "--export=ALL", *args], env=env, capture_output=True, text=True)
    if res.returncode != 0:
        raise SubmitError(f"sbatch failed: {res.stderr.strip() or res.stdout.strip()}")
    return res.stdout.strip().split(";")[0]


def write_config(tc: TrainConfig) -> Path:
    run_dir = Path(tc.run_dir).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    d = tc.to_dict()
    d["run_dir"], d["data_root"] = str(run_dir), str(Path(tc.data_root).resolve())  # jobs start elsewhere
    path = RunDir(run_dir).config
    path.write_text(json.dumps(d, indent=1))
    return path


def submit(tc: TrainConfig, cluster: dict) -> str:
    """Submit one training run; returns the job id. Requeues resume it from its newest checkpoint."""
    per = _ranks_per_node(tc, cluster)
    cfg = write_config(tc)
    opts = (sbatch_options(cluster, cfg.parent, f"atomforge-{cfg.parent.name}")
            + [f"--nodes={int(cluster.get('nodes') or 1)}"])
    return _sbatch([*opts, str(slurm_script("train.sbatch")), str(cfg)], _env(per))


def submit_array(configs: list[TrainConfig], cluster: dict, list_path: Path) -> str:
    """Submit runs as one job array with at most cluster.max_concurrent running at once."""
    if not configs:
        raise SubmitError("no runs to submit")
    per = {_ranks_per_node(tc, {**cluster, "nodes": 1}) for tc in configs}
    if len(per) != 1:
        raise SubmitError("all runs of one array need the same world_size")
    paths = [write_config(tc) for tc in configs]
    list_path = Path(list_path).resolve()
    list_path.parent.mkdir(parents=True, exist_ok=True)
    list_path.write_text("".join(f"{p}\n" for p in paths))
    limit = int(cluster.get("max_concurrent") or len(paths))
    opts = sbatch_options(cluster, list_path.parent, "atomforge-sweep") + [f"--array=0-{len(paths) - 1}%{limit}"]
    opts[1] = f"--output={list_path.parent}/slurm-%A_%a.out"
    return _sbatch([*opts, str(slurm_script("sweep_array.sbatch")), str(list_path)], _env(per.pop()))
