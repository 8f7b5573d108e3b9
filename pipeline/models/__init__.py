"""Layer 2 of pipeline: the size ladder of fairchem backbones with per-task energy heads, reading exported folders,
batched prediction and the ASE calculator."""
from pipeline.models.config import ModelConfig
from pipeline.models.potential import Potential

__all__ = ["ModelConfig", "Potential"]
