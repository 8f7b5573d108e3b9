"""`atomforge reproduce foundation` and `atomforge reproduce finetune target=<folder>` as users run them, in
their smoke variants: the whole chain (corpus + per-dataset heads, direct then conservative, shipped folder;
then fine-tuning that folder on a fresh mlearn-format folder given by path, beside scratch, with replay and
forgetting). Checks the chain, not the numbers."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from atomforge.pipeline.cli import main
from atomforge.pipeline.reproduce import out_dir

SI = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "mlearn" / "Si"


def _mlearn_folder(dst: Path, every: int = 8, n_test: int = 4) -> Path:
    """An mlearn-format element folder of our own (not one of ../shared/data's paths): every 8th Si training
    record (all of the file's groups, so val is never empty) and a few test records."""
    dst.mkdir(parents=True)
    train = json.loads((SI / "training.json").read_text())[::every]
    (dst / "training.json").write_text(json.dumps(train))
    (dst / "test.json").write_text(json.dumps(json.loads((SI / "test.json").read_text())[:n_test]))
    return dst


@pytest.fixture(scope="module")
def foundation(tmp_path_factory):
    root = tmp_path_factory.mktemp("foundation")
    out, work = root / "out", root / "work"
    rc = main(["reproduce", "foundation", "smoke=true", f"out={out}", f"work={work}"])
    return rc, out, work


@pytest.mark.slow
def test_foundation_smoke_ships_a_multi_head_conservative_model(foundation):
    import atomforge
    from ase.build import bulk

    rc, out, work = foundation
    assert rc == 0
    m = json.loads((out / "metrics.json").read_text())
    ship = Path(m["ship"])
    assert (ship.is_relative_to(work) and (ship / "model.safetensors").is_file()
            and (ship / "inference_ckpt.pt").is_file())
    # the result ships its model
    assert sorted(p.name for p in (out / "model").iterdir()) == sorted(p.name for p in ship.iterdir())
    cfg = json.loads((ship / "config.json").read_text())
    arch = cfg["architecture"]
    assert arch["force_mode"] == "conservative" and sorted(arch["tasks"]) == ["emt", "silicon_re", "teacher"]
    assert arch["default_task"] == "teacher" and set(arch["task_references"]) == {"emt", "silicon_re", "teacher"}
    assert arch["task_references"]["teacher"] != arch["task_references"]["silicon_re"]  # each dataset its own zero
    assert [c["force_mode"] for c in m["compute"].values()] == ["direct", "conservative"]
    assert all(c["flops"] > 0 and c["atoms"] > 0 for c in m["compute"].values())
    assert m["ship_mb"] < 50 and cfg["recipe"]["training_flops"] == pytest.approx(m["total_flops"])
    card = (ship / "README.md").read_text()
    assert "## How it was made" in card and "`silicon_re`" in card and "FLOPs" in card
    for name, row in m["zero_shot"].items():
        assert math.isfinite(row["force_mae"]), name
    report = (out / "report.md").read_text()
    assert "sevennet:7net-0" in report and "chgnet:0.3.0" in report and "atomforge (this model)" in report

    a = bulk("Si", "diamond", a=5.43, cubic=True)
    a.rattle(0.05, seed=0)
    a.calc = atomforge.calculator(str(ship))
    e_ours = a.get_potential_energy()
    a.calc = atomforge.fairchem_calculator(str(ship))  # the default head, through fairchem's calculator
    assert a.get_potential_energy() == pytest.approx(e_ours, abs=1e-4)
    a.calc = atomforge.calculator(str(ship), task="silicon_re")
    assert abs(a.get_potential_energy() - e_ours) > 1e-3  # another head, other references
    with pytest.raises(ValueError, match="not one of this model's heads"):
        atomforge.calculator(str(ship), task="nope").get_potential_energy(a)


@pytest.mark.slow
def test_finetune_smoke_on_an_mlearn_folder_given_by_path(foundation, tmp_path, capsys):
    rc, out, work = foundation
    assert rc == 0
    ship = json.loads((out / "metrics.json").read_text())["ship"]
    target = _mlearn_folder(tmp_path / "data" / "Xy")
    ft_out, ft_work = tmp_path / "out", tmp_path / "work"
    # the ladder [1, 2, 4] with until_flat stops once scratch is flat from x1 to x2 (a tolerance every gain is
    # below), so x4 is never trained; replay reads the corpus the foundation smoke built (cached, not relabelled)
    rc = main(["reproduce", "finetune", "smoke=true", f"target={target}", f"parent={ship}", f"out={ft_out}",
               f"work={ft_work}", "reproduce.budgets=[1,2,4]", "reproduce.until_flat=true",
               "reproduce.converged_tolerance=1e9", f"reproduce.replay.corpus_root={work / 'data' / 'corpus'}",
               "reproduce.scratch_lrs=[2.0e-3]"])  # keys given here win over the smoke overlay's
    assert rc == 0, capsys.readouterr().err
    m = json.loads((ft_out / "metrics.json").read_text())
    assert m["label"] == "Xy" and set(m["curves"]) == {"scratch", "finetune", "replay"}
    for v, curve in m["curves"].items():
        for row in curve.values():
            assert math.isfinite(row["force_mae"]) and row["n_train"] > 0, v
    lad = m["budget_ladder"]
    assert lad["until_flat"] and lad["budgets"] == ["1", "2", "4"] and lad["trained"] == ["1", "2"]
    assert "from x1 to x2" in lad["stopped"] and not any("_x4" in n for n in m["runs"])
    scratch = m["curves"]["scratch"]["0.5"]
    assert "convergence" in scratch and set(scratch["lr_scan"]) == {"0.002"}
    assert {"scratch_050", "scratch_050_x2"} <= set(m["runs"])
    # both fine-tuned variants scan their learning rates and keep the val-best (never test); forgetting is
    # reported for the run each one chose
    for v in ("finetune", "replay"):
        ft = m["curves"][v]["0.5"]
        assert set(ft["lr_scan"]) == {"0.001", "0.0005"} and {f"{v}_050_x2", f"{v}_050_x2_lr0.0005"} <= set(m["runs"])
        assert ft["val_force_rmse"] == min(x["val_force_rmse"] for x in ft["lr_scan"].values())
    chosen = {m["budgets"][b][v]["0.5"]["run"] for b in ("1", "2") for v in ("finetune", "replay")}
    assert set(m["forgetting"]) == {"parent"} | chosen and len(chosen) == 4
    # every variant at both budgets; the claims (curves) use the larger, scratch is also checked across budgets
    assert set(m["budgets"]) == {"1", "2"} and m["budgets"]["1"]["finetune"]["0.5"]["steps"] == 3
    assert all(c["0.5"]["steps"] == 6 for c in m["curves"].values())
    assert m["curves"]["finetune"]["0.5"]["run"].startswith("finetune_050_x2") and "_x2" in m["model"]["from"]
    gain = scratch["convergence"]["by_budget"]
    assert gain["val_force_rmse"] == [m["budgets"]["1"]["scratch"]["0.5"]["val_force_rmse"],
                                      scratch["val_force_rmse"]] and gain["flat"]
    assert all(f["task"] == "teacher" for f in m["forgetting"].values())
    assert set(m["zero_shot"]) == {"foundation (zero-shot)", "sevennet:7net-0 (zero-shot)"}
    hub = Path(m["runs"]["replay_050"]) / "hub"
    arch = json.loads((hub / "config.json").read_text())["architecture"]
    assert "target" in arch["tasks"] and "teacher" in arch["tasks"] and arch["default_task"] == "target"
    assert json.loads((ft_out / "model" / "config.json").read_text())["architecture"]["default_task"] == "target"
    report = (ft_out / "report.md").read_text()
    assert (ft_out / "force_mae_vs_data.png").is_file() and "## Forgetting" in report
    assert "## Training budget" in report and "each times 1, 2" in report and "it stopped at x2" in report
    assert "target at least 10x: " in report  # the parent's pre-training compute against one fine-tune
    assert "## Learning rates" in report and "(scratch 0.002)" in report
    assert "fine-tuned runs use lr the val-best of 0.001, 0.0005" in report and "ramped as min(decay" in report


def test_finetune_result_folder_defaults_to_the_target_name(tmp_path):
    target = _mlearn_folder(tmp_path / "data" / "Xy")
    cfg = {"reproduce": {"name": "finetune", "target": str(target), "out": None, "work": None}}
    assert out_dir("finetune", cfg) == "results/finetune-Xy"  # what the CLI's last line names
    assert out_dir("finetune", {"reproduce": {**cfg["reproduce"], "out": "elsewhere"}}) == "elsewhere"


def test_finetune_refuses_a_folder_that_is_not_mlearn_format(tmp_path, capsys):
    (tmp_path / "Xy").mkdir()
    rc = main(["reproduce", "finetune", f"target={tmp_path / 'Xy'}", f"out={tmp_path / 'o'}", f"work={tmp_path / 'w'}"])
    err = capsys.readouterr().err
    assert rc != 0 and "not an mlearn-format element folder (missing training.json, test.json)" in err
