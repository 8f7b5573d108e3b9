"""`atomforge demo` end to end: 2 real DeepSpeed ranks, export, eval, reload reproducing the trained model."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_demo_end_to_end(tmp_path):
    p = subprocess.run(
        [sys.executable, "-m", "atomforge.pipeline.cli", "demo", f"paths.data={tmp_path}/data",
         f"paths.runs={tmp_path}/runs",
         "train.steps=40", "train.eval_every=20", "train.ckpt_every=20",
         "data.build.sources.0.per_kind={bulk: 8, strain: 8, rattle: 8, vacancy: 8, surface: 4, md: 16}"],
        capture_output=True, text=True, cwd=REPO, timeout=900)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    run = tmp_path / "runs" / "esen_xs-emt_demo"
    ranks = json.loads((run / "ranks.json").read_text())
    assert ranks["world_size"] == 2 and ranks["steps_per_rank"] == [40, 40]
    rel = float(re.search(r"max relative difference ([0-9.e+-]+)", p.stdout).group(1))
    assert rel <= 1e-6
    rows = [json.loads(ln) for ln in (run / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in rows if "loss" in r]
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5  # it learns
    for f in ("config.json", "model.safetensors", "README.md"):
        assert (run / "hub" / f).is_file()
    assert (run / "eval" / "report.md").is_file()
    report = json.loads((run / "eval" / "report.json").read_text())
    assert report["all"]["force_mae"] < 1.0
    assert list((run / "wandb").glob("offline-run-*")), "wandb should have written an offline run"
