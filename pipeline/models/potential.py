"""A fairchem backbone + heads, with the dataset's element references and scale applied to its output.

energy = scale * E_nn + sum_i ref[Z_i];  forces = scale * F_nn (direct) or -dE/dx (conservative).
The references stay a float64 attribute, not a buffer, so bf16 training never rounds them.

With `cfg.tasks` (several datasets mixed), the energy head (the energy/force/stress head when conservative) is
fairchem's DatasetSpecificMoEWrapper: every linear layer of the head holds one expert per task and a structure
runs its own task's expert, chosen by the batch's `dataset` names; the backbone stays shared.
"""
from __future__ import annotations

import torch
from torch import nn

from fairchem.core.models.base import HydraModel

from pipeline.models.config import ModelConfig
from pipeline.models.ladder import BACKBONES, backbone_kwargs

_HEAD = "fairchem.core.models.uma.escn_md."
_ESCAIP = "fairchem.core.models.escaip.EScAIP."
_PER_TASK = "fairchem.core.models.uma.escn_moe.DatasetSpecificMoEWrapper"
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
        if family not in BACKBONES:
            raise ValueError(f"model family {family!r} is not wired yet; choose a size of {sorted(BACKBONES)}")
        kw.update(direct_forces=direct, regress_forces=True, regress_stress=cfg.stress and not direct)
        if family == "escaip":
            if not direct or cfg.stress or cfg.activation_checkpointing:
                raise ValueError(f"{cfg.name} (EScAIP) is wired with direct energy/force heads only: use model.force_mode=direct, "
                                 "model.stress=false, model.activation_checkpointing=false, or an esen_* size for those")
            heads = {"energy": {"module": _ESCAIP + "EScAIPEnergyHead"}, "forces": {"module": _ESCAIP + "EScAIPDirectForceHead"}}
        elif direct:
            heads = {"energy": {"module": _HEAD + "MLP_Energy_Head"}, "forces": {"module": _HEAD + "Linear_Force_Head"}}
            if cfg.stress:
                heads["stress"] = {"module": _HEAD + "MLP_Stress_Head"}
        else:
            heads = {"efs": {"module": _HEAD + "MLP_EFS_Head", "wrap_property": False}}
        if family != "escaip":
            kw["activation_checkpointing"] = cfg.activation_checkpointing
        self.tasks = sorted(cfg.tasks)
        if self.tasks:
            if family == "escaip":
                raise ValueError(f"per-task energy heads are wired for eSEN/MoLE sizes, not {cfg.name}")
            key = "energy" if direct else "efs"
            inner = heads[key]
            heads[key] = {"module": _PER_TASK, "head_cls": inner["module"], "dataset_mapping": {t: t for t in self.tasks},
                          "head_kwargs": {"wrap_property": False} if not direct else {}, "wrap_property": False}
        self.model = HydraModel(backbone=dict(model=BACKBONES[family], **kw), heads=heads, otf_graph=True, pass_through_head_outputs=not direct)
        refs = torch.zeros(MAX_Z + 1, dtype=torch.float64)
        for z, v in (element_references or {}).items():
            refs[int(z)] = float(v)
        self.element_refs = refs  # plain attribute: kept float64, exported in the config
        self.energy_scale = float(energy_scale)
        self.cutoff = kw["cutoff"] if "cutoff" in kw else kw["max_radius"]

    @property
    def elements(self) -> list[int]:
        return [int(z) for z in torch.nonzero(self.element_refs).flatten().tolist()]

    def reference_energy(self, batch) -> torch.Tensor:
        refs = self.element_refs.to(batch["pos"].device)[batch["atomic_numbers"].long()]
        out = torch.zeros(len(batch["natoms"]), dtype=torch.float64, device=refs.device)
        return out.index_add_(0, batch["batch"], refs)

    def _merge_tasks(self, out: dict, batch) -> dict:
        """Per-task outputs (`{task}_energy`, zero outside the task's structures) -> one value per structure."""
        flat = dict(out)
        if isinstance(out.get("energy"), dict):  # direct heads: {"energy": {"<task>_energy": ...}}
            flat.update(out.pop("energy"))
        merged = {k: v for k, v in out.items() if not any(k.startswith(f"{t}_") for t in self.tasks)}
        for prop in ("energy", "forces", "stress"):
            parts = [_unwrap(flat[f"{t}_{prop}"]) for t in self.tasks if f"{t}_{prop}" in flat]
            if parts:
                merged[prop] = torch.stack(parts).sum(0)
        return merged

    def forward(self, batch) -> dict[str, torch.Tensor]:
        """Returns the network's scaled residual energy `energy_nn` and full `energy`, `forces`, (`stress`)."""
        if self.tasks:
            unknown = set(batch["dataset"]) - set(self.tasks)
            if unknown:
                raise ValueError(f"samples of dataset/task {sorted(unknown)} but this model has energy heads for {self.tasks} (model.tasks)")
        out = self.model(batch)
        if self.tasks:
            out = self._merge_tasks(out, batch)
        s = self.energy_scale
        e_nn = _unwrap(out["energy"]).float().view(-1) * s
        res = {"energy_nn": e_nn, "energy": e_nn.double() + self.reference_energy(batch), "forces": _unwrap(out["forces"]).float() * s}
        if "stress" in out:
            res["stress"] = _unwrap(out["stress"]).float().view(-1, 3, 3) * s
        return res
