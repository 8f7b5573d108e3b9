"""The fitter on synthetic losses drawn from a known law with noise, and its refusals."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from atomforge.pipeline.sweep.analyze import analyze
from atomforge.pipeline.sweep.fit import FitError, Law, bootstrap, compute_optimal, fit_1d, fit_law

TRUE = Law(E=0.05, A=30.0, alpha=0.35, B=200.0, beta=0.4)


def synthetic(seed=1, noise=0.02, sizes=5, budgets=6):
    rng = np.random.default_rng(seed)
    N, D = np.meshgrid(np.geomspace(1e4, 1e7, sizes), np.geomspace(1e5, 1e9, budgets))
    N, D = N.ravel(), D.ravel()
    return N, D, TRUE(N, D) * np.exp(rng.normal(0, noise, N.size))


@pytest.mark.parametrize("seed", [1])
def test_recovers_exponents_within_bootstrap_intervals(seed):
    N, D, L = synthetic(seed)
    law, _, starts = fit_law(N, D, L)
    ci = bootstrap(N, D, L, starts, n_boot=40, seed=seed)
    for p in ("alpha", "beta"):
        lo, hi = ci[p]
        assert lo <= getattr(TRUE, p) <= hi, (p, ci[p], getattr(law, p))
        assert hi - lo < 0.2  # informative, not a trivially wide interval
    assert abs(law.alpha - TRUE.alpha) < 0.05 and abs(law.beta - TRUE.beta) < 0.05


def test_one_dimensional_and_compute_optimal():
    N = np.geomspace(1e4, 1e7, 6)
    r = fit_1d(N, 0.1 + 50 / N ** 0.5)
    assert abs(r["exponent"] - 0.5) < 0.02 and abs(r["E"] - 0.1) < 0.01
    assert fit_1d(N[:2], N[:2]) is None
    opt = compute_optimal(TRUE, c=100.0, gamma=1.0, C=np.geomspace(1e15, 1e20, 4))
    k = TRUE.alpha + TRUE.beta
    assert opt["N_exponent"] == pytest.approx(TRUE.beta / k) and opt["D_exponent"] == pytest.approx(TRUE.alpha / k)
    # the closed form is the minimum along the iso-FLOP line
    C, n_opt = 1e18, opt["N_opt"][2] if False else compute_optimal(TRUE, 100.0, 1.0, [1e18])["N_opt"][0]
    nn = np.geomspace(n_opt / 10, n_opt * 10, 401)
    best = nn[np.argmin(TRUE(nn, C / (100.0 * nn)))]
    assert abs(np.log(best / n_opt)) < 0.03


def test_refuses_too_few_runs_and_degenerate_grids():
    N, D, L = synthetic()
    with pytest.raises(FitError, match="too few finished runs"):
        fit_law(N[:5], D[:5], L[:5])
    with pytest.raises(FitError, match="2 distinct model sizes"):
        fit_law(np.full(8, 1e5), D[:8], L[:8])


def _results(tmp_path, rows):
    p = tmp_path / "results.parquet"
    pq.write_table(pa.Table.from_pylist(rows), p)
    return p


def _row(i, n, d, loss, status="done"):
    return {"run": f"r{i}", "status": status, "budget": d, "N_nonembed": n, "D_atoms": d, "compute": 50 * n * d,
            "flops_per_atom": 50 * n, "final_val_force_mae": loss, "wall_s": 1.0}


def test_analyze_refuses_all_failed_runs(tmp_path):
    rows = [_row(i, 1e4 * (i + 1), 1e5, None, status="failed") for i in range(8)]
    with pytest.raises(FitError, match=r"no finished runs to fit .*8 failed"):
        analyze(_results(tmp_path, rows), tmp_path / "fit")


def test_analyze_writes_fit_plots_and_heldout_check(tmp_path):
    N, D, L = synthetic(noise=0.01, sizes=4, budgets=4)
    rows = [_row(i, n, d, loss) for i, (n, d, loss) in enumerate(zip(N, D, L))]
    res = analyze(_results(tmp_path, rows), tmp_path / "fit", n_boot=12)
    out = tmp_path / "fit"
    for f in ("fit.json", "summary.md", "loss_vs_D.png", "isoflop.png", "frontier.png"):
        assert (out / f).stat().st_size > 0
    top = int(np.argmax(N * D))
    assert res["heldout"]["heldout_runs"] == [f"r{top}"]
    # signed: predicted over measured minus one, and small for data that follow the law
    h = res["heldout"]
    assert res["heldout_rel_error"] == pytest.approx(h["predicted"][0] / h["measured"][0] - 1)
    assert abs(res["heldout_rel_error"]) < 0.1
    assert res["flops_per_atom"]["gamma"] == pytest.approx(1.0)


def test_analyze_with_seeds_scan_rows_and_downstream(tmp_path):
    """Seeds of a point are one fit point whose spread is the noise floor; scan-role runs stay out of the fit;
    a downstream column gets its own law and held-out check; the summary carries the lr scan and published table."""
    rng = np.random.default_rng(3)
    N, D, L = synthetic(noise=0.01, sizes=4, budgets=4)
    rows = []
    for i, (n, d, loss) in enumerate(zip(N, D, L)):
        r = _row(i, n, d, loss)
        r.update(size=f"s{n:.0f}", lr=1e-3, seed=0, role="grid", downstream_force_mae=2 * loss)
        rows.append(r)
        if i in (0, 5):  # two repeated points, three seeds each
            for s in (1, 2):
                rep = dict(r, run=f"r{i}-s{s}", seed=s, role="seed")
                rep["final_val_force_mae"] = loss * float(np.exp(rng.normal(0, 0.05)))
                rows.append(rep)
    rows.append(dict(rows[0], run="scan-bad", lr=1e-1, role="scan", final_val_force_mae=50.0))
    scan = {"budget": 1e5, "lrs": [1e-3, 1e-1], "loss": "final_val_force_mae", "chosen": {rows[0]["size"]: 1e-3},
            "scan": [{"run": "r0", "size": rows[0]["size"], "lr": 1e-3, "status": "done", "final_val_force_mae": L[0]},
                     {"run": "scan-bad", "size": rows[0]["size"], "lr": 1e-1, "status": "done",
                      "final_val_force_mae": 50.0}]}
    pub = [{"source": "Paper X", "quantity": "beta", "value": "0.3", "definition": "L ~ D^-beta"}]
    res = analyze(_results(tmp_path, rows), tmp_path / "fit", n_boot=12, also=("downstream_force_mae",),
                  context={"command": "atomforge sweep run sweep=x", "lr_scan": scan, "published": pub})
    assert res["points"] == 16 and res["runs"] == 20  # 16 grid + 4 seed repeats; the scan loser left out
    assert res["noise"] is not None and len(res["noise"]["points"]) == 2
    assert 0.0 < res["noise_floor_rel"] < 0.2
    h = res["heldout"]
    assert len(h["predicted_95"]) == 1 and h["predicted_95"][0][0] < h["predicted"][0] < h["predicted_95"][0][1]
    band = res["compute_optimal"]["band95"]["N_opt"]
    assert all(lo <= mid <= hi for lo, mid, hi in zip(band[0], res["compute_optimal"]["N_opt"], band[1]))
    ds = res["also"]["downstream_force_mae"]
    assert "error" not in ds and abs(ds["heldout_rel_error"]) < 0.1  # 2x the loss follows the same law
    out = tmp_path / "fit"
    assert (out / "downstream_force_mae_vs_D.png").stat().st_size > 0
    md = (out / "summary.md").read_text()
    for s in ("Learning-rate scan", "0.001 (chosen)", "Paper X", "noise floor", "downstream_force_mae"):
        assert s in md, s
