"""Layer 5 of pipeline: hub-format export and loading (config.json + model.safetensors + README.md card), the
fairchem inference checkpoint and LAMMPS."""
from atomforge.pipeline.export.hub import FORMAT_VERSION, export, from_pretrained, load
from atomforge.pipeline.export.fairchem_load import fairchem_calculator
from atomforge.pipeline.models.calculator import calculator

__all__ = ["FORMAT_VERSION", "export", "from_pretrained", "load", "calculator", "fairchem_calculator"]
