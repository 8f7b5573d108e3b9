"""A fairchem backbone + heads, with the dataset's element references and scale applied to its output.

energy = scale * E_nn + sum_i ref[Z_i];  forces = scale * F_nn (direct) or -dE/dx (conservative).
The references stay a float64 attribute, not a buffer, so bf16 training never rounds them.

With `cfg.tasks` (several datasets mixed), the energy head (the energy/force/stress head when conservative) is
fairchem's DatasetSpecificMoEWrapper: every linear layer of the head holds one expert per task and a structure
runs its own task's expert, chosen by the batch's `dataset` names; the backbone stays shared. Each task also
has its own element references (`cfg.task_references`: every dataset has its own energy zero), and a structure
without a task name (evaluation, calculators) runs `cfg.default_task`.
"""
from __future__ import annotations

import logging

import torch
from torch import nn
from torch._dynamo.exc import TorchDynamoException

from fairchem.core.models.base import HydraModel

from atomforge.pipeline.data.convert import DEFAULT_TASK
from atomforge.pipeline.models.config import ModelConfig
from atomforge.pipeline.models.ladder import BACKBONES, backbone_kwargs

_HEAD = "fairchem.core.models.uma.escn_md."
_ESCAIP = "fairchem.core.models.escaip.EScAIP."
_PER_TASK = "fairchem.core.models.uma.escn_moe.DatasetSpecificMoEWrapper"
MAX_Z = 100
log = logging.getLogger(__name__)


def _ref_table(refs: dict | None) -> torch.Tensor:
    out = torch.zeros(MAX_Z + 1, dtype=torch.float64)
    for z, v in (refs or {}).items():
        out[int(z)] = float(v)
    return out


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
                raise ValueError(f"{cfg.name} (EScAIP) is wired with direct energy/force heads only: use "
                                 "model.force_mode=direct, model.stress=false, model.activation_checkpointing=false, "
                                 "or an esen_* size for those")
            heads = {"energy": {"module": _ESCAIP + "EScAIPEnergyHead"},
                     "forces": {"module": _ESCAIP + "EScAIPDirectForceHead"}}
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
            heads[key] = {"module": _PER_TASK, "head_cls": inner["module"],
                          "dataset_mapping": {t: t for t in self.tasks},
                          "head_kwargs": {"wrap_property": False} if not direct else {}, "wrap_property": False}
        self.model = HydraModel(backbone=dict(model=BACKBONES[family], **kw), heads=heads, otf_graph=True,
                                pass_through_head_outputs=not direct)
        self.element_refs = _ref_table(element_references)  # plain attribute: kept float64, exported in the config
        self.default_task = (cfg.default_task or self.tasks[0]) if self.tasks else ""
        # one row per task (row 0: the model's own references, for tasks without an entry)
        self.task_refs = torch.stack([self.element_refs] + [_ref_table(cfg.task_references.get(t, element_references))
                                                            for t in self.tasks])
        self.energy_scale = float(energy_scale)
        self.cutoff = kw["cutoff"] if "cutoff" in kw else kw["max_radius"]
        self.compiled = False

    def compile_network(self, training: bool, zero_stage: int = 0, backend: str = "inductor") -> bool:
        """torch.compile the backbone + heads in place (nn.Module.compile: state_dict keys unchanged) with dynamic
        shapes, so packed batches of any size share one graph; graph construction stays eager (fairchem disables
        compile there). False, with a one-line warning, where compiled training cannot work. `backend="eager"`
        traces the same graphs without generating kernels (seconds; the CPU test mode of bench/gpu_check)."""
        why = None
        if training and self.cfg.force_mode == "conservative":
            why = "conservative forces in training need a double backward, which torch.compile does not support"
        elif training and zero_stage == 3:
            why = "ZeRO-3 gathers parameters in hooks that a compiled graph does not see"
        if why:
            log.warning("model.compile: %s; training eager", why)
            return False
        # fairchem's graph code reads batch sizes with .item(): an expected graph break, whose multi-line torch
        # warning would otherwise fill every training log
        logging.getLogger("torch._dynamo.variables.tensor").setLevel(logging.ERROR)
        self.model.compile(dynamic=True, backend=backend)
        self.compiled = True
        return True

    def _network(self, batch) -> dict:
        if not self.compiled:
            return self.model(batch)
        try:
            return self.model(batch)
        except TorchDynamoException as e:  # a graph torch.compile cannot handle: the same maths, eager
            self.model._compiled_call_impl, self.compiled = None, False
            first = (str(e).strip().splitlines() or [""])[0][:200]
            log.warning("model.compile: this model does not compile here (%s: %s); running eager", type(e).__name__,
                        first)
            return self.model(batch)

    @property
    def elements(self) -> list[int]:
        return [int(z) for z in torch.nonzero(self.task_refs.abs().sum(0)).flatten().tolist()]

    def task_names(self, batch) -> list[str]:
        """Each structure's head: its dataset name, or the default task for the generic name samples get
        when no task was given."""
        names = list(batch["dataset"]) if "dataset" in batch else [DEFAULT_TASK] * len(batch["natoms"])
        return [self.default_task if n == DEFAULT_TASK and n not in self.tasks else n for n in names]

    def reference_energy(self, batch) -> torch.Tensor:
        dev = batch["pos"].device
        if self.tasks:
            row = torch.tensor([self.tasks.index(t) + 1 if t in self.tasks else 0 for t in self.task_names(batch)],
                               device=dev)
            refs = self.task_refs.to(dev)[row[batch["batch"]], batch["atomic_numbers"].long()]
        else:
            refs = self.element_refs.to(dev)[batch["atomic_numbers"].long()]
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
            names = self.task_names(batch)
            unknown = set(names) - set(self.tasks)
            if unknown:
                raise ValueError(f"samples of dataset/task {sorted(unknown)} but this model has energy heads for "
                                 f"{self.tasks} (model.tasks)")
            batch.dataset = names
        out = self._network(batch)
        if self.tasks:
            out = self._merge_tasks(out, batch)
        s = self.energy_scale
        e_nn = _unwrap(out["energy"]).float().view(-1) * s
        res = {"energy_nn": e_nn, "energy": e_nn.double() + self.reference_energy(batch),
               "forces": _unwrap(out["forces"]).float() * s}
        if "stress" in out:
            res["stress"] = _unwrap(out["stress"]).float().view(-1, 3, 3) * s
        return res


def build_model(cfg: ModelConfig, element_references: dict | None = None, energy_scale: float = 1.0) -> Potential:
    """The model a config describes (element references in eV per atom, keyed by Z as int or str)."""
    return Potential(cfg, element_references or {}, energy_scale)
