"""Layer 2 of pipeline: the size ladder of fairchem backbones with per-task energy heads, reading exported folders,
batched prediction and the ASE calculator."""
from atomforge.pipeline.models.config import ModelConfig


def __getattr__(name):  # Potential imports fairchem (seconds): only when asked for, so `--help` and configs stay fast
    if name == "Potential":
        from atomforge.pipeline.models.potential import Potential

        return Potential
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["ModelConfig", "Potential"]
