"""Layer 3 of pipeline: the DeepSpeed training loop, its checkpoints and resume, launch (torchrun, SLURM), and
fine-tuning start-up from an exported folder."""
from atomforge.pipeline.train.config import TrainConfig

__all__ = ["TrainConfig"]
