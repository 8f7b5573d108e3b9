"""`atomforge sweep fit`: results.parquet -> fit.json, summary.md and plots (loss vs D, iso-FLOP, frontier).

Repeated seeds of one grid point are one point of the fit (geometric mean of their losses); their spread is the
run-to-run noise, which the bootstrap adds to every resample and the held-out check reports beside its error."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from atomforge.pipeline.sweep.fit import FitError, bootstrap, compute_optimal, fit_1d, fit_law, flops_law
from atomforge.pipeline.sweep.report import summary_md


def finished(results: str | Path, loss: str, n_col: str = "N_nonembed", d_col: str = "D_atoms") -> list[dict]:
    """Finished runs with a usable loss; the lr scan's losing runs are left out (they are not on the grid)."""
    p = Path(results)
    if not p.is_file():
        raise FileNotFoundError(f"{p} not found: run `atomforge sweep collect` first")
    rows = pq.read_table(p).to_pylist()
    if rows and loss not in rows[0]:
        raise FitError(f"{p} has no column {loss!r}")
    ok = [r for r in rows if r["status"] == "done" and r.get(loss) is not None and np.isfinite(r[loss]) and r[loss] > 0
          and r.get(d_col) and r.get("role", "grid") != "scan"]
    if not ok:
        states = {}
        for r in rows:
            states[r["status"]] = states.get(r["status"], 0) + 1
        raise FitError(f"no finished runs to fit in {p} "
                       f"({', '.join(f'{v} {k}' for k, v in states.items()) or 'empty'})")
    return ok


def grid_points(rows: list[dict], loss: str, n_col: str, d_col: str) -> list[dict]:
    """One point per (size, budget, lr): the seeds of a point averaged (geometric mean of the loss, mean of D and C)."""
    groups: dict = {}
    for r in rows:
        groups.setdefault((r.get("size", r["run"]), r["budget"], r.get("lr")), []).append(r)
    pts = []
    for members in groups.values():
        members.sort(key=lambda r: r.get("seed", 0) or 0)
        losses = np.array([m[loss] for m in members], float)
        pts.append({"run": members[0]["run"], "budget": members[0]["budget"], n_col: members[0][n_col],
                    d_col: float(np.mean([m[d_col] for m in members])),
                    "compute": float(np.mean([m["compute"] for m in members])),
                    "flops_per_atom": members[0]["flops_per_atom"], loss: float(np.exp(np.mean(np.log(losses)))),
                    "seeds": [m.get("seed", 0) or 0 for m in members], "losses": losses.tolist()})
    return pts


def noise_floor(pts: list[dict]) -> dict | None:
    """Pooled standard deviation of log L over the points with repeated seeds (ddof 1); None without repeats."""
    rep = [p for p in pts if len(p["losses"]) > 1]
    if not rep:
        return None
    var = [float(np.var(np.log(p["losses"]), ddof=1)) for p in rep]
    sigma = float(np.sqrt(np.mean(var)))
    return {"sigma_log": sigma, "rel": float(np.expm1(sigma)), "points": [
        {"run": p["run"], "seeds": p["seeds"], "losses": p["losses"], "sd_log": float(np.sqrt(v))}
        for p, v in zip(rep, var)]}


