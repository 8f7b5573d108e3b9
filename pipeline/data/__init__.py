"""Layer 1 of pipeline: built shards -> fairchem AtomicData batches (loader, epoch plans, mixes, the split reader)."""
from atomforge.pipeline.data.convert import structure_to_atomicdata, structures_to_batch
from atomforge.pipeline.data.loader import LoaderConfig, ShardBatches, make_loader
from atomforge.pipeline.data.plan import epoch_plan, mix_shares, mixed_plan

__all__ = ["structure_to_atomicdata", "structures_to_batch", "LoaderConfig", "ShardBatches", "make_loader",
           "epoch_plan", "mixed_plan", "mix_shares"]
