"""Carry weights between force modes: the eSEN recipe pre-trains with a direct force head, then fine-tunes
conservatively (forces = -dE/dx) from that checkpoint. The backbone and the energy MLP are shared; the direct
force head has no conservative counterpart and is dropped."""
from __future__ import annotations

from pathlib import Path

import torch

_DIRECT_E, _CONS_E, _DIRECT_F = "model.output_heads.energy.", "model.output_heads.efs.", "model.output_heads.forces."


def convert_force_mode(state: dict[str, torch.Tensor], target: str) -> dict[str, torch.Tensor]:
    out = {}
    for k, v in state.items():
        if target == "conservative":
            if k.startswith(_DIRECT_F):
                continue
            k = _CONS_E + k[len(_DIRECT_E):] if k.startswith(_DIRECT_E) else k
        elif target == "direct" and k.startswith(_CONS_E):
            k = _DIRECT_E + k[len(_CONS_E):]
        out[k] = v
    return out


def load_checkpoint_weights(model: torch.nn.Module, ckpt_dir: str | Path) -> list[str]:
    """Start `model` from a training checkpoint's EMA weights (`ema.pt`), whatever force mode it was trained in."""
    path = Path(ckpt_dir) / "ema.pt"
    if not path.is_file():
        raise FileNotFoundError(f"{ckpt_dir} is not a complete training checkpoint (no ema.pt)")
    state = convert_force_mode(torch.load(path, map_location="cpu", weights_only=True), model.cfg.force_mode)
    missing, unexpected = model.load_state_dict(state, strict=False)
    params = {k for k, _ in model.named_parameters()}  # EMA files hold parameters; buffers (Wigner-D) are rebuilt
    if unexpected or [k for k in missing if "output_heads" not in k and k in params]:
        raise ValueError(f"checkpoint {ckpt_dir} does not fit this model: unexpected {unexpected[:3]}, "
                         f"missing {missing[:3]}")
    return missing
