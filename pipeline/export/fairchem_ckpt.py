"""`inference_ckpt.pt` in fairchem's MLIPInferenceCheckpoint layout.

fairchem's `load_predict_unit` rebuilds the HydraModel from `model_config` (hydra `_target_`), loads the EMA
weights from `ema_state_dict` (an AveragedModel state dict) and instantiates `tasks_config`. Our energy scale
becomes each task's Normalizer rmsd and the element references become the energy task's ElementReferences,
so fairchem's calculator returns the same totals as ours. Task names equal our head names, because fairchem
reads `output[task.name][task.property]`.
"""
from __future__ import annotations

from pathlib import Path

import torch

from atomforge.pipeline.data.convert import DEFAULT_TASK
from atomforge.pipeline.models.ladder import ESCN_MD, backbone_kwargs
from atomforge.pipeline.models.potential import MAX_Z, Potential

_PREFIX = "model."  # Potential keeps the HydraModel under `.model`
_NORMALIZER = "fairchem.core.modules.normalization.normalizer.Normalizer"
_ELEMENT_REFS = "fairchem.core.modules.normalization.element_references.ElementReferences"


def _hydra_config(model: Potential) -> dict:
    cfg = model.cfg
    _, kw = backbone_kwargs(cfg.name, cfg.backbone)
    direct = cfg.force_mode == "direct"
    kw.update(direct_forces=direct, regress_forces=True, regress_stress=cfg.stress and not direct,
              activation_checkpointing=False)
    return {"_target_": "fairchem.core.models.base.HydraModel", "backbone": {"model": ESCN_MD, **kw},
            "heads": _heads(model), "otf_graph": True, "pass_through_head_outputs": not direct}


def _heads(model: Potential) -> dict:
    heads = {}
    for name, head in model.model.output_heads.items():
        # the EFS head keeps fairchem's default wrap_property=True: fairchem's predict unit reads
        # output[task][property], which flat outputs (our training layout) would fail
        heads[name] = {"module": f"{type(head).__module__}.{type(head).__name__}"}
    return heads


def _task(name: str, prop: str, level: str, dim: list[int], scale: float, refs: torch.Tensor | None) -> dict:
    task = {"_target_": "fairchem.core.units.mlip_unit.mlip_unit.Task", "name": name, "level": level, "property": prop,
            "out_spec": {"_target_": "fairchem.core.units.mlip_unit.mlip_unit.OutputSpec", "dim": dim,
                         "dtype": "float32"},
            "normalizer": {"_target_": _NORMALIZER, "mean": 0.0, "rmsd": float(scale)},
            "datasets": [DEFAULT_TASK]}
    if refs is not None:
        # A plain list through torch.tensor keeps the config free of tensors (hydra cannot hold them).
        task["element_references"] = {"_target_": _ELEMENT_REFS,
                                      "element_references": {"_target_": "torch.tensor",
                                                             "data": [float(v) for v in refs]}}
    return task


def _tasks(model: Potential) -> list[dict]:
    s = model.energy_scale
    refs = model.element_refs[: MAX_Z + 1]
    direct = model.cfg.force_mode == "direct"
    tasks = [_task("energy", "energy", "system", [1], s, refs), _task("forces", "forces", "atom", [3], s, None)]
    if model.cfg.stress:
        tasks.append(_task("stress", "stress", "system", [1, 9], s, None))
    if not direct:  # one EFS head: outputs come back under property names, as {property: tensor}
        for t in tasks:
            t["name"] = t["property"]
    return tasks


def write_inference_checkpoint(model: Potential, path: str | Path) -> Path:
    from fairchem.core.units.mlip_unit.api.inference import MLIPInferenceCheckpoint

    sd = {k[len(_PREFIX):]: v.detach().cpu().clone() for k, v in model.state_dict().items() if k.startswith(_PREFIX)}
    ema = {f"module.{k}": v for k, v in sd.items()}
    ema["n_averaged"] = torch.tensor(1, dtype=torch.long)
    ck = MLIPInferenceCheckpoint(model_config=_hydra_config(model), model_state_dict=sd, ema_state_dict=ema,
                                 tasks_config=_tasks(model))
    path = Path(path)
    torch.save(ck, path)
    return path
