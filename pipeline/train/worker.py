"""One rank's process: `python -m atomforge.pipeline.train.worker <run_dir>/train_config.json`."""
from __future__ import annotations

import json
import logging
import os
import sys

import torch.distributed as dist

from atomforge.pipeline.train.config import TrainConfig
from atomforge.pipeline.train.lifeline import rank_dies_with_parent
from atomforge.pipeline.train.signals import hold_early


def run(tc: TrainConfig) -> dict:
    from atomforge.pipeline.train.callbacks import default_callbacks
    from atomforge.pipeline.train.callbacks.faults import from_env
    from atomforge.pipeline.train.trainer import Trainer, init_distributed

    init_distributed(tc)
    trainer = None
    try:
        # fault injection first: a poisoned loss must reach the loss guard
        trainer = Trainer(tc, [*from_env(), *default_callbacks(tc)])
        return trainer.fit()
    finally:
        if trainer is not None:
            trainer.close()
        if dist.is_initialized():
            dist.destroy_process_group()


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    rank_dies_with_parent()
    hold_early()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if "SLURM_STEP_ID" in os.environ and "TORCHELASTIC_RUN_ID" not in os.environ:
        sys.exit("atomforge: error: ranks are started by torchrun (python -m atomforge.pipeline.train.node), "
                 "one srun task per node")
    with open(argv[0]) as f:
        tc = TrainConfig.from_dict(json.load(f))
    from atomforge.pipeline.train.checkpoint import CheckpointError
    from atomforge.pipeline.train.guard import NonFiniteLoss
    from atomforge.pipeline.data.loader import CorruptInput
    from atomforge.pipeline.train.safe_load import UnsafeFileError

    try:
        run(tc)
    except (CheckpointError, NonFiniteLoss, UnsafeFileError, CorruptInput) as e:
        # expected: one line, not a traceback per rank
        lines = str(e).strip().splitlines()  # a DataLoader worker's error arrives wrapped in torch's own lines
        print(f"atomforge: error: {lines[-1] if lines else type(e).__name__}", file=sys.stderr, flush=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