def fit_block(pts: list[dict], loss: str, n_col: str, d_col: str, heldout: int, n_boot: int, sigma: float) -> dict:
    """The law on every point with bootstrap intervals, and the held-out check: refit without the `heldout`
    largest-compute points and predict them, with a 95% predictive interval (refit bootstrap x seed noise)."""
    N, D, L, C = (np.array([p[k] for p in pts], float) for k in (n_col, d_col, loss, "compute"))
    law, obj, starts = fit_law(N, D, L)
    laws: list = []
    ci = bootstrap(N, D, L, starts, n_boot=n_boot, noise_sigma=sigma, draws_out=laws)
    order = np.argsort(C)
    held, keep = order[len(order) - heldout:], order[:len(order) - heldout]
    check = {"heldout_runs": [pts[i]["run"] for i in held], "fit_runs": len(keep)}
    rel_top = None
    try:
        sub, _, sub_starts = fit_law(N[keep], D[keep], L[keep])
        pred = sub(N[held], D[held])
        rel = pred / L[held] - 1.0
        sub_laws: list = []
        bootstrap(N[keep], D[keep], L[keep], sub_starts, n_boot=max(n_boot // 2, 20), seed=1, noise_sigma=sigma,
                  draws_out=sub_laws)
        rng = np.random.default_rng(2)
        sims = (np.array([lw(N[held], D[held]) for lw in sub_laws])
                * np.exp(rng.normal(0, sigma, (len(sub_laws), len(held)))))
        sims = sims[np.all(np.isfinite(sims), axis=1)]  # a resample's law can overflow far outside its data
        lo, hi = np.percentile(sims, 2.5, axis=0), np.percentile(sims, 97.5, axis=0)
        # the forecast a law must beat: the lowest loss measured among the fitted points (no law at all)
        naive = float(L[keep].min()) / L[held] - 1.0
        check.update({"law": sub.to_dict(), "predicted": pred.tolist(), "measured": L[held].tolist(),
                      "rel_error": rel.tolist(), "naive_rel_error": naive.tolist(), "interval_draws": int(len(sims)),
                      "predicted_95": [[float(a), float(b)] for a, b in zip(lo, hi)],
                      "measured_inside_95": [bool(a <= m <= b) for a, b, m in zip(lo, hi, L[held])]})
        rel_top = float(rel[-1])  # the largest-compute point
    except FitError as e:
        check["error"] = str(e)
    return {"law": law, "objective": obj, "ci95": ci, "laws": laws, "heldout": check, "heldout_rel_error": rel_top,
            "unpinned": unpinned(ci),
            "residual_rms_log": float(np.sqrt(np.mean((np.log(law(N, D)) - np.log(L)) ** 2)))}


def unpinned(ci: dict) -> list[str]:
    """Terms the data do not determine: an exponent whose 95% interval spans more than a factor of 10 (or reaches
    past 3), or a coefficient whose interval spans more than 6 decades."""
    out = [p for p in ("alpha", "beta") if ci[p][1] > 3 or ci[p][1] > 10 * max(ci[p][0], 1e-12)]
    return out + [p for p in ("E", "A", "B") if ci[p][1] > 1e6 * max(ci[p][0], 1e-300)]


def frontier_band(laws: list, c: float, gamma: float, grid) -> dict:
    """95% band of the compute-optimal N*, D*, L* over the bootstrap's laws."""
    sims = [compute_optimal(lw, c, gamma, grid) for lw in laws]
    out = {}
    for k in ("N_opt", "D_opt", "L_opt"):
        a = np.array([s[k] for s in sims], float)
        out[k] = [np.nanpercentile(a, 2.5, axis=0).tolist(), np.nanpercentile(a, 97.5, axis=0).tolist()]
    return out


def analyze(results: str | Path, out_dir: str | Path, loss: str = "final_val_force_mae", heldout: int = 1,
            n_boot: int = 200, n_col: str = "N_nonembed", d_col: str = "D_atoms", plots: bool = True,
            also: tuple = (), context: dict | None = None) -> dict:
    """Fit `loss` (and each column of `also`, e.g. a downstream force MAE, the same way); context (lr scan, published
    exponents, command) goes into the summary as it is."""
    rows = finished(results, loss, n_col, d_col)
    pts = grid_points(rows, loss, n_col, d_col)
    noise = noise_floor(pts)
    sigma = noise["sigma_log"] if noise else 0.0
    blk = fit_block(pts, loss, n_col, d_col, heldout, n_boot, sigma)
    law = blk["law"]
    N, L, C = (np.array([p[k] for p in pts], float) for k in (n_col, loss, "compute"))
    fl = flops_law(N, [p["flops_per_atom"] for p in pts])
    grid = np.geomspace(C.min(), C.max() * 100, 12)
    opt = compute_optimal(law, fl["c"], fl["gamma"], grid)
    opt["band95"] = frontier_band(blk["laws"], fl["c"], fl["gamma"], grid)

    res = {"loss": loss, "n": n_col, "d": d_col, "runs": len(rows), "points": len(pts), "law": law.to_dict(),
           "objective": blk["objective"], "ci95": blk["ci95"],
           "fit_1d": {"L(N)": fit_1d(N, L), "L(D)": fit_1d(_budget_groups(pts, d_col), L)},
           "flops_per_atom": fl, "compute_optimal": opt, "heldout": blk["heldout"],
           "heldout_rel_error": blk["heldout_rel_error"], "noise": noise,
           "noise_floor_rel": noise["rel"] if noise else None, "residual_rms_log": blk["residual_rms_log"],
           "unpinned": blk["unpinned"], "also": {}}
    for col in also:
        sub = [r for r in rows if r.get(col) is not None and np.isfinite(r[col]) and r[col] > 0]
        try:
            if not sub:
                raise FitError(f"no finished run has {col}")
            spts = grid_points(sub, col, n_col, d_col)
            snoise = noise_floor(spts)
            b = fit_block(spts, col, n_col, d_col, heldout, max(n_boot // 2, 20),
                          snoise["sigma_log"] if snoise else 0.0)
            res["also"][col] = {"law": b["law"].to_dict(), "ci95": b["ci95"], "heldout": b["heldout"],
                                "points": len(spts), "heldout_rel_error": b["heldout_rel_error"],
                                "noise_floor_rel": snoise["rel"] if snoise else None,
                                "residual_rms_log": b["residual_rms_log"], "unpinned": b["unpinned"],
                                "_pts": spts, "_law": b["law"]}
        except FitError as e:
            res["also"][col] = {"error": str(e)}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if plots:
        from atomforge.pipeline.sweep.plots import plot_all, plot_loss_vs_D

        res["plots"] = plot_all(pts, res, law, out, loss, n_col, d_col)
        for col, a in res["also"].items():
            if "_law" in a:
                res["plots"].append(plot_loss_vs_D(a["_pts"], a["_law"], out / f"{col}_vs_D.png", col, n_col, d_col))
    for a in res["also"].values():
        a.pop("_pts", None), a.pop("_law", None)
    (out / "fit.json").write_text(json.dumps(res, indent=1))
    (out / "summary.md").write_text(summary_md(res, rows, context or {}))
    return res


def _budget_groups(pts, d_col) -> np.ndarray:
    """D of each point, with points of the same nominal budget mapped to that budget's median D (atoms seen vary
    a little)."""
    by: dict = {}
    for r in pts:
        by.setdefault(r["budget"], []).append(r[d_col])
    return np.array([float(np.median(by[r["budget"]])) for r in pts])
