"""`atomforge reproduce finetune target=<mlearn-format folder>`: the shipped foundation model fine-tuned on
fractions of a new system's training data, beside scratch runs with the same budget and schedule.

Variants: `scratch` (the parent's architecture, one head, random weights), `finetune` (a new energy head started
from the parent's teacher head, refitted element references) and `replay` (the same, with a fixed share of the
pre-training corpus drawn through the parent's teacher head). Every checkpoint is chosen on the target's val split;
the test set is read once per run. Forgetting: the corpus val error (teacher head) of the parent and of each
fine-tuned model."""
from __future__ import annotations

import json
from pathlib import Path

from atomforge.data_prep.errors import UsageError
from atomforge.pipeline.data.dataset import BuiltDataset
from atomforge.pipeline.evaluate.peers import Peer
from atomforge.pipeline.reproduce.compute import run_compute
from atomforge.pipeline.reproduce.finetune_report import body, plot
from atomforge.pipeline.reproduce.foundation import build_corpus
from atomforge.pipeline.reproduce.pretrain_finetune import fraction_sources, pct
from atomforge.pipeline.reproduce.runner import Runner
from atomforge.pipeline.reproduce.scoring import score_model, score_split
from atomforge.pipeline.reproduce.zero_shot import read_set, score_set
from atomforge.pipeline.train.run_dir import RunDir


def target_paths(s: dict) -> tuple[Path, str]:
    t = Path(s["target"])
    missing = [f for f in ("training.json", "test.json") if not (t / f).is_file()]
    if missing:
        raise UsageError(f"reproduce.target={t}: not an mlearn-format element folder (missing {', '.join(missing)})")
    return t, s.get("label") or t.resolve().name


def prepare(cfg: dict) -> dict:
    """out/work default to results/finetune-<label> and runs/reproduce/finetune-<label>."""
    r = dict(cfg["reproduce"])
    _, label = target_paths(r)
    r["out"] = r.get("out") or f"results/finetune-{label}"
    unset = not r.get("work")
    r["work"] = r.get("work") or f"runs/reproduce/finetune-{label}"
    smoke_replay = (r.get("smoke_settings") or {}).get("replay") or {}
    root = smoke_replay.get("corpus_root")
    # `${reproduce.work}/...` resolved before the default
    if unset and isinstance(root, str) and root.startswith("None/"):
        smoke_replay["corpus_root"] = r["work"] + root[len("None"):]
    return {**cfg, "reproduce": r}


def converged(sel: dict, tol: float) -> dict:
    """Flat when the best val force RMSE of the last 30% of checkpoints is within `tol` of the best before them."""
    rows = sorted(sel["checkpoints"].items())
    curve = [(int(k.split("_")[-1]), v["force_rmse"]) for k, v in rows]
    cut = max(1, int(round(0.7 * len(curve))))
    early, late = min(v for _, v in curve[:cut]), min((v for _, v in curve[cut:]), default=None)
    gain = None if late is None else (early - late) / early
    return {"curve": curve, "late_gain": gain, "flat": gain is not None and gain < tol, "tolerance": tol}


def pick_lr(by_lr: dict, steps: int) -> dict:
    """A variant's row at one budget and fraction: the val-best of its learning-rate scan (never chosen on test)."""
    best = min(by_lr.values(), key=lambda x: x["val_force_rmse"])
    return {**best, "steps": steps, "lr_scan": {f"{lr:g}": {k: x[k] for k in ("val_force_rmse", "force_mae")}
                                                for lr, x in sorted(by_lr.items())}}


def budget_gain(by_budget: dict, budgets: list[float], f: float, tol: float) -> dict:
    """Scratch's val force RMSE gain from the second-largest budget to the largest: flat when below `tol`."""
    prev, last = (by_budget[m]["scratch"][f]["val_force_rmse"] for m in budgets[-2:])
    gain = (prev - last) / prev
    return {"from": budgets[-2], "to": budgets[-1], "val_force_rmse": [prev, last], "gain": gain,
            "flat": gain < tol, "tolerance": tol}


