"""`atomforge sweep plan|launch|collect|fit|run sweep=<entry> [cluster=local|slurm] [overrides]`."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from atomforge.pipeline.compose import compose, plain
from atomforge.pipeline.data.dataset import BuiltDataset
from atomforge.pipeline.sweep.spec import LR_CHOICE, SweepSpec

ACTIONS = ("plan", "launch", "collect", "fit", "run")


def report_dir(spec: SweepSpec) -> Path:
    return Path(spec.report_dir) if spec.report_dir else Path(spec.out) / "fit"


def committed_files(folder: Path) -> list[str]:
    """Files under `folder` that git tracks: published results a rerun must not silently replace."""
    if not folder.is_dir():
        return []
    try:
        p = subprocess.run(["git", "ls-files", "--", "."], cwd=folder, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return []
    return p.stdout.split() if p.returncode == 0 else []


def do_fit(spec: SweepSpec) -> dict:
    from atomforge.pipeline.sweep.analyze import analyze

    out = report_dir(spec)
    tracked = committed_files(out)
    if tracked and not spec.overwrite:
        raise ValueError(f"{out} holds committed results ({len(tracked)} tracked files, e.g. {tracked[0]}): pass "
                         "sweep.overwrite=true to replace them, or sweep.report_dir=<another folder>")
    scan = Path(spec.out) / LR_CHOICE
    context = {"command": f"atomforge sweep run sweep={spec.name}", "published": spec.published,
               "lr_scan": json.loads(scan.read_text()) if scan.is_file() else None}
    res = analyze(Path(spec.out) / "results.parquet", out, loss=spec.fit_loss, heldout=spec.heldout,
                  n_boot=spec.bootstrap, also=("downstream_force_mae",) if spec.downstream else (), context=context)
    law, ci = res["law"], res["ci95"]
    print(f"L(N, D) = {law['E']:.4g} + {law['A']:.4g}/N^{law['alpha']:.3f} + {law['B']:.4g}/D^{law['beta']:.3f}  "
          f"(alpha 95% [{ci['alpha'][0]:.3f}, {ci['alpha'][1]:.3f}], "
          f"beta 95% [{ci['beta'][0]:.3f}, {ci['beta'][1]:.3f}])")
    if res["heldout_rel_error"] is not None:
        noise = f" (seed noise {res['noise_floor_rel']:.3f})" if res.get("noise_floor_rel") is not None else ""
        print(f"held-out check: {res['heldout']['heldout_runs'][-1]} predicted/measured - 1 = "
              f"{res['heldout_rel_error']:+.3f}{noise}")
    for col, a in res.get("also", {}).items():
        print(f"{col}: " + (a["error"] if "error" in a
                            else f"held-out predicted/measured - 1 = {a['heldout_rel_error']:+.3f}"
                            if a["heldout_rel_error"] is not None else "no held-out check"))
    print(f"fit: {out}/fit.json, summary.md, *.png")
    return res


def _build(data: dict, seed: int) -> None:
    from atomforge.data_prep.build import BuildConfig, build

    print(f"building {data['name']} -> {data['root']}", flush=True)
    build(BuildConfig(out=data["root"], seed=seed, **data["build"]))


def main(cfg: dict, args: list[str]) -> None:
    overrides = [a for a in args if "=" in a]
    actions = [a for a in args if "=" not in a]
    if len(actions) != 1 or actions[0] not in ACTIONS:
        raise ValueError(f"expected one sweep action out of {', '.join(ACTIONS)}, "
                         "e.g. `atomforge sweep plan sweep=emt_demo`")
    action = actions[0]
    spec = SweepSpec.from_cfg(cfg)
    if action == "plan":
        from atomforge.pipeline.sweep.plan import make_plan, print_plan

        plan = make_plan(cfg, spec)
        Path(spec.out).mkdir(parents=True, exist_ok=True)
        (Path(spec.out) / "plan.json").write_text(json.dumps(plan, indent=1))
        if spec.lr_scan and plan["lr_chosen"] is None:  # grid lrs come from the scan: show its cost at the default lr
            print_plan(make_plan(cfg, spec, preview=True))
            print(f"(the lr scan at budget {spec.lr_scan['budget']:g} decides each size's lr; grid runs are shown at "
                  "the default lr)")
        else:
            print_plan(plan)
        return
    if action in ("launch", "run"):
        if action == "run" and not BuiltDataset(cfg["data"]["root"]).is_built():
            _build(cfg["data"], cfg["seed"])
        if spec.downstream and spec.downstream.get("data"):
            ds = plain(compose([f"data={spec.downstream['data']}"]))["data"]
            if not BuiltDataset(ds["root"]).is_built():
                _build(ds, cfg["seed"])
        from atomforge.pipeline.sweep.launch import launch_sweep

        BuiltDataset.open(cfg["data"]["root"], cfg["data"]["name"])
        launch_sweep(cfg, spec, overrides)
    if action in ("collect", "run"):
        from atomforge.pipeline.sweep.collect import collect

        collect(spec)
    if action in ("fit", "run"):
        res = do_fit(spec)
        out = report_dir(spec)
        for f in ("results.parquet", "plan.json", LR_CHOICE):
            if not (Path(spec.out) / f).is_file():
                continue
            if (Path(spec.out) / f).resolve() != (out / f).resolve():
                shutil.copy(Path(spec.out) / f, out / f)
        return res
