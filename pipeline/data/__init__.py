from pipeline.data.convert import structure_to_atomicdata, structures_to_batch
from pipeline.data.loader import LoaderConfig, ShardBatches, make_loader

__all__ = ["structure_to_atomicdata", "structures_to_batch", "LoaderConfig", "ShardBatches", "make_loader"]
