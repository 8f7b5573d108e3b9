"""`atomforge reproduce foundation`: pre-train the foundation model on the broad mix, one energy head per dataset,
direct forces then a conservative stage, and ship the exported folder under models/<name>/.

The report records the data mix, the training compute (counted FLOPs per atom x atoms processed, per stage), the
validation errors, the shipped model's zero-shot errors on the downstream test sets beside SevenNet-0 and CHGNet
(measured by `reproduce zero-shot`), and the folder's size against the limit.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from atomforge.data_prep.build import BuildConfig, build
from atomforge.data_prep.errors import UsageError
from atomforge.pipeline.compose import CONFIG_DIR
from atomforge.pipeline.data.dataset import BuiltDataset
from atomforge.pipeline.export.hub import export
from atomforge.pipeline.reproduce.compute import run_compute
from atomforge.pipeline.reproduce.runner import Runner, fmt, provenance, table
from atomforge.pipeline.reproduce.scoring import score_model, zero_shot_rows
from atomforge.pipeline.train.run_dir import RunDir


def corpus_config(cfg: dict, name: str, root: str | None) -> tuple[Path, dict]:
    """(root, build section) of configs/data/<name>.yaml, resolved as `atomforge data build data=<name>` does."""
    from omegaconf import OmegaConf


    path = CONFIG_DIR / "data" / f"{name}.yaml"
    if not path.is_file():
        raise UsageError(f"reproduce.corpus={name!r}: no configs/data/{name}.yaml")
    conf = OmegaConf.to_container(OmegaConf.merge({"paths": cfg["paths"]}, {"data": OmegaConf.load(path)}),
                                  resolve=True)
    return Path(root or conf["data"]["root"]), conf["data"]["build"]


def build_corpus(r: Runner, cfg: dict, name: str, root: str | None = None) -> Path:
    """The corpus at its own root (a finished build is reused: the build is resumable and checks its inputs)."""

    root, b = corpus_config(cfg, name, root)
    t = time.perf_counter()
    r.log(f"corpus {name} -> {root}")
    build(BuildConfig(out=str(root), seed=r.s["seed"], **b), progress=False)
    r.timings[f"build corpus {name}"] = time.perf_counter() - t
    return root


def last_checkpoint(run_dir: Path) -> Path:
    return RunDir(run_dir).checkpoint("latest")


def folder_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file()) / 2**20


def run(cfg: dict) -> dict:
    r = Runner(cfg)
    s = r.s
    corpus = build_corpus(r, cfg, s["corpus"], s.get("corpus_root"))
    roots = {"teacher": corpus, **{task: r.build(task, srcs, s["split"]) for task, srcs in s["datasets"].items()}}
    tasks = list(s["model"]["tasks"])
    if sorted(tasks) != sorted(roots):
        raise ValueError(f"reproduce.model.tasks {tasks} must name the corpus (teacher) and every dataset "
                         f"{sorted(roots)}")
    mix = [{"root": str(roots[t]), "task": t} for t in tasks]
    stages, runs = s["stages"], {}
    runs["direct"] = r.train("direct", corpus, train=stages["direct"], model={"force_mode": "direct"}, mix=mix)
    runs["conservative"] = r.train("conservative", corpus, train=stages["conservative"],
                                   model={"force_mode": "conservative"}, mix=mix,
                                   init_from=str(last_checkpoint(runs["direct"])))
    hub, sel = r.select_export(runs["conservative"], corpus, re_weight=float(s["select"].get("re_weight", 0.0)))
    compute = {k: run_compute(v, corpus) for k, v in runs.items()}
    total_flops = sum(c["flops"] for c in compute.values())

    test = (r.evaluate(hub, corpus, r.out / "corpus_test", split="test", plots=False)["all"]
            if BuiltDataset(corpus).count("test") else None)
    zero = {name: score_model(hub, spec, r.device, s.get("max_structures")) for name, spec in s["zero_shot"].items()}
    peers = _peers(Path(s["peers_from"]))

    ship = Path(s["ship"])
    cards = {t: BuiltDataset(root).card for t, root in roots.items()}
    flat = {f"{k}_{m}": v[m] for k, v in zero.items() for m in ("force_mae", "energy_mae_per_atom_shifted")}
    if test:
        flat.update({f"corpus_test_{m}": test[m] for m in ("force_mae", "energy_mae_per_atom")})
    recipe = {"command": "atomforge reproduce foundation"
              + (" reproduce.smoke=true" if s["variant"] == "smoke" else ""),
              "git_commit": provenance(r.device)["git_commit"], "training_flops": total_flops,
              "stages": {k: f"{c['steps']} steps, {c['force_mode']} forces" for k, c in compute.items()},
              "data_mix": [{"task": t, "dataset": c.get("name"), "structures": (c.get("counts") or {}).get("train"),
                            "sources": sorted({x.get("type") for x in c.get("sources", [])})}
                           for t, c in cards.items()]}
    export(str(runs["conservative"]), str(ship), checkpoint=sel["best"], metrics=flat, fairchem=True, recipe=recipe)
    r.ship(ship)
    size = folder_mb(ship)
    if size > float(s["max_ship_mb"]):
        raise ValueError(f"the shipped folder {ship} is {size:.1f} MB, over reproduce.max_ship_mb={s['max_ship_mb']}")

    metrics = {"ship": str(ship), "ship_mb": size, "selected": sel["best"], "val": sel["checkpoints"][sel["best"]],
               "compute": compute, "total_flops": total_flops, "corpus_test": test, "zero_shot": zero, "peers": peers,
               "mix": {t: {"root": str(roots[t]), "counts": c.get("counts"), "elements": len(c.get("elements") or []),
                           "sources": [x.get("type") for x in c.get("sources", [])]} for t, c in cards.items()},
               "runs": {k: str(v) for k, v in runs.items()}}
    (r.out / "compute.json").write_text(json.dumps({"stages": compute, "total_flops": total_flops}, indent=1))
    r.finish(f"Foundation model {ship.name}: pre-trained on the broad mix", _body(s, metrics, zero, peers), metrics, s)
    return metrics


def _peers(path: Path) -> dict:
    if not path.is_file():
        return {}
    return {name: res["sets"] for name, res in json.loads(path.read_text())["peers"].items()}


def _body(s: dict, m: dict, zero: dict, peers: dict) -> list[str]:
    mix_rows = [[t, json.dumps(v["counts"]), v["elements"], ", ".join(sorted(set(v["sources"])))]
                for t, v in m["mix"].items()]
    stage_rows = [[k, c["steps"], c["atoms"], c["flops_per_atom"], c["flops"], c["wall_s"]]
                  for k, c in m["compute"].items()]
    val = m["val"]
    lines = [
        f"Shipped: `{m['ship']}` ({m['ship_mb']:.1f} MB; limit {s['max_ship_mb']} MB), checkpoint {m['selected']} of "
        "the conservative stage, chosen on the corpus validation split "
        f"(force RMSE {fmt(val.get('force_rmse'))} eV/Å).", "",
        "Load it offline in one line: `atomforge.calculator(\"" + m["ship"] + "\")` (ASE) or "
        "`atomforge.fairchem_calculator(\"" + m["ship"] + "\")` (fairchem's calculator, the default head).", "",
        "## Data mix (one energy head and one set of element references per dataset)", "",
        *table(["task (head)", "structures per split", "elements", "sources"], mix_rows), "",
        f"Mixing: share_i ∝ n_i^(1/T), T = {s['train'].get('mix_temperature', 1.0)}. No mlearn structure is in any "
        "of them.", "",
        "## Compute", "",
        "FLOPs = counted forward + backward FLOPs per atom of the stage's model (torch FlopCounterMode on a corpus "
        "batch) x atoms processed (all ranks, from the run's metrics).", "",
        *table(["stage", "steps", "atoms processed", "FLOPs/atom", "FLOPs", "wall (s)"], stage_rows), "",
        f"Total: {m['total_flops']:.3g} FLOPs.", "",
        "## Errors", "",
    ]
    if m["corpus_test"]:
        t = m["corpus_test"]
        lines += [f"Corpus test split (teacher head): force MAE {fmt(t['force_mae'])} eV/Å, energy MAE "
                  f"{fmt(1000 * t['energy_mae_per_atom'])} meV/atom.", ""]
    lines += ["Zero-shot on the downstream test sets (no fine-tuning; the default head, SevenNet-0-labelled PBE "
              "references, so energies carry a per-set offset: the shifted MAE removes the mean per-atom "
              "difference):", ""]
    lines += zero_shot_rows(zero, peers, "atomforge (this model)")
    lines += ["## Size choice", "", *size_choice(s, m), ""]
    return lines


def size_choice(s: dict, m: dict) -> list[str]:
    """What the committed scaling fit says about the model size for this compute, and what was chosen."""
    path = Path(s.get("scaling_fit") or "")
    name = s["model"]["name"]
    out = [f"Chosen: `{name}`. {s.get('size_reason', '')}".rstrip()]
    if path.is_file():
        fit = json.loads(path.read_text())
        co = fit.get("compute_optimal") or {}
        if co.get("C"):
            n_opt = float(np.exp(np.interp(np.log(m["total_flops"]), np.log(co["C"]), np.log(co["N_opt"]))))
            out.append(f"The committed fit `{path}` (loss {fit.get('loss')}, held-out relative error "
                       f"{fit.get('heldout_rel_error')}) puts the compute-optimal size at this run's "
                       f"{m['total_flops']:.3g} FLOPs near N = {n_opt:.3g} non-embedding parameters.")
    return out
