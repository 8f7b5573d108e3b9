"""Two node launchers with --nnodes 2 on localhost stand in for two machines: they meet at a c10d
rendezvous hosted by the first and train as one 2-rank job."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def test_two_torchrun_nodes_train_together(emt_dataset, tmp_path):
    from atomforge.pipeline.train.config import TrainConfig

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    cfg = TrainConfig.from_dict({"run_dir": str(run_dir), "data_root": str(emt_dataset), "steps": 3, "max_atoms": 128,
                                 "wandb": False, "progress": False, "ckpt_every": 0, "warmup_steps": 1,
                                 "world_size": 2})
    cfg_path = run_dir / "train_config.json"
    cfg_path.write_text(json.dumps(cfg.to_dict()))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    nodes = [subprocess.Popen([sys.executable, "-m", "atomforge.pipeline.train.node", "--nnodes", "2",
                               "--nproc-per-node", "1",
                               "--node-rank", str(i), "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}",
                               "--rdzv-id", "two-nodes", "--max-restarts", "0", str(cfg_path)],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for i in range(2)]
    outs = [n.communicate(timeout=300)[0] for n in nodes]
    assert [n.returncode for n in nodes] == [0, 0], outs[0][-1500:] + outs[1][-1500:]
    assert json.loads((run_dir / "ranks.json").read_text()) == {"world_size": 2, "steps_per_rank": [3, 3]}
    assert (run_dir / "checkpoints" / "step_00000003" / "COMPLETE").is_file()

