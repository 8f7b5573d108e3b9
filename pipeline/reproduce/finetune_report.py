"""The fine-tuning result's plot and report body: test errors per data fraction and variant, zero-shot peers,
the published table where the repository restates one, the claims, scratch convergence and forgetting."""
from __future__ import annotations

from pathlib import Path

from atomforge.pipeline.reproduce.mlearn_si import PUBLISHED
from atomforge.pipeline.reproduce.runner import fmt, table

LABELS = {"scratch": "from scratch", "finetune": "fine-tuned", "replay": "fine-tuned with replay"}
STYLES = {"scratch": "k-o", "finetune": "-s", "replay": "-^"}


def published(label: str) -> list[dict]:
    """The published 100%-data numbers this repository restates (mlearn Si only)."""
    if label != "Si":
        return []

    return PUBLISHED[:2]


def _budget(s: dict) -> str:
    by = s.get("steps_by_fraction") or {}
    steps = ", ".join(f"{100 * float(f):g}%: {n}" for f, n in by.items()) or str(s["train"]["steps"])
    mult = [float(m) for m in s.get("budgets") or [1]]
    return steps if mult == [1.0] else f"{steps}, each times {', '.join(f'{m:g}' for m in mult)}"


def budget_section(m: dict, s: dict) -> list[str]:
    """Every variant's val / test error at each budget, and scratch's gain from the last doubling."""
    by = m.get("budgets") or {}
    if len(by) < 2:
        return []
    mults = list(by)
    rows = [[f"{100 * float(f):g}%", LABELS.get(v, v)] + [f"{by[b][v][f]['val_force_rmse']:.4g} / "
                                                           f"{by[b][v][f]['force_mae']:.4g}" for b in mults]
            for v in by[mults[-1]] for f in by[mults[-1]][v]]
    gains = [[f"{100 * float(f):g}%", c["convergence"]["by_budget"]["gain"],
              "flat" if c["convergence"]["by_budget"]["flat"] else "still improving"]
             for f, c in m["curves"].get("scratch", {}).items() if "by_budget" in c.get("convergence", {})]
    lad = m["budget_ladder"]
    stop = (f" The ladder x{', x'.join(lad['budgets'])} trains budget by budget until scratch is flat at every "
            f"fraction (`until_flat`); it stopped at x{lad['trained'][-1]}: {lad['stopped']}."
            if lad["until_flat"] else "")
    return ["## Training budget", "",
            "Every run of every variant at each budget (a multiple of the steps per fraction); the tables above use "
            f"the largest. val force RMSE / test force MAE (eV/Å); steps at x1: {_budget({**s, 'budgets': [1]})}."
            f"{stop}", "",
            *table(["fraction", "variant"] + [f"x{b}" for b in mults], rows), "",
            f"Scratch, val force RMSE gain from x{mults[-2]} to x{mults[-1]} (flat below "
            f"{100 * float(s['converged_tolerance']):g}%):", "",
            *table(["fraction", "relative gain", "verdict"], gains), ""]


def lr_section(curves: dict) -> list[str]:
    """Each variant's learning-rate scan per fraction: the val-best run is the variant's result."""
    scans = {v: c for v, c in curves.items() if any(len(x.get("lr_scan") or {}) > 1 for x in c.values())}
    if not scans:
        return []
    out = ["## Learning rates", "",
           "Each variant's runs of a fraction at every learning rate of its scan; the one with the lowest val force "
           "RMSE is the variant's result (val force RMSE / test force MAE, eV/Å; test shown, never used to choose):",
           ""]
    for v, c in scans.items():
        scanned = list(next(iter(c.values()))["lr_scan"])
        rows = [[f"{100 * f:g}%", x["lr"]] + [f"{y['val_force_rmse']:.4g} / {y['force_mae']:.4g}"
                                              for y in x["lr_scan"].values()] for f, x in c.items()]
        out += [f"{LABELS.get(v, v)}:", "", *table(["fraction", "chosen lr"] + [f"lr {lr}" for lr in scanned], rows),
                ""]
    return out


def _lrs(xs: list[str]) -> str:
    return f"the val-best of {', '.join(xs)}" if len(xs) > 1 else xs[0]


