"""Layer 1 of pipeline: a built dataset (BuiltDataset: card, manifest, shards, the checked split reader) -> fairchem
AtomicData batches (loader, epoch plans, mixes)."""
import importlib

# where each name lives; resolved on first use: the loader imports fairchem (seconds), and `--help` and configs
# (which open datasets through BuiltDataset) must stay fast
_HOME = {"BuiltDataset": "dataset", "read_split": "dataset", "structure_to_atomicdata": "convert",
         "structures_to_batch": "convert", "LoaderConfig": "loader", "ShardBatches": "loader", "make_loader": "loader",
         "epoch_plan": "plan", "mixed_plan": "plan", "mix_shares": "plan"}
__all__ = list(_HOME)


def __getattr__(name):
    if name in _HOME:
        return getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
