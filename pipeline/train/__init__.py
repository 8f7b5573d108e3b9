from pipeline.train.config import TrainConfig

__all__ = ["TrainConfig"]
