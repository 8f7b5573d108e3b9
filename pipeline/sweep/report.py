"""summary.md of a sweep fit: the law with intervals, the held-out check beside the seed noise, the lr scan, the
downstream fit and the published exponents the sweep config names."""
from __future__ import annotations

from pathlib import Path


def _law_table(lw: dict, ci: dict) -> list[str]:
    lines = ["| parameter | value | 95% interval |", "|---|---|---|"]
    for p in ("E", "A", "alpha", "B", "beta"):
        lines.append(f"| {p} | {lw[p]:.4g} | [{ci[p][0]:.4g}, {ci[p][1]:.4g}] |")
    return lines


def _heldout(h: dict, noise_rel) -> list[str]:
    if "error" in h:
        return [f"not possible: {h['error']}"]
    lines = [f"Fit on the {h['fit_runs']} points of smaller compute, predict the largest-compute point(s):", "",
             "| run | predicted | 95% predictive interval | measured | predicted/measured - 1 | no-law forecast - 1 |",
             "|---|---|---|---|---|---|"]
    naive = h.get("naive_rel_error") or [float("nan")] * len(h["measured"])
    for r, p, (lo, hi), m, e, n in zip(h["heldout_runs"], h["predicted"], h["predicted_95"], h["measured"],
                                       h["rel_error"], naive):
        lines.append(f"| {r} | {p:.4g} | [{lo:.4g}, {hi:.4g}] | {m:.4g} | {e:+.3f} | {n:+.3f} |")
    lines += ["", "No-law forecast: the lowest loss among the fitted points, the baseline a law has to beat."]
    if noise_rel is not None:
        lines += ["", f"Run-to-run noise floor (repeated seeds, 1 sd of log L): {noise_rel:.3f} (relative)."]
    return lines


def summary_md(res: dict, rows: list[dict], context: dict) -> str:
    ci = res["ci95"]
    lines = [f"# Scaling-law fit ({res['loss']})", ""]
    if context.get("command"):
        lines += ["    " + context["command"], ""]
    lines += [f"L(N, D) = E + A / N^alpha + B / D^beta, N = {res['n']}, D = {res['d']}; {res['runs']} finished runs in "
              f"{res['points']} grid points (repeated seeds averaged); Huber on log L over a grid of starts; 95% "
              f"intervals from {ci['n']} bootstrap resamples of the points"
              + (", each loss also perturbed by the measured seed noise." if res.get("noise") else "."), "",
              *_law_table(res["law"], ci), "", f"residual RMS of log L: {res['residual_rms_log']:.3f}", ""]
    for k, v in res["fit_1d"].items():
        lines.append(f"- 1-D fit {k}: " + (f"E={v['E']:.4g}, A={v['A']:.4g}, exponent={v['exponent']:.3f} "
                                           f"(envelope of {len(v['x'])} points)"
                                           if v else "not enough distinct values (needs 3)"))
    co, fl = res["compute_optimal"], res["flops_per_atom"]
    band = co.get("band95", {})
    lines += ["", f"FLOPs per atom (training step) = {fl['c']:.3g} N^{fl['gamma']:.3f}; "
              "compute C = FLOPs/atom x atoms seen.",
              f"Compute-optimal: N* ~ C^{co['N_exponent']:.3f}, D* ~ C^{co['D_exponent']:.3f}", "",
              "| C (FLOPs) | N* | N* 95% | D* (atoms) | L* |", "|---|---|---|---|---|"]
    for i in range(0, len(co["C"]), 3):
        nb = f"[{band['N_opt'][0][i]:.3g}, {band['N_opt'][1][i]:.3g}]" if band else ""
        lines.append(f"| {co['C'][i]:.3g} | {co['N_opt'][i]:.3g} | {nb} | {co['D_opt'][i]:.3g} | "
                     f"{co['L_opt'][i]:.4g} |")
    if res.get("unpinned"):
        lines += ["", f"**Not pinned by these runs:** {', '.join(res['unpinned'])} (95% interval wider than a factor "
                  "of 10 for an exponent, 6 decades for a coefficient)."
                  " Read the compute-optimal rows with that in mind."]
    lines += ["", "## Held-out check", "", *_heldout(res["heldout"], res.get("noise_floor_rel"))]
    if res.get("noise"):
        lines += ["", "| repeated point | seeds | losses | sd of log L |", "|---|---|---|---|"]
        for p in res["noise"]["points"]:
            lines.append(f"| {p['run']} | {p['seeds']} | {', '.join(f'{x:.4g}' for x in p['losses'])} | "
                         f"{p['sd_log']:.3f} |")
    for col, a in res.get("also", {}).items():
        lines += ["", f"## The same fit for {col}", ""]
        if "error" in a:
            lines.append(f"not possible: {a['error']}")
            continue
        lines += [*_law_table(a["law"], a["ci95"]), "", f"residual RMS of log L: {a['residual_rms_log']:.3f}", "",
                  *_heldout(a["heldout"], a.get("noise_floor_rel"))]
    scan = context.get("lr_scan")
    if scan:
        lines += ["", "## Learning-rate scan", "",
                  f"Each size trained at budget {scan['budget']:g} with lr in {scan['lrs']}; "
                  f"its grid runs use the lr with the lowest {scan['loss']}.", "", "| run | lr | status | loss |",
                  "|---|---|---|---|"]
        for t in scan["scan"]:
            v = t.get(scan["loss"])
            mark = " (chosen)" if scan["chosen"].get(t["size"]) == t["lr"] else ""
            lines.append(f"| {t['run']} | {t['lr']:g}{mark} | {t['status']} | {v:.4g} |" if v is not None else
                         f"| {t['run']} | {t['lr']:g} | {t['status']} | - |")
    pub = context.get("published") or []
    if pub:
        lw = res["law"]
        lines += ["", "## Against published exponents", "",
                  f"Here: alpha = {lw['alpha']:.3f} [{ci['alpha'][0]:.3f}, {ci['alpha'][1]:.3f}] (N), "
                  f"beta = {lw['beta']:.3f} [{ci['beta'][0]:.3f}, {ci['beta'][1]:.3f}] (D), "
                  f"N* ~ C^{co['N_exponent']:.2f}, D* ~ C^{co['D_exponent']:.2f}.", "",
                  "| source | quantity | value | definition |", "|---|---|---|---|"]
        for p in pub:
            lines.append(f"| {p['source']} | {p['quantity']} | {p['value']} | {p['definition']} |")
    lines += ["", "## Runs", "", "| run | role | N | D (atoms) | compute | loss | wall (s) |",
              "|---|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: r["compute"]):
        lines.append(f"| {r['run']} | {r.get('role', 'grid')} | {r[res['n']]:,} | {r[res['d']]:.3g} | "
                     f"{r['compute']:.3g} | {r[res['loss']]:.4g} | {r['wall_s'] or 0:.0f} |")
    if res.get("plots"):
        lines += ["", *[f"![{Path(p).stem}]({Path(p).name})" for p in res["plots"]]]
    return "\n".join(lines) + "\n"