def ship_best(r: Runner, curves: dict, runs: dict, fractions: list[float]) -> dict | None:
    """The fine-tuned model of the largest fraction with the lowest val force RMSE (never chosen on test), copied
    beside the report so anyone can re-evaluate the published numbers."""
    top = max(fractions)
    cands = [(c[top]["val_force_rmse"], v) for v, c in curves.items() if v != "scratch" and top in c]
    if not cands:
        return None
    _, v = min(cands)
    src = RunDir(runs[curves[v][top]["run"]]).hub
    return {"variant": v, "fraction": top, "from": str(src), "folder": str(r.ship(src))}


def _compute(curves: dict, runs: dict, roots: dict, fractions: list[float], pcfg: dict) -> dict:
    """FLOPs of one fine-tuning run (the largest fraction and budget) against the parent's pre-training compute."""
    top = max(fractions)
    name = next((curves[v][top]["run"] for v in ("finetune", "replay", "scratch") if top in curves.get(v, {})), None)
    if name is None:
        return {}
    one = run_compute(Path(runs[name]), roots[top])
    pre = (pcfg.get("recipe") or {}).get("training_flops")
    return {"run": name, "finetune_flops": one["flops"], "pretrain_flops": pre,
            "ratio": (pre / one["flops"]) if pre and one["flops"] else None}


