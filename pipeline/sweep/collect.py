"""`atomforge sweep collect`: every run of the grid -> results.parquet (one row per run, failed ones included)."""
from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from atomforge.pipeline.sweep import status
from atomforge.pipeline.sweep.spec import SweepSpec
from atomforge.pipeline.train.run_dir import RunDir

VAL_KEYS = ("val_energy_mae_per_atom", "val_force_mae")


def run_row(run_dir: Path, plan_row: dict, mean_atoms: float) -> dict:
    st = status.read(run_dir)
    rows = RunDir(run_dir).rows()
    steps = [r for r in rows if not r.get("final") and "atoms_per_s" in r]
    atoms = sum(r["atoms_per_s"] * r["step_time_s"] for r in steps)  # exact: both come from the same step's atom count
    final = next((r for r in reversed(rows) if r.get("final")), {})
    out = {"run": plan_row["run"], "size": plan_row["size"], "status": st.get("status", "pending"),
           "attempts": st.get("attempts", 0),
           "lr": plan_row["lr"], "seed": plan_row.get("seed", 0), "role": plan_row.get("role", "grid"),
           "budget": plan_row["budget"], "unit": plan_row["unit"],
           "N": plan_row["params"], "N_nonembed": plan_row["params_nonembed"], "steps": len(steps),
           "D_atoms": atoms, "D_structures": atoms / mean_atoms if mean_atoms else None,
           "flops_per_atom": plan_row["flops_per_atom"], "compute": plan_row["flops_per_atom"] * atoms,
           "wall_s": st.get("wall_s"), "error": st.get("error")}
    for k in VAL_KEYS:
        vals = [r[k] for r in rows if k in r]
        out[f"final_{k}"] = final.get(k)
        out[f"best_{k}"] = min(vals) if vals else None
    re = run_dir / "re_eval.json"
    re = json.loads(re.read_text()) if re.is_file() else {}
    out["val_force_rmse"] = re.get("val_force_rmse")
    out["val_re_force_error"] = re.get("val_re_force_error")
    out["re_atoms"] = re.get("re_atoms")
    ds = run_dir / "downstream.json"
    ds = json.loads(ds.read_text()) if ds.is_file() else {}
    out["downstream_force_mae"] = ds.get("force_mae")
    out["downstream_force_rmse"] = ds.get("force_rmse")
    if out["status"] == "done" and out["final_val_force_mae"] is None:
        out["status"], out["error"] = "incomplete", "finished without a final validation in metrics.jsonl"
    return out


def collect(spec: SweepSpec, out_path: str | None = None) -> Path:
    out = Path(spec.out)
    plan_file = out / "plan.json"
    if not plan_file.is_file():
        raise FileNotFoundError(f"{plan_file} not found: run `atomforge sweep launch sweep={spec.name}` first")
    plan = json.loads(plan_file.read_text())
    rows = [run_row(out / "runs" / r["run"], r, plan["data"]["mean_atoms"]) for r in plan["runs"]]
    path = Path(out_path) if out_path else out / "results.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    n_done = sum(r["status"] == "done" for r in rows)
    print(f"collected {len(rows)} runs ({n_done} finished) -> {path}")
    return path
