"""Layer 5 of pipeline: hub-format export and loading (config.json + model.safetensors + README.md card), the
fairchem inference checkpoint and LAMMPS."""
from __future__ import annotations

import importlib

__all__ = ["FORMAT_VERSION", "export", "from_pretrained", "load", "calculator", "fairchem_calculator"]

# Names resolve on first use: the CLI's refusals (export.files) must answer before fairchem loads.
_LAZY = {"FORMAT_VERSION": "atomforge.pipeline.export.hub", "export": "atomforge.pipeline.export.hub",
         "from_pretrained": "atomforge.pipeline.export.hub", "load": "atomforge.pipeline.export.hub",
         "fairchem_calculator": "atomforge.pipeline.export.fairchem_load",
         "calculator": "atomforge.pipeline.models.calculator"}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'atomforge.pipeline.export' has no attribute {name!r}")
