"""End to end: a real small run with several checkpoints, `atomforge eval select`, export checkpoint=best,
and `atomforge eval` with RE metrics, a property test through the model's ASE calculator, and plots."""
from __future__ import annotations

import json

import pytest

from atomforge.pipeline.cli import main


@pytest.fixture(scope="module")
def run_with_checkpoints(emt_dataset, tmp_path_factory):
    from helpers import train

    return train(tmp_path_factory.mktemp("runs") / "sel", emt_dataset, steps=6, ckpt_every=2, keep_last=5, world_size=1,
                 select_best=True, val_split="train")


@pytest.mark.slow
def test_select_ranks_checkpoints_and_export_best(run_with_checkpoints, emt_dataset, tmp_path, capsys):
    run = run_with_checkpoints
    chosen_in_training = json.loads((run / "best_checkpoint.json").read_text())  # train.select_best=true
    assert chosen_in_training["metric"] == "selection_score" and chosen_in_training["split"] == "train"
    args = [f"data.root={emt_dataset}", f"run={run}"]
    assert main(["eval", "select", *args, "eval.select_split=train"]) == 0
    out = capsys.readouterr().out
    sel = json.loads((run / "selection.json").read_text())
    assert set(sel["checkpoints"]) == {"step_00000002", "step_00000004", "step_00000006"}
    for row in sel["checkpoints"].values():
        assert row["selection_score"] == pytest.approx(row["force_rmse"] + (row["re_force_rms"] or 0.0))
    assert sorted(r["rank_selection_score"] for r in sel["checkpoints"].values()) == [1, 2, 3]
    best = json.loads((run / "best_checkpoint.json").read_text())
    assert best["tag"] == sel["best"] and sel["checkpoints"][best["tag"]]["rank_selection_score"] == 1
    assert "best by selection_score" in out
    assert main(["eval", "select", *args, "eval.select_split=test"]) == 0  # a ranking on test never chooses
    assert "analysis only" in capsys.readouterr().out
    assert json.loads((run / "best_checkpoint.json").read_text()) == best
    assert json.loads((run / "ranking-test.json").read_text())["split"] == "test"
    assert main(["export", f"run={run}", "checkpoint=best", f"out={tmp_path / 'hub'}"]) == 0
    assert json.loads((tmp_path / "hub" / "config.json").read_text())["training"]["checkpoint"] == best["tag"]

    ev = tmp_path / "eval"
    assert main(["eval", f"data.root={emt_dataset}", f"eval.model={tmp_path / 'hub'}", f"out={ev}", "split=train",
                 "eval.properties.elements=[Cu]", "eval.properties.which=[vacancy_formation_energy,nve_energy_drift]",
                 "eval.properties.md_steps=10"]) == 0
    rep = json.loads((ev / "report.json").read_text())
    assert rep["rare_events"]["all_force_rms"] > 0 and "force_rmse" in rep["all"]
    vf = rep["properties"]["Cu"]["vacancy_formation_energy"]
    assert vf["error"] == pytest.approx(vf["model"] - vf["reference"]) and vf["reference"] > 0.5
    assert rep["definitions"]["re_force_rms"]["units"] == "eV/Å"
    for png in ("parity.png", "re_error_cdf.png", "energy_drift.png"):
        assert (ev / png).stat().st_size > 1000
    assert "## rare_events" in (ev / "report.md").read_text()


def test_select_without_run_is_a_one_line_error(emt_dataset, tmp_path, capsys):
    assert main(["eval", "select", f"data.root={emt_dataset}", f"run={tmp_path / 'nope'}"]) == 2
    assert "run directory not found" in capsys.readouterr().err
