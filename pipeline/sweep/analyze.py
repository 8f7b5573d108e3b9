"""`atomforge sweep fit`: results.parquet -> fit.json, summary.md and plots (loss vs D, iso-FLOP, frontier)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from pipeline.sweep.fit import FitError, bootstrap, compute_optimal, fit_1d, fit_law, flops_law


def finished(results: str | Path, loss: str, n_col: str = "N_nonembed", d_col: str = "D_atoms") -> list[dict]:
    p = Path(results)
    if not p.is_file():
        raise FileNotFoundError(f"{p} not found: run `atomforge sweep collect` first")
    rows = pq.read_table(p).to_pylist()
    if rows and loss not in rows[0]:
        raise FitError(f"{p} has no column {loss!r}")
    ok = [r for r in rows if r["status"] == "done" and r.get(loss) is not None and np.isfinite(r[loss]) and r[loss] > 0
          and r.get(d_col)]
    if not ok:
        states = {}
        for r in rows:
            states[r["status"]] = states.get(r["status"], 0) + 1
        raise FitError(f"no finished runs to fit in {p} ({', '.join(f'{v} {k}' for k, v in states.items()) or 'empty'})")
    return ok


def analyze(results: str | Path, out_dir: str | Path, loss: str = "final_val_force_mae", heldout: int = 1,
            n_boot: int = 200, n_col: str = "N_nonembed", d_col: str = "D_atoms", plots: bool = True) -> dict:
    rows = finished(results, loss, n_col, d_col)
    N = np.array([r[n_col] for r in rows], float)
    D = np.array([r[d_col] for r in rows], float)
    L = np.array([r[loss] for r in rows], float)
    C = np.array([r["compute"] for r in rows], float)
    law, obj, starts = fit_law(N, D, L)
    ci = bootstrap(N, D, L, starts, n_boot=n_boot)
    fl = flops_law(N, [r["flops_per_atom"] for r in rows])
    grid = np.geomspace(C.min(), C.max() * 100, 12)
    opt = compute_optimal(law, fl["c"], fl["gamma"], grid)

    order = np.argsort(C)
    held, keep = order[len(order) - heldout:], order[:len(order) - heldout]
    check = {"heldout_runs": [rows[i]["run"] for i in held], "fit_runs": len(keep)}
    try:
        sub, _, _ = fit_law(N[keep], D[keep], L[keep])
        pred = sub(N[held], D[held])
        rel = pred / L[held] - 1.0
        check.update({"law": sub.to_dict(), "predicted": pred.tolist(), "measured": L[held].tolist(), "rel_error": rel.tolist()})
        heldout_rel = float(rel[-1])  # the largest-compute run
    except FitError as e:
        check["error"] = str(e)
        heldout_rel = None

    res = {"loss": loss, "n": n_col, "d": d_col, "runs": len(rows), "law": law.to_dict(), "objective": obj,
           "ci95": ci, "fit_1d": {"L(N)": fit_1d(N, L), "L(D)": fit_1d(_budget_groups(rows, d_col), L)},
           "flops_per_atom": fl, "compute_optimal": opt, "heldout": check, "heldout_rel_error": heldout_rel,
           "residual_rms_log": float(np.sqrt(np.mean((np.log(law(N, D)) - np.log(L)) ** 2)))}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "fit.json").write_text(json.dumps(res, indent=1))
    if plots:
        from pipeline.sweep.plots import plot_all

        res["plots"] = plot_all(rows, res, law, out, loss, n_col, d_col)
    (out / "summary.md").write_text(summary_md(res, rows))
    return res


def _budget_groups(rows, d_col) -> np.ndarray:
    """D of each run, with runs of the same nominal budget mapped to that budget's median D (atoms seen vary a little)."""
    by: dict = {}
    for r in rows:
        by.setdefault(r["budget"], []).append(r[d_col])
    return np.array([float(np.median(by[r["budget"]])) for r in rows])


def summary_md(res: dict, rows: list[dict]) -> str:
    lw, ci = res["law"], res["ci95"]
    lines = [f"# Scaling-law fit ({res['loss']})", "",
             f"L(N, D) = E + A / N^alpha + B / D^beta, N = {res['n']}, D = {res['d']}; {res['runs']} finished runs; "
             f"Huber on log L over a grid of starts; 95% intervals from {ci['n']} bootstrap resamples of the runs.", "",
             "| parameter | value | 95% interval |", "|---|---|---|"]
    for p in ("E", "A", "alpha", "B", "beta"):
        lines.append(f"| {p} | {lw[p]:.4g} | [{ci[p][0]:.4g}, {ci[p][1]:.4g}] |")
    lines += ["", f"residual RMS of log L: {res['residual_rms_log']:.3f}", ""]
    for k, v in res["fit_1d"].items():
        lines.append(f"- 1-D fit {k}: " + (f"E={v['E']:.4g}, A={v['A']:.4g}, exponent={v['exponent']:.3f} (envelope of {len(v['x'])} points)"
                                         if v else "not enough distinct values (needs 3)"))
    co, fl = res["compute_optimal"], res["flops_per_atom"]
    lines += ["", f"FLOPs per atom (training step) = {fl['c']:.3g} N^{fl['gamma']:.3f}; compute C = FLOPs/atom x atoms seen.",
              f"Compute-optimal: N* ~ C^{co['N_exponent']:.3f}, D* ~ C^{co['D_exponent']:.3f}", "",
              "| C (FLOPs) | N* | D* (atoms) | L* |", "|---|---|---|---|"]
    for c, n, d, l in list(zip(co["C"], co["N_opt"], co["D_opt"], co["L_opt"]))[::3]:
        lines.append(f"| {c:.3g} | {n:.3g} | {d:.3g} | {l:.4g} |")
    h = res["heldout"]
    lines += ["", "## Held-out check", ""]
    if "error" in h:
        lines.append(f"not possible: {h['error']}")
    else:
        lines.append(f"Fit on the {h['fit_runs']} runs of smaller compute, predict the largest-compute run(s):")
        lines += ["", "| run | predicted | measured | predicted/measured - 1 |", "|---|---|---|---|"]
        for r, p, m, e in zip(h["heldout_runs"], h["predicted"], h["measured"], h["rel_error"]):
            lines.append(f"| {r} | {p:.4g} | {m:.4g} | {e:+.3f} |")
    lines += ["", "## Runs", "", "| run | N | D (atoms) | compute | loss | wall (s) |", "|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: r["compute"]):
        lines.append(f"| {r['run']} | {r[res['n']]:,} | {r[res['d']]:.3g} | {r['compute']:.3g} | {r[res['loss']]:.4g} | {r['wall_s'] or 0:.0f} |")
    if res.get("plots"):
        lines += ["", *[f"![{Path(p).stem}]({Path(p).name})" for p in res["plots"]]]
    return "\n".join(lines) + "\n"
