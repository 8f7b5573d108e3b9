"""train.select_best: rank a finished run's checkpoints on its validation split (best_checkpoint.json).

Training sits below evaluation, so this runs after training, where it was launched: the CLI, reproduce, sweep
and demo call `select_after_training`; SLURM jobs run `python -m atomforge.pipeline.evaluate.after_training
<run_dir>/train_config.json` once training has exited 0.
"""
from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

from atomforge.pipeline.train.run_dir import RunDir

log = logging.getLogger(__name__)


def select_after_training(tc) -> str | None:
    """The best checkpoint's tag when tc.select_best and the run reached tc.steps (summary.json), else None. Call
    it once training has exited 0; under torchrun only rank 0 selects."""
    summary = RunDir(tc.run_dir).summary
    if not tc.select_best or os.environ.get("RANK", "0") != "0" or not summary.is_file():
        return None
    if json.loads(summary.read_text())["steps"] < tc.steps:  # stopped early (train.stop_after)
        return None
    from atomforge.pipeline.evaluate.select import select_checkpoints

    best = select_checkpoints(str(tc.run_dir), tc.data_root, split=tc.val_split, progress=False)["best"]
    log.info("best checkpoint by force RMSE + RE force error on %s: %s", tc.val_split, best)
    return best


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    cfg = json.loads(Path(argv[0]).read_text())
    if cfg.get("select_best"):  # else done before the imports
        from atomforge.pipeline.train.config import TrainConfig

        select_after_training(TrainConfig.from_dict(cfg))
    return 0


if __name__ == "__main__":
    sys.exit(main())
