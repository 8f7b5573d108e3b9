"""A real (tiny) sweep: hydra multirun launch, relaunch skips finished runs and retries failed ones, collect, fit
refusal."""
from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from atomforge.pipeline.cli import main
from atomforge.pipeline.sweep import status


@pytest.mark.slow
def test_launch_relaunch_collect(emt_dataset, tmp_path, capsys):
    out = tmp_path / "sweep"
    args = ["sweep=emt_demo", f"data.root={emt_dataset}", f"sweep.out={out}", f"sweep.report_dir={tmp_path / 'fit'}",
            "sweep.sizes=[esen_xs]", "sweep.budgets=[8,16]", "sweep.train.max_atoms=96", "sweep.max_retries=1"]
    assert main(["sweep", "launch", *args]) == 0
    a, b = out / "runs" / "esen_xs-D8-lr0.003", out / "runs" / "esen_xs-D16-lr0.003"
    for r in (a, b):
        st = status.read(r)
        assert st["status"] == "done" and st["attempts"] == 1, st
        assert (r / "metrics.jsonl").is_file() and (r / "re_eval.json").is_file()
    assert "2 to run" in capsys.readouterr().out

    status.write(b, status="failed", error="simulated node loss")  # relaunch: a skipped, b retried
    assert main(["sweep", "launch", *args]) == 0
    assert status.read(a)["attempts"] == 1 and status.read(b) | {} == status.read(b)
    assert status.read(b)["status"] == "done" and status.read(b)["attempts"] == 2
    assert "1 to run, 1 finished" in capsys.readouterr().out

    status.write(b, status="failed")  # attempts 2 = 1 + max_retries: given up, nothing launched
    assert main(["sweep", "launch", *args]) == 0
    assert "0 to run, 1 finished, 1 failed past the retry limit" in capsys.readouterr().out

    assert main(["sweep", "collect", *args]) == 0
    rows = {r["run"]: r for r in pq.read_table(out / "results.parquet").to_pylist()}
    ra, rb = rows[a.name], rows[b.name]
    assert ra["status"] == "done" and rb["status"] == "failed"
    assert ra["N"] > ra["N_nonembed"] > 0
    assert ra["D_atoms"] >= 8 and ra["compute"] == pytest.approx(ra["flops_per_atom"] * ra["D_atoms"])
    assert 0 < ra["final_val_force_mae"] and ra["best_val_force_mae"] <= ra["final_val_force_mae"]
    assert ra["wall_s"] > 0 and ra["steps"] >= 1

    assert main(["sweep", "fit", *args]) == 2  # one finished run cannot carry five parameters
    assert "too few finished runs" in capsys.readouterr().err