def plot(curves: dict, fractions: list[float], counts: dict, zero: dict, out: Path) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from atomforge.pipeline.evaluate.plots import readable_log_y, save_figure

    fig, ax = plt.subplots(1, 2, figsize=(10, 4))
    xs = [counts[f] for f in fractions]
    for v, c in curves.items():
        ax[0].plot(xs, [c[f]["force_mae"] for f in fractions], STYLES.get(v, "-"), label=LABELS.get(v, v))
        ax[1].plot(xs, [c[f]["energy_mae_mev_atom"] for f in fractions], STYLES.get(v, "-"), label=LABELS.get(v, v))
    for (name, z), ls in zip(zero.items(), (":", "-.", "--")):
        ax[0].axhline(z["force_mae"], color="gray", ls=ls, lw=0.8, label=name)
    for a, lab in ((ax[0], "test force MAE (eV/Å)"), (ax[1], "test energy MAE (meV/atom)")):
        a.set_xscale("log")
        a.set_yscale("log")
        a.set_xlabel("training structures (fraction of the training split)")
        a.set_ylabel(lab)
        a.set_xticks(xs)
        a.set_xticklabels([f"{counts[f]}\n({100 * f:g}%)" for f in fractions], fontsize=7)
        a.minorticks_off()
        readable_log_y(a)
        a.legend(fontsize=7)
    return save_figure(fig, out / "force_mae_vs_data.png")


def claims(curves: dict, fractions: list[float]) -> tuple[list[str], dict]:
    top = max(fractions)
    full = curves["scratch"][top]["force_mae"] if "scratch" in curves else None
    lines, out = [], {}
    for v, c in curves.items():
        if v == "scratch" or full is None:
            continue
        reach = [f for f in fractions if c[f]["force_mae"] <= full]
        small = min(reach) if reach else None
        beats = c[top]["force_mae"] < full
        out[v] = {"smallest_fraction_reaching_scratch_full": small, "beats_scratch_at_full": beats,
                  "scratch_full_force_mae": full, "at_full_force_mae": c[top]["force_mae"]}
        at25 = small is not None and small <= 0.25
        lines.append(f"- {LABELS.get(v, v)}: reaches scratch's {100 * top:g}% test force MAE ({fmt(full)} eV/Å) with "
                     + (f"{100 * small:g}% of the data" if small is not None else "no fraction")
                     + f" (target: ≤ 25%: {'met' if at25 else 'missed'}); at {100 * top:g}% "
                     f"{fmt(c[top]['force_mae'])} eV/Å ({'beats' if beats else 'does not beat'} scratch).")
    return lines, out


