"""RunDir: the one reader of a run folder's layout (checkpoints by tag, step or `best`; metrics rows)."""
from __future__ import annotations

import json

import pytest

from atomforge.pipeline.train.run_dir import MARKER, RunDir


def test_checkpoints_by_latest_step_tag_and_best(tmp_path):
    run = RunDir(tmp_path / "run")
    with pytest.raises(FileNotFoundError, match="no complete checkpoint"):
        run.checkpoint()
    for step, done in ((2, True), (4, True), (6, False)):  # step 6 was cut off before COMPLETE
        d = run.checkpoints / f"step_{step:08d}"
        d.mkdir(parents=True)
        if done:
            (d / MARKER).write_text("{}")
    assert [c.name for c in run.complete_checkpoints()] == ["step_00000002", "step_00000004"]
    assert run.checkpoint().name == "step_00000004" and run.checkpoint("2").name == "step_00000002"
    assert run.checkpoint("step_00000002").name == "step_00000002"
    with pytest.raises(FileNotFoundError, match="step_00000006 not found or incomplete"):
        run.checkpoint("6")
    with pytest.raises(FileNotFoundError, match="atomforge eval select"):
        run.checkpoint("best")
    run.best.write_text(json.dumps({"tag": "step_00000002"}))
    assert run.checkpoint("best").name == "step_00000002" and run.is_run()


def test_rows_are_every_metrics_line_in_order(tmp_path):
    run = RunDir(tmp_path)
    assert run.rows() == [] and not run.is_run()
    run.metrics.write_text('{"step": 1, "loss": 2.0}\n\n{"step": 1, "val_loss": 1.5}\n{"step": 2, "final": true}\n')
    assert [r["step"] for r in run.rows()] == [1, 1, 2] and run.rows()[2]["final"]
