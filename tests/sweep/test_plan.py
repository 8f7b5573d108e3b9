"""Sweep configs -> grids and plans: the cluster-scale plan is sane; relaunch decisions."""
from __future__ import annotations

import pytest

from atomforge.pipeline.cli import compose, _plain
from atomforge.pipeline.sweep import status
from atomforge.pipeline.sweep.plan import make_plan
from atomforge.pipeline.sweep.spec import SweepSpec


def test_cluster_plan_is_sane(tmp_path):
    cfg = _plain(compose(["sweep=omat_cluster", "cluster=slurm", f"sweep.out={tmp_path}",
                          f"data.root={tmp_path}/none"]))
    spec = SweepSpec.from_cfg(cfg)
    assert {r["role"] for r in make_plan(cfg, spec)["runs"]} == {"scan"}  # the lr scan comes first
    plan = make_plan(cfg, spec, preview=True)  # the grid at the default lr, for its cost
    runs = [r for r in plan["runs"] if r["role"] == "grid"]
    assert len(runs) == len(spec.sizes) * len(spec.budgets) == 25
    assert sum(r["role"] == "seed" for r in plan["runs"]) == 4
    assert max(r["params"] for r in runs) > 1e9 and max(r["structures"] for r in runs) >= 1.1e8
    by = {(r["size"], r["budget"]): r for r in runs}
    for s in spec.sizes:  # more data, proportionally more compute and time
        f = [by[(s.name, b)] for b in spec.budgets]
        assert all(a["flops"] < b["flops"] and a["wall_s"] < b["wall_s"] for a, b in zip(f, f[1:]))
        assert f[-1]["flops"] / f[0]["flops"] == pytest.approx(110, rel=0.01)
    for b in spec.budgets:  # bigger models cost more per atom
        f = [by[(s.name, b)]["flops"] for s in spec.sizes]
        assert f == sorted(f)
    measured = {r["size"] for r in runs if r["flops_measured"]}
    assert measured == {"esen_xs", "esen_s"}
    fpa = {r["size"]: r["flops_per_atom"] for r in runs}
    # counted training FLOPs per atom: at least 2 x params (one multiply-add per weight) and not absurdly more
    for r in runs:
        assert 2 * r["params"] < r["flops_per_atom"] < 1e4 * r["params"], r
    assert fpa["esen_xl"] > 100 * fpa["esen_s"]
    # a 2.6B model on 110M structures, 8 GPUs: days, not seconds or centuries
    longest = max(r["wall_s"] for r in runs)
    assert 86400 < longest < 60 * 86400


def test_grid_with_lrs_and_bad_configs():
    cfg = _plain(compose(["sweep=emt_demo", "sweep.lrs=[1e-3,3e-3]"]))
    spec = SweepSpec.from_cfg(cfg)
    runs = spec.runs(spec.default_lr(cfg))
    assert len(runs) == 3 * 4 * 2 and len({r.name for r in runs}) == 24
    assert "esen_3xs-D150-lr0.001" in {r.name for r in runs}
    with pytest.raises(ValueError, match="no sweep chosen"):
        SweepSpec.from_cfg(_plain(compose([])))
    with pytest.raises(ValueError, match="unknown ladder entry"):
        SweepSpec.from_cfg(_plain(compose(["sweep=emt_demo", "sweep.sizes=[esen_nope]"])))
    with pytest.raises(ValueError, match="unit must be one of"):
        SweepSpec.from_cfg(_plain(compose(["sweep=emt_demo", "sweep.unit=hours"])))


def test_relaunch_decisions(tmp_path):
    assert status.decide(status.read(tmp_path / "new"), 2) == "run"
    status.write(tmp_path / "a", status="done", attempts=1)
    assert status.decide(status.read(tmp_path / "a"), 2) == "skip"
    status.write(tmp_path / "b", status="failed", attempts=2)
    assert status.decide(status.read(tmp_path / "b"), 2) == "run"
    status.write(tmp_path / "b", attempts=3)
    assert status.decide(status.read(tmp_path / "b"), 2) == "give_up"
    status.write(tmp_path / "c", status="running", attempts=3)  # killed mid-run: counts as failed
    assert status.decide(status.read(tmp_path / "c"), 2) == "give_up"


def test_corpus_sweep_scan_then_grid_and_seeds(tmp_path):
    """The corpus ladder meets the issue's spans; before the lr scan is decided only the scan runs; after it, each
    size's grid at its chosen lr (the scan winner is the grid point, not rerun) plus the seed repeats."""
    import json

    import numpy as np

    cfg = _plain(compose(["sweep=corpus", f"sweep.out={tmp_path}"]))
    assert cfg["data"]["name"] == "teacher_foundation"
    spec = SweepSpec.from_cfg(cfg)
    assert len(spec.sizes) >= 4 and np.log10(max(spec.budgets) / min(spec.budgets)) >= 1.5
    scan = spec.runs(1e-3)
    assert {r.role for r in scan} == {"scan"} and len(scan) == len(spec.sizes) * len(spec.lr_scan["lrs"])
    chosen = {s.name: float(spec.lr_scan["lrs"][i % 2]) for i, s in enumerate(spec.sizes)}
    (tmp_path / "lr_scan.json").write_text(json.dumps({"chosen": chosen}))
    runs = spec.runs(1e-3)
    names = [r.name for r in runs]
    assert len(names) == len(set(names))
    grid = [r for r in runs if r.role == "grid"]
    assert len(grid) == len(spec.sizes) * len(spec.budgets) and all(r.lr == chosen[r.size.name] for r in grid)
    seeds = [r for r in runs if r.role == "seed"]
    assert len(seeds) == len(spec.seeds["points"]) * len(spec.seeds["seeds"])
    assert all(r.name.endswith(("-s1", "-s2")) for r in seeds)
    losers = [r for r in runs if r.role == "scan"]
    assert len(losers) == len(spec.sizes) * (len(spec.lr_scan["lrs"]) - 1)
    for bad, msg in ((["sweep.lr_scan.budget=7"], "must be one of the budgets"),
                     (["sweep.seeds.seeds=[0]"], "0 is the grid run itself"),
                     (["sweep.warmup_frac=1.5"], "warmup_frac")):
        with pytest.raises(ValueError, match=msg):
            SweepSpec.from_cfg(_plain(compose(["sweep=corpus", *bad])))
