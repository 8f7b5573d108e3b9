"""`atomforge reproduce silicon-re`: train on the enhanced silicon_re sets, select the checkpoint on the enhanced
validation set by the rare-event metric, report RE errors on Interstitial-RE_Testing_Set with the DFT floor."""
from __future__ import annotations

from pathlib import Path

from atomforge.pipeline.reproduce.runner import Runner, fmt, table

SOURCE = ("Liu, He & Mo, npj Comput. Mater. 9, 174 (2023) and the 2024 follow-up (2,300 models, "
          "github.com/mogroupumd/Learning_from_models), as restated in issue 9")
# RE force error: RMS over rare-event (r == 0) atoms of |F_pred| - |F_DFT|, eV/Å, on the interstitial RE test set.
PUBLISHED = [
    {"model": "MTP (interstitial-enhanced training)", "re_force_rms": 0.18, "approx": True,
     "note": "best interstitial RE force error among GAP, NNP, SNAP, MTP, DeePMD", "source": SOURCE},
    {"model": "GAP (best)", "re_force_rms": 0.23, "approx": True, "note": "best GAP", "source": SOURCE},
    {"model": "DFT K1 vs K4 (noise floor)", "re_force_rms": 0.25, "approx": True,
     "note": "coarse vs reference k-mesh forces", "source": SOURCE},
]
DEFINITION = ("RE force error = RMS over rare-event atoms (r == 0, the migrating atoms) of dF = |F_pred| - |F_DFT_K4|, "
              "in eV/Å, on Interstitial-RE_Testing_Set (100 AIMD snapshots at 1230 K).")


def gap_advice(value: float, target: float, floor: float | None) -> str:
    s = (f"Target missed: RE force error {value:.4f} eV/Å is above {target} eV/Å by {value - target:.4f}. What would "
         "close it (chosen on the enhanced validation set, never the test set): more steps and several seeds ranked by "
         "the same RE selection score, a larger ladder size, conservative forces if this run used direct ones, a "
         "higher force weight on RE atoms, or starting from a pre-trained model.")
    if floor is not None and target < floor:
        s += (f" Note that the target is below this data's own DFT K1-vs-K4 floor ({floor:.3f} eV/Å): errors under the "
              "floor are agreement with the K4 reference beyond the coarse mesh's convergence, not physics the coarse "
              "DFT resolves.")
    return s


def bar_plot(rows: list[tuple[str, float]], out: Path, target: float) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from atomforge.pipeline.evaluate.plots import save_figure

    fig, ax = plt.subplots(figsize=(7, 3.6))
    names, vals = zip(*rows)
    colors = ["tab:blue"] + ["tab:gray"] * (len(rows) - 1)
    ax.barh(range(len(rows)), vals, color=colors)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels(names, fontsize=8)
    ax.axvline(target, color="k", ls="--", lw=0.8, label=f"target {target} eV/Å")
    ax.invert_yaxis()
    ax.set_xlabel("RE force error: RMS of |F_pred| - |F_DFT| on r == 0 atoms (eV/Å)")
    ax.legend(fontsize=8)
    return save_figure(fig, out / "re_force_error.png")


