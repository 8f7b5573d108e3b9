"""The fitter on synthetic losses drawn from a known law with noise, and its refusals."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.sweep.analyze import analyze
from pipeline.sweep.fit import FitError, Law, bootstrap, compute_optimal, fit_1d, fit_law

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
    rows = [_row(i, n, d, l) for i, (n, d, l) in enumerate(zip(N, D, L))]
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
