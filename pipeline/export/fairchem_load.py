"""fairchem's calculator over an exported folder's `inference_ckpt.pt`, loaded without running code from it.

fairchem stores its inference checkpoint as a pickled dataclass and rebuilds the model and tasks by hydra
`_target_` instantiation from the file's content: loading a received one with fairchem's own
`load_predict_unit` can run anything. Here the file is first checked against the sha256 in config.json,
then read with torch's weights-only unpickler (only the checkpoint dataclass, tensors and containers), and
every `_target_` and module name in it must be one that our export writes; only then does fairchem load it,
its own torch.load forced to weights-only as well.
"""
from __future__ import annotations

from pathlib import Path

import torch

from atomforge.pipeline.export.files import FAIRCHEM_CKPT, UnsafeFolderError, check_file, resolve
from atomforge.pipeline.export.hub import read_config
from atomforge.pipeline.train.safe_load import weights_only

# the targets write_inference_checkpoint emits; fairchem registry names stay plain strings
_TARGETS = {"fairchem.core.models.base.HydraModel", "fairchem.core.units.mlip_unit.mlip_unit.Task",
            "fairchem.core.units.mlip_unit.mlip_unit.OutputSpec",
            "fairchem.core.modules.normalization.normalizer.Normalizer",
            "fairchem.core.modules.normalization.element_references.ElementReferences", "torch.tensor"}
_MODULE_PREFIX = "fairchem.core.models."


def _check_targets(node, where: str = "checkpoint"):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "_target_" and v not in _TARGETS:
                raise UnsafeFolderError(f"{where} asks to build {v!r}, which an atomforge export never writes: "
                                        "refusing it")
            if k == "module" and isinstance(v, str) and "." in v and not v.startswith(_MODULE_PREFIX):
                raise UnsafeFolderError(f"{where} names module {v!r} outside fairchem's models: refusing it")
            _check_targets(v, where)
    elif isinstance(node, (list, tuple)):
        for v in node:
            _check_targets(v, where)


def verified_checkpoint(folder: str | Path) -> Path:
    """The path of a folder's fairchem checkpoint once it has passed every check."""
    from fairchem.core.units.mlip_unit.api.inference import MLIPInferenceCheckpoint

    d = resolve(folder)
    cfg = read_config(d)
    rec = cfg.get("fairchem_checkpoint") or {}
    path = check_file(d, rec.get("file", FAIRCHEM_CKPT), rec.get("sha256"), "fairchem checkpoint")
    with weights_only(path, allow=[MLIPInferenceCheckpoint]):
        ck = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(ck, MLIPInferenceCheckpoint):
        raise UnsafeFolderError(f"{path} is not a fairchem inference checkpoint")
    _check_targets(ck.model_config, str(path))
    _check_targets(ck.tasks_config, str(path))
    return path


def fairchem_task(folder: str | Path) -> str:
    """The fairchem task (dataset) name the folder's checkpoint answers to."""
    return (read_config(resolve(folder)).get("fairchem_checkpoint") or {}).get("task_name", "omat")


def fairchem_predict_unit(folder: str | Path, device: str = "cpu", inference_settings: str | None = None):
    """fairchem's predict unit on the folder's verified checkpoint; fairchem's "default" settings on GPU,
    "traineval" on CPU (the default compiles the model, which on CPU takes minutes before the first step)."""
    from fairchem.core.units.mlip_unit import load_predict_unit
    from fairchem.core.units.mlip_unit.api.inference import MLIPInferenceCheckpoint

    path = verified_checkpoint(folder)
    with weights_only(path, allow=[MLIPInferenceCheckpoint]):
        settings = inference_settings or ("traineval" if device == "cpu" else "default")
        return load_predict_unit(str(path), device=device, inference_settings=settings)


def fairchem_calculator(folder: str | Path, device: str = "cpu", task_name: str | None = None,
                        inference_settings: str | None = None):
    """A FAIRChemCalculator on the folder's weights (settings as in fairchem_predict_unit)."""
    from fairchem.core.calculate.ase_calculator import FAIRChemCalculator

    unit = fairchem_predict_unit(folder, device, inference_settings)
    return FAIRChemCalculator(unit, task_name=task_name or fairchem_task(folder))
