"""One node's launcher: `python -m atomforge.pipeline.train.node [torchrun args] <train_config.json>`.

It runs torchrun (which starts one rank per GPU, or per `--nproc-per-node` on CPU) and makes preemption
safe: torchrun itself ignores SIGUSR1/SIGTERM (its default would kill the ranks mid-step), and this
process forwards them to every rank, which finish their step and checkpoint. Exit status 75 means
"preempted, checkpoint written: run the same command again to resume".

On SLURM there is exactly one task per node (`srun --ntasks-per-node=1`); torchrun does the per-GPU
fan-out and the c10d rendezvous. Starting one task per GPU is refused, so the two schemes cannot mix.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import psutil

from atomforge.data_prep.lock import FolderLocked, OutputLock
from atomforge.pipeline import runtime
from atomforge.pipeline.train.lifeline import torchrun_preexec
from atomforge.pipeline.train.signals import EXIT_REQUEUE, PREEMPT_SIGNALS, preempted
from atomforge.data_prep.errors import AtomforgeError


RUN_LOCK = ".train.lock"


class LaunchError(AtomforgeError, RuntimeError):
    pass


def run_lock(run_dir: Path) -> OutputLock:
    """One training at a time per run folder (a kernel flock: a killed owner never leaves it held)."""
    return OutputLock(run_dir, RUN_LOCK, "training")


def check_slurm_layout(env=os.environ):
    """One srun task per node: more tasks than nodes would start torchrun twice on a node."""
    if "SLURM_STEP_ID" not in env and "SLURM_STEPID" not in env:
        return
    tasks, nodes = (env.get("SLURM_NTASKS") or env.get("SLURM_NPROCS"),
                    env.get("SLURM_NNODES") or env.get("SLURM_JOB_NUM_NODES"))
    if tasks and nodes and int(tasks) != int(nodes):
        raise LaunchError(f"srun started {tasks} tasks on {nodes} nodes: use one task per node "
                          "(srun --ntasks-per-node=1); torchrun starts the per-GPU ranks itself")


@contextmanager
def forwarding_signals():
    """While inside, a preemption signal to this process goes to every process it started (torchrun ignores it,
    its ranks checkpoint and exit) instead of killing it. Only the main thread can set handlers: runs launched
    from other threads (parallel runs of a reproduce recipe) rely on the main thread being inside this too."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def forward(signum, frame):
        try:
            children = psutil.Process().children(recursive=True)
        except psutil.Error:
            return
        for child in children:
            try:
                child.send_signal(signum)
            except psutil.Error:
                pass  # a rank already gone: torchrun reports it

    old = {s: signal.signal(s, forward) for s in PREEMPT_SIGNALS}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def run_node(torchrun_args: list[str], config_path: str, env: dict | None = None) -> int:
    runtime.prepare()  # DeepSpeed's op in this environment's folder, a stale build lock cleared (srun starts here too)
    env = dict(os.environ if env is None else env)
    env.setdefault("TORCH_EXTENSIONS_DIR", os.environ["TORCH_EXTENSIONS_DIR"])
    check_slurm_layout(env)
    run_dir = Path(json.loads(Path(config_path).read_text())["run_dir"])
    # torchrun would turn SIGTERM/SIGINT into killing the ranks mid-step: they are ours (forwarded, checkpointed)
    handle = [] if any(a.startswith("--signals") for a in torchrun_args) else ["--signals-to-handle", "SIGHUP,SIGQUIT"]
    cmd = [sys.executable, "-m", "torch.distributed.run", *handle, *torchrun_args, "-m",
           "atomforge.pipeline.train.worker",
           config_path]
    proc = subprocess.Popen(cmd, env=env, preexec_fn=partial(torchrun_preexec, os.getpid()))
    with forwarding_signals():
        rc = proc.wait()
    if rc == 0 and preempted(run_dir):
        return EXIT_REQUEUE
    return rc


def _node_rank(torchrun_args: list[str]) -> str:
    for i, a in enumerate(torchrun_args):
        for flag in ("--node-rank", "--node_rank"):
            if a == flag and i + 1 < len(torchrun_args):
                return torchrun_args[i + 1]
            if a.startswith(flag + "="):
                return a.split("=", 1)[1]
    return os.environ.get("SLURM_NODEID") or os.environ.get("PET_NODE_RANK") or "0"


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        print("usage: python -m atomforge.pipeline.train.node [torchrun args] <train_config.json>", file=sys.stderr)
        return 2
    try:
        if _node_rank(argv[:-1]) != "0":  # one lock per run, held by the first node's launcher
            return run_node(argv[:-1], argv[-1])
        with run_lock(Path(json.loads(Path(argv[-1]).read_text())["run_dir"])):
            return run_node(argv[:-1], argv[-1])
    except (LaunchError, FolderLocked) as e:
        print(f"atomforge: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
