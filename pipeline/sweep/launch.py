"""`atomforge sweep launch`: the grid as one hydra multirun (basic launcher here, submitit arrays on SLURM)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from pipeline.sweep import status
from pipeline.sweep.plan import make_plan
from pipeline.sweep.spec import SweepSpec, _num

LAUNCHERS = {"basic": "basic", "submitit_slurm": "submitit_slurm", "submitit_local": "submitit_local"}


def multirun_command(cfg: dict, spec: SweepSpec, overrides: list[str]) -> list[str]:
    sw = (cfg.get("cluster") or {}).get("sweep") or {}
    launcher = sw.get("launcher", "basic")
    if launcher not in LAUNCHERS:
        raise ValueError(f"cluster.sweep.launcher must be one of {sorted(LAUNCHERS)}, got {launcher!r}")
    lrs = spec.lrs or [spec.default_lr(cfg)]
    own = ("sweep_run.", "+sweep_run.", "hydra.", "hydra/")
    return [sys.executable, "-m", "pipeline.sweep.job", "--multirun",
            *[o for o in overrides if not o.startswith(own)],
            f"+sweep_run.size={','.join(s.name for s in spec.sizes)}",
            f"+sweep_run.budget={','.join(_num(b) for b in spec.budgets)}",
            f"+sweep_run.lr={','.join(_num(x) for x in lrs)}",
            f"hydra/launcher={LAUNCHERS[launcher]}",
            f"hydra.sweep.dir={Path(spec.out) / 'multirun'}", "hydra.job.chdir=false",
            *[str(o) for o in sw.get("launcher_overrides", []) or []]]


def launch_sweep(cfg: dict, spec: SweepSpec, overrides: list[str]) -> dict:
    out = Path(spec.out)
    out.mkdir(parents=True, exist_ok=True)
    plan = make_plan(cfg, spec)
    (out / "plan.json").write_text(json.dumps(plan, indent=1))
    todo = {a: 0 for a in ("skip", "give_up", "run")}
    for run in spec.runs(spec.default_lr(cfg)):
        todo[status.decide(status.read(spec.run_dir(run)), spec.max_retries)] += 1
    print(f"sweep {spec.name}: {todo['run']} to run, {todo['skip']} finished, {todo['give_up']} failed past the retry limit", flush=True)
    if todo["run"]:
        cmd = multirun_command(cfg, spec, overrides)
        env = dict(os.environ)
        env.setdefault("WANDB_MODE", "offline")
        rc = subprocess.call(cmd, env=env)
        if rc != 0:
            raise RuntimeError(f"hydra multirun exited with code {rc}; see {out / 'multirun'}")
    counts: dict[str, int] = {}
    for run in spec.runs(spec.default_lr(cfg)):
        s = status.read(spec.run_dir(run))["status"]
        counts[s] = counts.get(s, 0) + 1
    print(f"sweep {spec.name}: " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())), flush=True)
    return counts
