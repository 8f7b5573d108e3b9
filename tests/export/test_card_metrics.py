"""Eval after export: the report lands in the model folder and its card gains a model-index with units."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


def test_eval_of_a_folder_writes_beside_it_and_fills_the_card(exported, emt_dataset, tmp_path):
    from huggingface_hub import ModelCard

    from atomforge.pipeline.export import load

    folder = Path(shutil.copytree(exported, tmp_path / "model"))
    assert json.loads((folder / "config.json").read_text())["metrics"] == {}  # exported before any eval
    p = subprocess.run([sys.executable, "-m", "atomforge.pipeline.cli", "eval", f"data.root={emt_dataset}",
                        f"eval.model={folder}", "eval.plots=false"], cwd=REPO, capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    assert (folder / "eval" / "report.json").is_file()
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["metrics"]["force_mae"] > 0 and cfg["metrics_dataset"]["split"] == "test"
    card = ModelCard.load(folder / "README.md")
    results = card.data.eval_results
    assert results and {r.metric_type for r in results} >= {"force_mae"}
    assert any("eV/Å" in (r.metric_name or "") for r in results) and "Training data" in card.text
    assert "BSD" not in card.text and "EMT" in card.text  # this model's data is generated EMT, not mlearn
    load(folder)  # weights and their checksum untouched
    assert oct((folder / "README.md").stat().st_mode & 0o777) == "0o644"
