"""Layer 2 of pipeline: the size ladder of fairchem backbones with per-task energy heads, reading exported folders,
batched prediction and the ASE calculator."""
from atomforge.pipeline.models.config import ModelConfig
from atomforge.pipeline.models.potential import Potential

__all__ = ["ModelConfig", "Potential"]
