"""Full fp32 weights from a DeepSpeed checkpoint of any ZeRO stage and world size (DeepSpeed's own tools)."""
from __future__ import annotations

import json
from pathlib import Path

import torch

from atomforge.pipeline.train.checkpoint import MARKER, complete_checkpoints
from atomforge.pipeline.train.safe_load import load_tensors, weights_only


def find_checkpoint(run_dir: str | Path, which: str = "latest") -> Path:
    root = Path(run_dir) / "checkpoints"
    cks = complete_checkpoints(root)
    if not cks:
        raise FileNotFoundError(f"no complete checkpoint under {root}")
    if which == "latest":
        return cks[-1]
    if which == "best":
        best = Path(run_dir) / "best_checkpoint.json"
        if not best.is_file():
            raise FileNotFoundError(f"{best} not found: run `atomforge eval select` first or use checkpoint=latest")
        return root / json.loads(best.read_text())["tag"]
    tag = which if which.startswith("step_") else f"step_{int(which):08d}"
    if not (root / tag / MARKER).is_file():
        raise FileNotFoundError(f"checkpoint {tag} not found or incomplete in {root}")
    return root / tag


def consolidated_state_dict(ckpt: Path, ema: bool = True) -> dict[str, torch.Tensor]:
    """fp32 module state dict; EMA parameters replace the raw ones when `ema`."""
    cfg = json.loads((ckpt / "config.json").read_text())
    stage = cfg["train"]["deepspeed"]["stage"]
    if stage == 0:
        sd = load_tensors(ckpt / "mp_rank_00_model_states.pt")["module"]
        sd = {k: v.float() if v.is_floating_point() else v for k, v in sd.items()}
    else:
        from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint

        with weights_only(ckpt):  # the converter's own torch.load(weights_only=False) calls included
            sd = dict(get_fp32_state_dict_from_zero_checkpoint(str(ckpt.parent), tag=ckpt.name))
    if ema:
        full = load_tensors(ckpt / "ema.pt")
        missing = set(full) - set(sd)
        if missing:
            raise RuntimeError(f"EMA weights name parameters the checkpoint lacks: {sorted(missing)[:3]}")
        sd.update({k: v.float() for k, v in full.items()})
    return {k: v.contiguous() for k, v in sd.items()}
