"""Layer 3 of pipeline: the DeepSpeed training loop, the run folder (RunDir), its checkpoints, resume and a
checkpoint's model, launch (torchrun, SLURM), and fine-tuning start-up from an exported folder."""
from atomforge.pipeline.train.config import TrainConfig

__all__ = ["TrainConfig"]
