"""`atomforge sweep launch`: the grid as one hydra multirun (basic launcher here, submitit arrays on SLURM)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from atomforge.pipeline.sweep import status
from atomforge.pipeline.sweep.lr_scan import choose_lrs
from atomforge.pipeline.sweep.plan import make_plan
from atomforge.pipeline.sweep.spec import SweepSpec

LAUNCHERS = {"basic": "basic", "submitit_slurm": "submitit_slurm", "submitit_local": "submitit_local"}


def multirun_command(cfg: dict, spec: SweepSpec, overrides: list[str], names: list[str]) -> list[str]:
    sw = (cfg.get("cluster") or {}).get("sweep") or {}
    launcher = sw.get("launcher", "basic")
    if launcher not in LAUNCHERS:
        raise ValueError(f"cluster.sweep.launcher must be one of {sorted(LAUNCHERS)}, got {launcher!r}")
    own = ("sweep_run.", "+sweep_run.", "hydra.", "hydra/")
    return [sys.executable, "-m", "atomforge.pipeline.sweep.job", "--multirun",
            *[o for o in overrides if not o.startswith(own)],
            f"+sweep_run.run={','.join(names)}",
            f"hydra/launcher={LAUNCHERS[launcher]}",
            f"hydra.sweep.dir={Path(spec.out) / 'multirun'}", "hydra.job.chdir=false",
            *[str(o) for o in sw.get("launcher_overrides", []) or []]]


def launch_sweep(cfg: dict, spec: SweepSpec, overrides: list[str]) -> dict:
    """The lr scan first when the sweep has one and it is not decided, then every run not yet finished."""
    if spec.lr_scan and spec.chosen_lrs() is None:
        plan = _launch(cfg, spec, overrides, "lr scan")
        choose_lrs(spec, plan)
    _launch(cfg, spec, overrides, "")
    counts: dict[str, int] = {}
    for run in spec.runs(spec.default_lr(cfg)):
        s = status.read(spec.run_dir(run))["status"]
        counts[s] = counts.get(s, 0) + 1
    print(f"sweep {spec.name}: " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())), flush=True)
    return counts


def _launch(cfg: dict, spec: SweepSpec, overrides: list[str], phase: str) -> dict:
    out = Path(spec.out)
    out.mkdir(parents=True, exist_ok=True)
    plan = make_plan(cfg, spec)
    (out / "plan.json").write_text(json.dumps(plan, indent=1))
    todo = {a: [] for a in ("skip", "give_up", "run")}
    for run in spec.runs(spec.default_lr(cfg)):
        todo[status.decide(status.read(spec.run_dir(run)), spec.max_retries)].append(run.name)
    print(f"sweep {spec.name}{' (' + phase + ')' if phase else ''}: {len(todo['run'])} to run, "
          f"{len(todo['skip'])} finished, {len(todo['give_up'])} failed past the retry limit", flush=True)
    if todo["run"]:
        cmd = multirun_command(cfg, spec, overrides, todo["run"])
        env = dict(os.environ)
        env.setdefault("WANDB_MODE", "offline")
        rc = subprocess.call(cmd, env=env)
        if rc != 0:
            raise RuntimeError(f"hydra multirun exited with code {rc}; see {out / 'multirun'}")
    return plan
