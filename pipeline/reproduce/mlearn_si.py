"""`atomforge reproduce mlearn-si`: train on mlearn Si, select on val, report test MAE beside Zuo et al. (2020)."""
from __future__ import annotations

from atomforge.pipeline.data.dataset import BuiltDataset
from atomforge.pipeline.reproduce.runner import Runner, fmt, table

# Published test-set errors on the same mlearn Si split. Definitions: MAE over the test set; energy per atom
# (meV/atom), forces per component (eV/Å). Values as restated in issue 9 (check against the paper's Table/Figure).
PUBLISHED = [
    {"model": "GAP", "energy_mae_mev_atom": 2.91, "force_mae": 0.07,
     "source": "Zuo et al., J. Phys. Chem. A 124, 731 (2020), as restated in issue 9"},
    {"model": "MTP", "energy_mae_mev_atom": 2.21, "force_mae": 0.06,
     "source": "Zuo et al., J. Phys. Chem. A 124, 731 (2020), as restated in issue 9"},
    {"model": "ALIGNN-FF", "energy_mae_mev_atom": None, "force_mae": 0.069,
     "source": "later leaderboard run on the same split, as restated in issue 9"},
    {"model": "NequIP", "energy_mae_mev_atom": None, "force_mae": 0.090,
     "source": "later leaderboard run on the same split, as restated in issue 9"},
]
NOT_RESTATED = ("NNP, SNAP and qSNAP are in the same table of Zuo et al. (2020) but their Si numbers are not restated "
                "in issue 9 and are not copied here unchecked; GAP and MTP are the best two in that table.")
DEFINITION = ("MAE on the published mlearn Si test set (25 structures, 1,525 atoms): energy = mean over structures of "
              "|E_pred - E_DFT| / n_atoms in meV/atom; force = mean over force components of |F_pred - F_DFT| in eV/Å.")


def gap_advice(force_mae: float, target: float) -> str:
    return (f"Target missed: force MAE {force_mae:.4f} eV/Å is above {target} eV/Å by {force_mae - target:.4f}. "
            "What would close it, in the order we would try (each chosen on the validation split, never the test "
            "set): more optimizer steps (the validation curve in the run's metrics.jsonl shows whether it is still "
            "falling), a larger ladder size (esen_m), conservative forces if the run used direct ones, training on "
            "stress as well, and fine-tuning from a pre-trained model (see `atomforge reproduce pretrain-finetune`).")


def run(cfg: dict) -> dict:
    r = Runner(cfg)
    s = r.s
    d = s["data"]
    root = r.build("mlearn_si", r.thin(d["sources"], d["split"]), d["split"])
    run_dir = r.train("mlearn_si", root)
    hub, sel = r.select_export(run_dir, root)
    r.ship(hub)
    ev = r.evaluate(hub, root, r.out / "test_eval")
    a = ev["all"]
    ours = {"energy_mae_mev_atom": 1000.0 * a["energy_mae_per_atom"], "force_mae": a["force_mae"],
            "energy_rmse_mev_atom": 1000.0 * a["energy_rmse_per_atom"], "force_rmse": a["force_rmse"],
            "n_structures": int(a["n_structures"]), "n_force_components": int(a["n_force_components"])}
    t = s["target"]
    met = ours[t["metric"]] < float(t["below"])
    beaten = [p["model"] for p in PUBLISHED if p["force_mae"] is not None and ours["force_mae"] < p["force_mae"]]

    rows = [[f"**atomforge {s['model']['name']} ({s['model']['force_mode']} forces)**", ours["energy_mae_mev_atom"],
             ours["force_mae"], "this run (test set, checkpoint chosen on val)"]]
    rows += [[p["model"], p["energy_mae_mev_atom"], p["force_mae"], p["source"]] for p in PUBLISHED]
    verdict = (f"Target met: force MAE {ours['force_mae']:.4f} eV/Å < {t['below']} eV/Å." if met
               else gap_advice(ours["force_mae"], float(t["below"])))
    best = sel["checkpoints"][sel["best"]]
    body = [
        "Train on the mlearn Si training set, choose the checkpoint on a validation split carved from the training set "
        f"(by group, {100 * d['split'].get('val', 0) / sum(d['split'].values()):g}%), evaluate once on the published "
        "test set.", "",
        "## Test errors beside the published table", "", f"Definition (all rows): {DEFINITION}", "",
        *table(["model", "energy MAE (meV/atom)", "force MAE (eV/Å)", "source"], rows), "",
        NOT_RESTATED, "",
        f"Also measured (this run): energy RMSE {fmt(ours['energy_rmse_mev_atom'])} meV/atom, force RMSE "
        f"{fmt(ours['force_rmse'])} eV/Å over {ours['n_structures']} structures / {ours['n_force_components']} "
        "force components.", "",
        "## Target", "", f"Force MAE below {t['below']} {t['units']} (better than every model in the table). {verdict}",
        f"Published models with a higher force MAE than this run: {', '.join(beaten) or 'none'}.", "",
        "## How the checkpoint was chosen (no test-set tuning)", "",
        f"{len(sel['checkpoints'])} checkpoints ranked by `{sel['definition']}` on the `{sel['split']}` split "
        f"(mlearn has no rare-event labels, so the score is the val force RMSE); chosen: {sel['best']} "
        f"(val force RMSE {fmt(best['force_rmse'])} eV/Å). All settings are fixed in "
        "`configs/reproduce/mlearn_si.yaml` before the test set is read; the test set is evaluated once, after "
        "selection.", "",
        "## Plots", "", "![parity](test_eval/parity.png)", "",
    ]
    metrics = {"this_work": ours, "published": PUBLISHED, "target": {**t, "met": met}, "beats": beaten,
               "selection": {"split": sel["split"], "best": sel["best"], "scores": sel["checkpoints"]},
               "definitions": {"energy_mae_mev_atom": "mean over test structures of |dE|/n_atoms, meV/atom",
                               "force_mae": "mean over test force components of |dF|, eV/Å"},
               "dataset_counts": BuiltDataset(root).card.get("counts", {})}
    r.finish("mlearn Si: atomforge vs the published table", body, metrics, s)
    return metrics
