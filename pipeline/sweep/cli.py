"""`atomforge sweep plan|launch|collect|fit|run sweep=<entry> [cluster=local|slurm] [overrides]`."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from pipeline.sweep.spec import SweepSpec

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
    from pipeline.sweep.analyze import analyze

    out = report_dir(spec)
    tracked = committed_files(out)
    if tracked and not spec.overwrite:
        raise ValueError(f"{out} holds committed results ({len(tracked)} tracked files, e.g. {tracked[0]}): pass "
                         "sweep.overwrite=true to replace them, or sweep.report_dir=<another folder>")
    res = analyze(Path(spec.out) / "results.parquet", out, loss=spec.fit_loss, heldout=spec.heldout, n_boot=spec.bootstrap)
    law, ci = res["law"], res["ci95"]
    print(f"L(N, D) = {law['E']:.4g} + {law['A']:.4g}/N^{law['alpha']:.3f} + {law['B']:.4g}/D^{law['beta']:.3f}  "
          f"(alpha 95% [{ci['alpha'][0]:.3f}, {ci['alpha'][1]:.3f}], beta 95% [{ci['beta'][0]:.3f}, {ci['beta'][1]:.3f}])")
    if res["heldout_rel_error"] is not None:
        print(f"held-out check: {res['heldout']['heldout_runs'][-1]} predicted/measured - 1 = {res['heldout_rel_error']:+.3f}")
    print(f"fit: {out}/fit.json, summary.md, *.png")
    return res


def main(cfg: dict, args: list[str]) -> None:
    overrides = [a for a in args if "=" in a]
    actions = [a for a in args if "=" not in a]
    if len(actions) != 1 or actions[0] not in ACTIONS:
        raise ValueError(f"expected one sweep action out of {', '.join(ACTIONS)}, e.g. `atomforge sweep plan sweep=emt_demo`")
    action = actions[0]
    spec = SweepSpec.from_cfg(cfg)
    if action == "plan":
        from pipeline.sweep.plan import make_plan, print_plan

        plan = make_plan(cfg, spec)
        print_plan(plan)
        Path(spec.out).mkdir(parents=True, exist_ok=True)
        (Path(spec.out) / "plan.json").write_text(json.dumps(plan, indent=1))
        return
    if action in ("launch", "run"):
        if action == "run" and not (Path(cfg["data"]["root"]) / "manifest.parquet").is_file():
            from data_prep.build import BuildConfig, build

            print(f"building {cfg['data']['name']} -> {cfg['data']['root']}", flush=True)
            build(BuildConfig(out=cfg["data"]["root"], seed=cfg["seed"], **cfg["data"]["build"]))
        from pipeline.compose import require_dataset as _require_dataset
        from pipeline.sweep.launch import launch_sweep

        _require_dataset(Path(cfg["data"]["root"]), cfg["data"]["name"])
        launch_sweep(cfg, spec, overrides)
    if action in ("collect", "run"):
        from pipeline.sweep.collect import collect

        collect(spec)
    if action in ("fit", "run"):
        res = do_fit(spec)
        out = report_dir(spec)
        for f in ("results.parquet", "plan.json"):
            if (Path(spec.out) / f).resolve() != (out / f).resolve():
                shutil.copy(Path(spec.out) / f, out / f)
        return res
