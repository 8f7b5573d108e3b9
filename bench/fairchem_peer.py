"""The peer for bench/train_throughput.py: fairchem's own trainer (`fairchem -c <yaml>`, TrainEvalRunner +
MLIPTrainEvalUnit, DDP over gloo on CPU) on the same escn_md backbone, the same structures (as an aselmdb), the
same per-rank max-atoms batches and the same number of ranks.

`fairchem_config` writes the yaml; `run_fairchem` runs the CLI in a subprocess and reads the per-step
`train/atoms_per_second(approx)` fairchem logs (atoms of the step x world size / wall time since the last step,
loader included, as ours is).
"""
from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path
from statistics import median

import yaml

from atomforge.pipeline.models.ladder import ESCN_MD, backbone_kwargs

_HEAD = "fairchem.core.models.uma.escn_md."
_NORM = "fairchem.core.modules.normalization.normalizer.Normalizer"


def _task(name: str, level: str, dim: int, loss: str, coef: float, rmsd: float, refs: list | None = None) -> dict:
    t = {"_target_": "fairchem.core.units.mlip_unit.mlip_unit.Task", "name": name, "level": level, "property": name,
         "out_spec": {"dim": [dim], "dtype": "float32"}, "datasets": ["omat"],
         "normalizer": {"_target_": _NORM, "mean": 0.0, "rmsd": rmsd},
         "loss_fn": {"_target_": "fairchem.core.modules.loss.DDPMTLoss",
                     "loss_fn": {"_target_": f"fairchem.core.modules.loss.{loss}"}, "coefficient": coef}}
    if refs is not None:
        t["element_references"] = {
            "_target_": "fairchem.core.modules.normalization.element_references.ElementReferences",
            "element_references": {"_target_": "torch.DoubleTensor", "_args_": [refs]}}
    return t


def fairchem_config(size: str, db: Path, run_dir: Path, world: int, max_atoms: int, steps: int, card: dict,
                    lr: float = 2e-3, conservative: bool = False) -> dict:
    """The fairchem CLI config: our ladder's escn_md backbone with direct energy + force heads, our loss weights;
    `conservative`: one MLP_EFS_Head, forces = -dE/dx by autograd (fairchem's conservative eSEN/UMA recipe)."""
    family, kw = backbone_kwargs(size)
    assert family == "esen", f"the peer runs escn_md sizes only, not {size}"
    backbone = {"model": ESCN_MD, **kw, "direct_forces": not conservative, "regress_forces": True,
                "regress_stress": False}
    refs = [0.0] * 101
    for z, v in (card.get("element_references") or {}).items():
        refs[int(z)] = float(v)
    scale = float(card.get("force_rms") or 1.0)
    tasks = [_task("energy", "system", 1, "PerAtomMAELoss", 5.0, scale, refs),
             _task("forces", "atom", 3, "L2NormLoss", 10.0, scale)]
    ds = {"format": "ase_db", "splits": {"train": {"src": [str(db)]}},
          "a2g_args": {"r_energy": True, "r_forces": True, "r_edges": False},
          "transforms": {"common_transform": {"dataset_name": "omat"}}}
    concat = {"_target_": "fairchem.core.datasets.mt_concat_dataset.create_concat_dataset",
              "dataset_configs": {"omat": ds},
              "combined_dataset_config": {"sampling": {"type": "temperature", "temperature": 1.0}}}
    sampler = "fairchem.core.datasets.samplers.max_atom_distributed_sampler.MaxAtomDistributedBatchSampler"
    loader = {"_target_": "fairchem.core.components.common.dataloader_builder.get_dataloader", "dataset": concat,
              "batch_sampler_fn": {"_target_": sampler, "_partial_": True, "max_atoms": max_atoms, "min_atoms": 0,
                                   "shuffle": True, "seed": 0},
              "num_workers": 0,
              "collate_fn": {"_target_": "fairchem.core.units.mlip_unit.mlip_unit.mt_collater_adapter",
                             "tasks": "${runner.train_eval_unit.tasks}"}}
    heads = ({"heads": {"efs": {"module": _HEAD + "MLP_EFS_Head"}}, "pass_through_head_outputs": True}
             if conservative else {"heads": {"energy": {"module": _HEAD + "MLP_Energy_Head"},
                                             "forces": {"module": _HEAD + "Linear_Force_Head"}}})
    return {
        "job": {"device_type": "CPU", "run_dir": str(run_dir), "debug": True, "logger": None, "seed": 0,
                "scheduler": {"mode": "LOCAL", "ranks_per_node": world, "distributed_init_method": "TCP"}},
        "runner": {
            "_target_": "fairchem.core.components.train.train_runner.TrainEvalRunner",
            "train_dataloader": loader,
            "eval_dataloader": loader,
            "max_epochs": None, "max_steps": steps, "evaluate_every_n_steps": None, "max_eval_steps_per_epoch": 1,
            "callbacks": [],
            "train_eval_unit": {
                "_target_": "fairchem.core.units.mlip_unit.mlip_unit.MLIPTrainEvalUnit",
                "job_config": "${job}",
                "tasks": tasks,
                "model": {"_target_": "fairchem.core.models.base.HydraModel", "backbone": backbone, **heads},
                "optimizer_fn": {"_target_": "torch.optim.AdamW", "_partial_": True, "lr": lr, "weight_decay": 1e-3},
                "cosine_lr_scheduler_fn": {
                    "_target_": "fairchem.core.units.mlip_unit.mlip_unit._get_consine_lr_scheduler",
                    "_partial_": True, "warmup_factor": 0.2, "warmup_epochs": 0.01, "lr_min_factor": 0.01,
                    "steps": steps},
                "print_every": 1, "clip_grad_norm": 10.0, "ema_decay": 0.99, "bf16": False,
                "save_inference_ckpt": False,
            },
        },
    }


_ROW = re.compile(r"INFO:root:(\{'train/loss'.*\})")


def run_fairchem(cfg: dict, work: Path, skip: int, timeout: int = 1800) -> dict:
    """Run `fairchem -c` on the config; median atoms/s over steps after `skip`, or the error it stopped with."""
    work.mkdir(parents=True, exist_ok=True)
    path = work / "fairchem_train.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    cli = Path(sys.executable).with_name("fairchem")
    cmd = [str(cli)] if cli.exists() else [sys.executable, "-m", "fairchem.core._cli"]
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")
    p = subprocess.run(cmd + ["-c", str(path)], capture_output=True, text=True, env=env, timeout=timeout, cwd=work)
    (work / "fairchem.log").write_text(p.stdout + p.stderr)
    rows = []
    for line in (p.stdout + p.stderr).splitlines():
        m = _ROW.search(line)
        if m:
            try:
                rows.append(ast.literal_eval(m.group(1)))
            except (ValueError, SyntaxError):
                pass
    if p.returncode != 0 or not rows:
        tail = [ln for ln in (p.stdout + p.stderr).splitlines() if ln.strip()][-5:]
        return {"error": f"`fairchem -c` exited {p.returncode} with {len(rows)} step rows: " + " | ".join(tail),
                "command": " ".join(cmd)}
    # rank 0 logs each step once; skip the warm-up steps as for ours
    vals = [r["train/atoms_per_second(approx)"] for r in rows if r["train/step"] >= skip]
    return {"atoms_per_s": median(vals), "steps_logged": len(rows), "command": " ".join(cmd + ["-c", "<yaml>"])}
