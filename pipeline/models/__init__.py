from pipeline.models.config import ModelConfig
from pipeline.models.potential import Potential

__all__ = ["ModelConfig", "Potential"]