def body(s: dict, m: dict, curves: dict, fractions: list[float], counts: dict, zero: dict, forget: dict,
         png: str) -> list[str]:
    label = m["label"]
    trained = [float(b) for b in m["budget_ladder"]["trained"]]
    vs = list(curves)
    header = ["training structures (fraction)"] + [f"{LABELS.get(v, v)}: F MAE (eV/Å)" for v in vs] + \
             [f"{LABELS.get(v, v)}: E MAE (meV/atom)" for v in vs]
    rows = [[f"{counts[f]} ({100 * f:g}%)"] + [curves[v][f]["force_mae"] for v in vs] +
            [curves[v][f]["energy_mae_mev_atom"] for v in vs] for f in fractions]
    zrows = [[k, z["force_mae"], 1000 * z["energy_mae_per_atom"], 1000 * z["energy_mae_per_atom_shifted"], "this run"]
             for k, z in zero.items()]
    zrows += [[p["model"] + " (published, 100%)", p["force_mae"], p["energy_mae_mev_atom"], "—", p["source"]]
              for p in published(label)]
    claim_lines, claim = claims(curves, fractions)
    m["claim"] = claim
    lines = [f"Target: `{m['target']}` (mlearn format). Parent: `{m['parent']['path']}` (weights sha256 "
             f"`{m['parent']['weights_sha256']}`).", "",
             "## Test errors vs training data", "",
             "Definitions: MAE on the target's test set (the same for every row); force = mean over components of "
             "|F_pred - F_DFT| (eV/Å); energy = mean over structures of |E_pred - E_DFT| / n_atoms (meV/atom).", "",
             *table(header, rows), "", f"![test force MAE vs data]({png})", "",
             "Zero-shot models (no training on the target) and published numbers on the same test set:", "",
             *table(["model", "F MAE (eV/Å)", "E MAE (meV/atom)", "E MAE, mean offset removed (meV/atom)", "source"],
                    zrows), "",
             "## Claims", "", *claim_lines, ""]
    if m.get("model"):
        mm = m["model"]
        lines += [f"- Shipped beside this report: `model/`, the {LABELS.get(mm['variant'], mm['variant'])} model at "
                  f"{100 * mm['fraction']:g}% (of the fine-tuned variants, the lower val force RMSE).", ""]
    c = m.get("compute") or {}
    if c.get("ratio"):
        lines += [f"- Compute: the parent's pre-training took {c['pretrain_flops']:.3g} FLOPs, {c['ratio']:.1f}x one "
                  f"fine-tuning run here ({c['run']}: {c['finetune_flops']:.3g} FLOPs; counted FLOPs per atom x atoms "
                  f"processed; target at least 10x: {'met' if c['ratio'] >= 10 else 'missed'}).", ""]
    if label == "Si" and "finetune" in curves:
        best = min((curves[v][max(fractions)] for v in curves if v != "scratch"), key=lambda x: x["force_mae"])
        lines += [f"- mlearn Si targets (fine-tuned, 100%): force MAE {fmt(best['force_mae'])} eV/Å (target < 0.04: "
                  f"{'met' if best['force_mae'] < 0.04 else 'missed'}), energy MAE "
                  f"{fmt(best['energy_mae_mev_atom'])} meV/atom "
                  f"(target < 2.21: {'met' if best['energy_mae_mev_atom'] < 2.21 else 'missed'}).", ""]
    conv = [[f"{100 * f:g}%", c["convergence"]["late_gain"], "flat" if c["convergence"]["flat"] else "still improving",
             " ".join(f"{st}:{fmt(v, 3)}" for st, v in c["convergence"]["curve"])]
            for f, c in curves.get("scratch", {}).items()]
    lines += lr_section(curves)
    if conv:
        lines += ["## Scratch convergence", "",
                  f"How it was checked: every scratch run's checkpoints (every {s['train']['ckpt_every']} steps) are "
                  "scored on val; the run is flat when the best val force RMSE of its last 30% of checkpoints improves "
                  f"on the best before them by less than {100 * float(s['converged_tolerance']):g}%.", "",
                  *table(["fraction", "late relative gain", "verdict", "val force RMSE by step (eV/Å)"], conv), ""]
    lines += budget_section(m, s)
    if forget:
        lines += ["## Forgetting", "",
                  f"The pre-training corpus {forget['parent']['split']} split through the parent's "
                  f"`{forget['parent']['task']}` head, before (parent) and after each fine-tune:", "",
                  *table(["model", "F MAE (eV/Å)", "F RMSE (eV/Å)", "E MAE (meV/atom)"],
                         [[k, v["force_mae"], v["force_rmse"], v["energy_mae_mev_atom"]]
                          for k, v in forget.items()]), ""]
    lines += ["## Protocol (no test-set tuning)", "",
              "- Fractions are nested subsets of the training split (a hash of each structure); the val split "
              f"({100 * s['split'].get('val', 0) / sum(s['split'].values()):g}% of the training groups; "
              + (f"a group is {s['split_block']} consecutive snapshots of a run" if s.get("split_block")
                 else "a group is a whole run") + ") and the test set are the same for every fraction.",
              f"- Every run of a fraction: the same steps ({_budget({**s, 'budgets': trained})}), "
              f"{s['train']['max_atoms']} atoms per step, "
              f"warm-up {s['train']['warmup_steps']} steps then cosine, EMA decay {s['train']['ema_decay']}"
              + (" ramped as min(decay, (1 + t) / (10 + t))" if s["train"]["ema_warmup"] else "")
              + f"; fine-tuned runs use lr {_lrs(m['lr_scans']['fine-tuned'])} "
              f"(scratch {_lrs(m['lr_scans']['scratch'])}), fixed before any run.",
              f"- Fine-tuning adds a head `target` started from the parent's `{s['replay']['task']}` head, with "
              "element references refitted on the target's data"
              + (f"; replay draws {100 * float(s['replay']['share']):g}% of each step's structures from the corpus "
                 f"through the `{s['replay']['task']}` head." if "replay" in s["variants"] else
                 " (no replay variant in this run).")
              + ("" if s.get("forgetting_split") else " Forgetting was not scored (forgetting_split: null)."),
              "- Every checkpoint is chosen on val force RMSE; the test set is read once per run, after selection.", ""]
    return lines