def run(cfg: dict) -> dict:
    cfg = prepare(cfg)
    r = Runner(cfg)
    s = r.s
    target, label = target_paths(s)
    parent = Path(s["parent"])
    pcfg = json.loads((parent / "config.json").read_text())
    arch = pcfg["architecture"]
    fractions = sorted(float(f) for f in s["fractions"])
    variants = list(s["variants"])
    limit = s.get("max_structures")
    sources = [{"type": "mlearn", "path": str(target / "training.json"), "block": int(s.get("split_block") or 0)},
               {"type": "mlearn", "path": str(target / "test.json"), "split": "test"}]

    rep = s["replay"]
    corpus = None
    if "replay" in variants or s.get("forgetting_split"):
        corpus = build_corpus(r, cfg, rep["corpus"], rep.get("corpus_root"))

    test_spec = {"type": "mlearn", "path": str(target / "test.json")}
    zero = {"foundation (zero-shot)": score_model(parent, test_spec, r.device, limit)}
    for p in s.get("peers") or []:
        zero[f"{p} (zero-shot)"] = score_set(Peer(p, r.device), read_set(test_spec, limit)[0])
    forget = {"parent": score_split(parent, corpus, s["forgetting_split"], rep["task"], r.device)} if corpus else {}

    scratch_model = {"name": arch["name"], "backbone": arch["backbone"], "force_mode": arch["force_mode"], "tasks": []}
    # every variant trains at each learning rate of its scan and keeps the one its val split prefers: "beats
    # scratch" must not mean "scratch had a poor learning rate", nor the reverse (the first lr keeps the plain run
    # name, so old runs resume)
    scan_lrs = {"scratch": [float(x) for x in (s.get("scratch_lrs") or [s["train"]["lr"]])],
                "fine-tuned": [float(x) for x in (s.get("finetune_lrs")
                                                  or [(s.get("finetune_train") or {}).get("lr") or s["train"]["lr"]])]}
    lrs = {v: scan_lrs["scratch" if v == "scratch" else "fine-tuned"] for v in variants}
    # each budget multiplies every fraction's steps; the claims use the largest, and the budgets before it check
    # scratch's convergence a second way (does more training still help?); x1 keeps the plain run names
    budgets = sorted(float(m) for m in (s.get("budgets") or [1]))
    jobs, counts, roots = [], {}, {}
    for f in fractions:
        roots[f] = r.build(f"{label}_{pct(f)}",
                           fraction_sources({"sources": sources, "split": s["split"]}, f, s["seed"]), s["split"])
        counts[f] = BuiltDataset(roots[f]).count("train")
        for m in budgets:
            for v in variants:
                jobs += [(v, f, lr, m) for lr in lrs[v]]

    by_budget: dict = {m: {v: {} for v in variants} for m in budgets}
    scan: dict = {}  # (budget, variant, fraction) -> {lr: row}
    runs: dict = {}

    base = {float(k): int(n) for k, n in (s.get("steps_by_fraction") or {}).items()}

    def steps_at(m: float, f: float) -> int:  # the same for every variant of a fraction and budget
        return round(m * base.get(f, int(s["train"]["steps"])))

    def one(job):
        v, f, lr, m = job
        name = (f"{v}_{pct(f)}" + (f"_x{m:g}" if m != 1 else "")
                + (f"_lr{lr:g}" if lr != lrs[v][0] else ""))
        root = roots[f]
        steps = {"steps": steps_at(m, f)}
        if v == "scratch":
            run_dir = r.train(name, root, train={**steps, "lr": lr}, model=scratch_model)
        else:
            extra = {"init_from": str(parent), "init_task": "target", "init_task_from": rep["task"]}
            if v == "replay":
                share = float(rep["share"])
                extra["mix"] = [{"root": str(root), "task": "target", "weight": 1.0 - share},
                                {"root": str(corpus), "task": rep["task"], "weight": share}]
            run_dir = r.train(name, root, train={**(s.get("finetune_train") or {}), **steps, "lr": lr}, **extra)
        hub, sel = r.select_export(run_dir, root)
        a = r.evaluate(hub, root, r.out / "evals" / name, plots=False)["all"]
        row = {"force_mae": a["force_mae"], "energy_mae_mev_atom": 1000.0 * a["energy_mae_per_atom"],
               "force_rmse": a["force_rmse"], "n_train": counts[f], "selected": sel["best"],
               "val_force_rmse": sel["checkpoints"][sel["best"]]["force_rmse"]}
        runs[name] = str(run_dir)
        row.update(lr=lr, run=name)
        if v == "scratch":
            row["convergence"] = converged(sel, float(s["converged_tolerance"]))
        scan.setdefault((m, v, f), {})[lr] = row

    r.concurrent_runs = max(1, int(s.get("parallel", 1)))
    tol = float(s["converged_tolerance"])
    # budget by budget: with `until_flat` the ladder stops at the first budget where scratch's val gain from the
    # budget before it is flat at every fraction (scratch converged, so more steps would not change the verdict)
    until_flat, trained, stopped = bool(s.get("until_flat")), [], "last budget"
    for m in budgets:
        r.side_by_side(one, [j for j in jobs if j[3] == m])
        for v in variants:  # chosen on val, never on test; forgetting is scored for the chosen run only
            for f in fractions:
                row = by_budget[m][v][f] = pick_lr(scan[m, v, f], steps_at(m, f))
                if v != "scratch" and corpus is not None:
                    forget[row["run"]] = score_split(RunDir(runs[row["run"]]).hub, corpus, s["forgetting_split"],
                                                     rep["task"], r.device)
        trained.append(m)
        if until_flat and len(trained) > 1 and "scratch" in variants and all(
                budget_gain(by_budget, trained, f, tol)["flat"] for f in fractions):
            stopped = f"scratch flat at every fraction from x{trained[-2]:g} to x{m:g}"
            break
    by_budget = {m: {v: dict(sorted(c.items())) for v, c in cv.items()} for m, cv in by_budget.items()
                 if m in trained}
    curves = by_budget[trained[-1]]
    if len(trained) > 1 and "scratch" in curves:
        for f, row in curves["scratch"].items():
            row["convergence"]["by_budget"] = budget_gain(by_budget, trained, f, tol)
    compute = _compute(curves, runs, roots, fractions, pcfg)
    shipped = ship_best(r, curves, runs, fractions)
    png = plot(curves, fractions, counts, zero, r.out)
    metrics = {"target": str(target), "label": label,
               "parent": {"path": str(parent), "weights_sha256": pcfg.get("weights_sha256")},
               "curves": {v: {str(f): x for f, x in c.items()} for v, c in curves.items()},
               "train_counts": {str(f): n for f, n in counts.items()}, "zero_shot": zero, "forgetting": forget,
               "compute": compute, "model": shipped, "runs": runs, "plot": png,
               "budgets": {f"{m:g}": {v: {str(f): x for f, x in c.items()} for v, c in cv.items()}
                           for m, cv in by_budget.items()},
               "lr_scans": {k: [f"{x:g}" for x in xs] for k, xs in scan_lrs.items()},
               "budget_ladder": {"until_flat": until_flat, "budgets": [f"{m:g}" for m in budgets],
                                 "stopped": stopped, "trained": [f"{m:g}" for m in trained]}}
    r.finish(f"Fine-tuning the foundation model on {label}",
             body(s, metrics, curves, fractions, counts, zero, forget, png), metrics, s)
    return metrics