def run(cfg: dict) -> dict:
    r = Runner(cfg)
    s = r.s
    d = s["data"]
    root = r.build("silicon_re", r.thin(d["sources"], d["split"]), d["split"])
    run_dir = r.train("silicon_re", root)
    sel_cfg = s["select"]
    hub, sel = r.select_export(run_dir, root, sel_cfg["split"], float(sel_cfg["re_weight"]))
    r.ship(hub)
    ev = r.evaluate(hub, root, r.out / "test_eval")
    a, re = ev["all"], ev["rare_events"]
    # atomforge.pipeline.evaluate.rare_events.dft_noise_floor, from the test data's K1 forces
    floor = ev.get("dft_noise_floor") or {}
    ours = {"force_rmse": a["force_rmse"], "force_mae": a["force_mae"],
            "energy_mae_mev_atom": 1000.0 * a["energy_mae_per_atom"],
            "re_force_rms": re.get("re_force_rms"), "re_force_mae": re.get("re_force_mae"),
            "re_theta_median_deg": re.get("re_theta_median_deg"), "re_theta_p90_deg": re.get("re_theta_p90_deg"),
            "all_force_rms": re.get("all_force_rms"), "all_theta_median_deg": re.get("all_theta_median_deg"),
            "n_re_atoms": re.get("n_re_atoms")}
    t = s["target"]
    met = ours["re_force_rms"] is not None and ours["re_force_rms"] < float(t["below"])
    floor_re = floor.get("re_force_rms")

    rows = [[f"**atomforge {s['model']['name']} ({s['model']['force_mode']} forces)**", ours["re_force_rms"],
             ours["re_theta_median_deg"], ours["force_rmse"],
             "this run (test set; checkpoint chosen on the enhanced validation set)"],
            ["DFT K1 vs K4, computed from this test data", floor_re, floor.get("re_theta_median_deg"), None,
             "atomforge.pipeline.evaluate.rare_events.dft_noise_floor"]]
    rows += [[p["model"], f"~{p['re_force_rms']}", None, None, p["source"]] for p in PUBLISHED]
    verdict = (f"Target met: RE force error {ours['re_force_rms']:.4f} eV/Å < {t['below']} eV/Å." if met
               else gap_advice(ours["re_force_rms"] if ours["re_force_rms"] is not None else float("nan"),
                               float(t["below"]), floor_re))
    plot_rows = [("atomforge (this run)", ours["re_force_rms"] or 0.0)]
    if floor_re is not None:
        plot_rows.append(("DFT K1 vs K4 (this data)", floor_re))
    plot_rows += [(p["model"] + " (published, ~)", p["re_force_rms"]) for p in PUBLISHED]
    bar = bar_plot(plot_rows, r.out, float(t["below"]))

    sel_rows = [[tag, row["selection_score"], row["force_rmse"], row["re_force_rms"], row["rank_selection_score"],
                 row["rank_force_rmse"]] for tag, row in sel["checkpoints"].items()]
    body = [
        "Train on the interstitial- and vacancy-enhanced training sets, choose the checkpoint on "
        "Enhanced_Validation_Set by the rare-event selection score, evaluate once on Interstitial-RE_Testing_Set.", "",
        "## Rare-event errors beside the published values", "", f"Definition: {DEFINITION}", "",
        *table(["model", "RE force error (eV/Å)", "RE direction error, median (degree)", "all-atom force RMSE (eV/Å)",
                "source"], rows), "",
        "Published values are approximate (read from the papers' figures, as restated in issue 9); the same definition "
        "(RMS of the force-magnitude error over RE atoms, eV/Å) on the same interstitial RE test set.", "",
        "## All figures on the test set (this run)", "",
        *table(["metric", "value", "units"], [
            ["all-atom force RMSE (per component)", ours["force_rmse"], "eV/Å"],
            ["all-atom force MAE (per component)", ours["force_mae"], "eV/Å"],
            ["energy MAE", ours["energy_mae_mev_atom"], "meV/atom"],
            ["RE force error (RMS of dF, r == 0 atoms)", ours["re_force_rms"], "eV/Å"],
            ["RE force MAE (mean of |dF|, r == 0 atoms)", ours["re_force_mae"], "eV/Å"],
            ["RE direction error, median / 90th percentile",
             f"{fmt(ours['re_theta_median_deg'])} / {fmt(ours['re_theta_p90_deg'])}", "degree"],
            ["all-atom magnitude error (RMS of dF)", ours["all_force_rms"], "eV/Å"],
            ["all-atom direction error, median", ours["all_theta_median_deg"], "degree"],
            ["RE atoms evaluated", ours["n_re_atoms"], "count"],
            ["DFT floor: RE force error K1 vs K4", floor_re, "eV/Å"],
            ["DFT floor: all-atom magnitude error K1 vs K4", floor.get("all_force_rms"), "eV/Å"]]), "",
        "## Target", "", f"Interstitial RE force error below {t['below']} {t['units']}. {verdict}", "",
        "## Checkpoint selection (enhanced validation set; no test-set tuning)", "",
        f"`{sel['definition']}` with re_weight = {sel['re_weight']} on split `{sel['split']}`. "
        f"Chosen: **{sel['best']}**; the all-atom force RMSE alone would have chosen {sel['best_by_force_rmse']} "
        f"(rankings agree: {sel['rankings_agree']}).", "",
        *table(["checkpoint", "selection score", "val force RMSE", "val RE force error", "rank (score)",
                "rank (force RMSE)"], sel_rows), "",
        "## Plots", "", f"![RE force error]({bar})", "", "![RE error CDF](test_eval/re_error_cdf.png)", "",
        "![parity](test_eval/parity.png)", "",
    ]
    metrics = {"this_work": ours, "dft_noise_floor": floor, "published": PUBLISHED, "target": {**t, "met": met},
               "selection": {k: sel[k] for k in ("split", "re_weight", "best", "best_by_force_rmse", "rankings_agree",
                                                 "definition")} | {"scores": sel["checkpoints"]},
               "definitions": {"re_force_rms": DEFINITION}}
    r.finish("silicon_re: rare-event force errors against Liu, He & Mo", body, metrics, s)
    return metrics
