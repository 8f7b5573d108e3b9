"""Start training under torchrun (gloo on CPU, NCCL on GPU); inside a torchrun rank, run in this process."""
from __future__ import annotations

import json
import os
from pathlib import Path

from atomforge.pipeline import runtime
from atomforge.pipeline.train.config import TrainConfig
from atomforge.pipeline.train.node import run_lock, run_node
from atomforge.pipeline.train.run_dir import RunDir
from atomforge.pipeline.train.signals import EXIT_REQUEUE, preempted


def launch(tc: TrainConfig, concurrent_runs: int = 1) -> int:
    """`concurrent_runs`: trainings this process runs side by side; they share the cores (one OpenMP pool per rank
    of each, not one per core each) unless OMP_NUM_THREADS is set."""
    run_dir = Path(tc.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg_path = RunDir(run_dir).config
    if "TORCHELASTIC_RUN_ID" in os.environ or "LOCAL_RANK" in os.environ:  # already a rank under torchrun
        from atomforge.pipeline.train.worker import run

        cfg_path.write_text(json.dumps(tc.to_dict(), indent=1))
        run(tc)
        return EXIT_REQUEUE if preempted(run_dir) else 0
    vet_inputs(tc)
    with run_lock(run_dir):  # before anything is written: a second training must not touch a running one's folder
        cfg_path.write_text(json.dumps(tc.to_dict(), indent=1))
        return _start(tc, cfg_path, concurrent_runs)


def vet_inputs(tc: TrainConfig) -> None:
    """Refuse a received run or parent checkpoint with pickled code before any rank starts (the ranks' weights-only
    loads would refuse it too, after seconds of start-up, with the message in a rank's log)."""
    from atomforge.pipeline.train.safe_load import vet

    vet(RunDir(tc.run_dir).checkpoints)
    if tc.resume not in ("auto", "none") and Path(tc.resume).is_dir():  # a checkpoint of another run
        vet(tc.resume)
    if tc.init_from and (Path(tc.init_from) / "ema.pt").is_file():  # a checkpoint folder, not an exported model
        vet(tc.init_from)


def _start(tc: TrainConfig, cfg_path: Path, concurrent_runs: int) -> int:
    cuda = _has_cuda()
    runtime.check_world_size(tc.world_size, cuda, _gpus() if cuda else 0)
    runtime.announce_build(tc.world_size, cuda)
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 2) // (tc.world_size * max(1, concurrent_runs)))))
    if not cuda:
        env.setdefault("DS_ACCELERATOR", "cpu")
    args = ["--nproc_per_node", str(tc.world_size), "--rdzv_backend", "c10d", "--rdzv_endpoint", "127.0.0.1:0",
            "--max_restarts", "0"]
    return run_node(args, str(cfg_path), env)  # 75: preempted, checkpoint written


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _gpus() -> int:
    import torch

    return torch.cuda.device_count()
