"""Everything after the shards: loading, models, training, evaluation, export, sweeps, CLI."""
from pipeline.runtime import silence_imports

silence_imports()  # before anything imports fairchem (and warp with it): a CPU machine gets no CUDA-driver noise
