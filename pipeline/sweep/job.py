"""One sweep run, as a hydra multirun job:
`python -m atomforge.pipeline.sweep.job --multirun sweep=... +sweep_run.run=<name>,<name> ...`
(the names are plan.json's: the job reads its size, budget, lr, seed and steps there).

The job decides for itself whether to run (status.json), so relaunching the whole grid skips finished runs
and retries failed ones; a failure is recorded, not raised, so the other jobs of a local multirun go on.
"""
from __future__ import annotations

import json
import logging
import time
import traceback
from pathlib import Path

import hydra
import numpy as np
from omegaconf import DictConfig, OmegaConf

from atomforge.pipeline.compose import CONFIG_DIR, assemble_train_config, register_schemas
from atomforge.pipeline.data.dataset import read_split
from atomforge.pipeline.evaluate.after_training import select_after_training
from atomforge.pipeline.evaluate.run import load_model
from atomforge.pipeline.evaluate.standard import ErrorAccumulator
from atomforge.pipeline.models.predict import predict_structures
from atomforge.pipeline.sweep import status
from atomforge.pipeline.sweep.spec import Run, SweepSpec
from atomforge.pipeline.train.launch import launch

log = logging.getLogger(__name__)


def train_config_for(cfg: dict, spec: SweepSpec, run: Run, steps: int, run_dir: Path):
    train = {**cfg["train"], **spec.train, "lr": run.lr, "steps": steps}
    if spec.warmup_frac > 0:  # each run's schedule is set for its own length
        train["warmup_steps"] = max(1, round(spec.warmup_frac * steps))
    train.setdefault("eval_every", 0)
    if not train["eval_every"]:  # a few validations per run so collect can report the best, not only the final
        train["eval_every"] = max(1, steps // 4)
    train["log_every"] = 1  # collect sums atoms seen over every step
    model = {**cfg["model"], "name": run.size.ladder, "backbone": dict(run.size.backbone)}
    return assemble_train_config(run_dir, cfg["data"]["root"], model, train, cfg["deepspeed"], spec.world_size,
                                 int(cfg["seed"]) + run.seed)


def force_errors(run_dir: Path, data_root: str, split: str) -> dict:
    """Force MAE and RMSE (per component, eV/Å) of the run's exported model on another dataset's split: the
    downstream figure the sweep fits beside its validation loss (energies are left out: each dataset has its own
    zero)."""
    acc = ErrorAccumulator()
    for s, p in predict_structures(load_model(str(run_dir)), read_split(data_root, split)):
        if s.forces is not None:
            acc.add_forces(p["forces"], s.forces)
    r = acc.result()
    if "force_mae" not in r:
        raise ValueError(f"{data_root} split {split!r} has no structures with forces")
    return {"root": str(data_root), "split": split, "components": int(r["n_force_components"]),
            "force_mae": r["force_mae"], "force_rmse": r["force_rmse"]}


def re_metrics(run_dir: Path, data_root: str, split: str = "val") -> dict:
    """Force errors on the val split, and on its rare-event atoms (r == 0) where the data has them."""
    model = load_model(str(run_dir))
    dF, dF_all, n_struct = [], [], 0
    for s, p in predict_structures(model, read_split(data_root, split)):
        n_struct += 1
        if s.forces is None:
            continue
        dF_all.append((p["forces"] - s.forces).ravel())
        r = s.atom_fields.get("r")
        if r is not None:
            m = np.asarray(r) == 0
            dF.append(np.linalg.norm(p["forces"][m], axis=1) - np.linalg.norm(s.forces[m], axis=1))
    dF = np.concatenate(dF) if dF else np.zeros(0)
    out = {"split": split, "structures": n_struct, "re_atoms": int(dF.size),
           "val_force_rmse": float(np.sqrt(np.mean(np.concatenate(dF_all) ** 2))) if dF_all else float("nan")}
    out["val_re_force_error"] = float(np.sqrt(np.mean(dF ** 2))) if dF.size else None
    return out


def run_one(cfg: dict) -> str:
    spec = SweepSpec.from_cfg(cfg)
    name = str(cfg["sweep_run"]["run"])
    plan = json.loads((Path(spec.out) / "plan.json").read_text())
    row = next((x for x in plan["runs"] if x["run"] == name), None)
    if row is None:
        raise ValueError(f"run {name} is not in {spec.out}/plan.json: rerun `atomforge sweep launch`")
    run = Run(spec.size(row["size"]), float(row["budget"]), float(row["lr"]), int(row.get("seed", 0)),
              row.get("role", "grid"))
    run_dir = spec.run_dir(run)
    st = status.read(run_dir)
    action = status.decide(st, spec.max_retries)
    if action != "run":
        why = "finished, skipped" if action == "skip" else f"failed {st.get('attempts')} times, given up"
        print(f"[sweep] {run.name}: {why}", flush=True)
        return action
    status.write(run_dir, status="running", attempts=st.get("attempts", 0) + 1, run=run.name, size=run.size.name,
                 budget=run.budget, unit=spec.unit, lr=run.lr, seed=run.seed, role=run.role, steps=row["steps"],
                 error=None)
    print(f"[sweep] {run.name}: training {row['steps']} steps (attempt {st.get('attempts', 0) + 1})", flush=True)
    t0 = time.time()
    try:
        tc = train_config_for(cfg, spec, run, row["steps"], run_dir)
        rc = launch(tc)
        if rc != 0:
            raise RuntimeError(f"training exited with code {rc}")
        select_after_training(tc)
        wall = time.time() - t0
        if spec.evaluate_re:
            (run_dir / "re_eval.json").write_text(json.dumps(re_metrics(run_dir, cfg["data"]["root"], tc.val_split),
                                                             indent=1))
        if plan.get("downstream"):
            ds = plan["downstream"]
            (run_dir / "downstream.json").write_text(json.dumps(force_errors(run_dir, ds["root"], ds["split"]),
                                                                indent=1))
        status.write(run_dir, status="done", wall_s=wall)
        print(f"[sweep] {run.name}: done in {wall:.0f}s", flush=True)
        return "done"
    except Exception as e:  # noqa: BLE001 - recorded for the relaunch; the other runs go on
        status.write(run_dir, status="failed", wall_s=time.time() - t0,
                     error=f"{type(e).__name__}: {e}".splitlines()[0])
        (run_dir / "error.txt").write_text(traceback.format_exc())
        print(f"[sweep] {run.name}: failed: {e}", flush=True)
        return "failed"


register_schemas()  # configs/config.yaml composes onto the typed schemas, here as in compose()


@hydra.main(config_path=str(CONFIG_DIR), config_name="config", version_base=None)
def main(cfg: DictConfig) -> str:
    return run_one(OmegaConf.to_container(cfg, resolve=True))


if __name__ == "__main__":
    main()
