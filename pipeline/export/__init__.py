"""Hub-format export and loading: config.json + model.safetensors + README.md card."""
from atomforge.pipeline.export.hub import FORMAT_VERSION, export, from_pretrained, load
from atomforge.pipeline.export.calculator import calculator  # the submodule first, so the name ends up the function
from atomforge.pipeline.export.fairchem_load import fairchem_calculator

__all__ = ["FORMAT_VERSION", "export", "from_pretrained", "load", "calculator", "fairchem_calculator"]
