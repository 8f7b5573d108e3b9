"""A fairchem backbone + heads, with the dataset's element references and scale applied to its output.

energy = scale * E_nn + sum_i ref[Z_i];  forces = scale * F_nn (direct) or -dE/dx (conservative).
The references stay a float64 attribute, not a buffer, so bf16 training never rounds them.
"""
from __future__ import annotations

import torch
from torch import nn

from fairchem.core.models.base import HydraModel

from pipeline.models.config import ModelConfig
from pipeline.models.ladder import BACKBONES, backbone_kwargs

_HEAD = "fairchem.core.models.uma.escn_md."
MAX_Z = 100


def _unwrap(v):
    while isinstance(v, dict):
        v = next(iter(v.values()))
    return v


class Potential(nn.Module):
    def __init__(self, cfg: ModelConfig, element_references: dict, energy_scale: float = 1.0):
        super().__init__()
        self.cfg = cfg
        family, kw = backbone_kwargs(cfg.name, cfg.backbone)
        direct = cfg.force_mode == "direct"
        kw.update(direct_forces=direct, regress_forces=True, regress_stress=cfg.stress and not direct,
                  activation_checkpointing=cfg.activation_checkpointing)
        if family not in BACKBONES:
            raise ValueError(f"model family {family!r} is not wired yet; choose a size of {sorted(BACKBONES)}")
        if direct:
            heads = {"energy": {"module": _HEAD + "MLP_Energy_Head"}, "forces": {"module": _HEAD + "Linear_Force_Head"}}
            if cfg.stress:
                heads["stress"] = {"module": _HEAD + "MLP_Stress_Head"}
        else:
            heads = {"efs": {"module": _HEAD + "MLP_EFS_Head", "wrap_property": False}}
        self.model = HydraModel(backbone=dict(model=BACKBONES[family], **kw), heads=heads, otf_graph=True, pass_through_head_outputs=not direct)
        refs = torch.zeros(MAX_Z + 1, dtype=torch.float64)
        for z, v in (element_references or {}).items():
            refs[int(z)] = float(v)
        self.element_refs = refs  # plain attribute: kept float64, exported in the config
        self.energy_scale = float(energy_scale)
        self.cutoff = kw["cutoff"]

    @property
    def elements(self) -> list[int]:
        return [int(z) for z in torch.nonzero(self.element_refs).flatten().tolist()]

    def reference_energy(self, batch) -> torch.Tensor:
        refs = self.element_refs.to(batch["pos"].device)[batch["atomic_numbers"].long()]
        out = torch.zeros(len(batch["natoms"]), dtype=torch.float64, device=refs.device)
        return out.index_add_(0, batch["batch"], refs)

    def forward(self, batch) -> dict[str, torch.Tensor]:
        """Returns the network's scaled residual energy `energy_nn` and full `energy`, `forces`, (`stress`)."""
        out = self.model(batch)
        s = self.energy_scale
        e_nn = _unwrap(out["energy"]).float().view(-1) * s
        res = {"energy_nn": e_nn, "energy": e_nn.double() + self.reference_energy(batch), "forces": _unwrap(out["forces"]).float() * s}
        if "stress" in out:
            res["stress"] = _unwrap(out["stress"]).float().view(-1, 3, 3) * s
        return res
