"""A checkpoint's model: full fp32 weights from a DeepSpeed checkpoint of any ZeRO stage and world size (DeepSpeed's
own tools), built into the Potential exactly as its export would be. Selection and evaluation score checkpoints
through this; export writes the same weights to a folder."""
from __future__ import annotations

import json
from pathlib import Path

import torch

from atomforge.pipeline.models.config import ModelConfig
from atomforge.pipeline.models.potential import build_model
from atomforge.pipeline.train.safe_load import load_tensors, weights_only


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


def checkpoint_state(ckpt: Path, ema: bool = True) -> tuple[dict, dict[str, torch.Tensor]]:
    """(the checkpoint's record, its weights with each tensor in the dtype the model declares, whatever the ZeRO
    stage saved it in: exports compare bit for bit)."""
    rec = json.loads((ckpt / "config.json").read_text())
    sd = consolidated_state_dict(ckpt, ema=ema)
    dtypes = {k: v.dtype for k, v in build_model(ModelConfig(**rec["train"]["model"])).state_dict().items()}
    return rec, {k: v.to(dtypes[k]) if k in dtypes else v for k, v in sd.items()}


def references(rec: dict) -> tuple[dict, float]:
    """(element references, energy scale) a checkpoint's model was trained with."""
    card = rec["card"]
    return (rec.get("element_references") or card["element_references"],
            rec.get("energy_scale") or card.get("force_rms") or 1.0)


def checkpoint_model(ckpt: Path, ema: bool = True, device: str = "cpu"):
    """The Potential a checkpoint holds, in eval mode: the same weights, references and scale its export holds."""
    rec, sd = checkpoint_state(ckpt, ema)
    model = build_model(ModelConfig(**rec["train"]["model"]), *references(rec))
    model.load_state_dict(sd, strict=True)
    return model.to(device).eval()
