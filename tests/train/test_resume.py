"""A run stopped at step 30 of 60 and resumed matches the uninterrupted run's loss at every step (fp32)."""
from __future__ import annotations

import json

import pytest

from helpers import step_rows as losses, train

STEPS, STOP = 60, 30
COMMON = dict(world_size=2, steps=STEPS, max_atoms=64, deepspeed={"stage": 2}, ckpt_every=STOP, keep_last=2,
              warmup_steps=5)


@pytest.mark.slow
def test_stop_and_resume_matches_uninterrupted(emt_dataset, tmp_path):
    full = losses(train(tmp_path / "full", emt_dataset, **COMMON))
    part = tmp_path / "part"
    train(part, emt_dataset, stop_after=STOP, **COMMON)
    assert max(losses(part)) == STOP
    assert (part / "checkpoints" / f"step_{STOP:08d}" / "COMPLETE").is_file()
    resumed = losses(train(part, emt_dataset, **COMMON))  # resume=auto picks step 30
    assert sorted(resumed) == list(range(1, STEPS + 1)) == sorted(full)
    for s in range(1, STEPS + 1):
        for k in ("loss", "energy", "forces", "lr"):
            assert resumed[s][k] == pytest.approx(full[s][k], rel=1e-5, abs=1e-12), (s, k, resumed[s][k], full[s][k])
    # the loss falls on EMT data (ZeRO-2, two ranks), and both ranks stepped
    first, last = [full[s]["loss"] for s in range(1, 11)], [full[s]["loss"] for s in range(STEPS - 9, STEPS + 1)]
    assert sum(last) < 0.7 * sum(first)
    assert json.loads((part / "ranks.json").read_text())["steps_per_rank"] == [STEPS, STEPS]
