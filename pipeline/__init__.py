"""Everything after the shards, in layers that import only earlier ones (tests/code/test_layers.py):
data (a built dataset; shards -> batches) -> models (backbones, heads, the exported-folder reader, the one batched
predictor, the ASE calculator) -> train (DeepSpeed loop, the run folder, checkpoints, launch) -> evaluate (errors,
rare-event metrics, properties, peers, checkpoint selection) -> export (hub folders, fairchem/LAMMPS files) ->
compose (the one config path) -> sweep, reproduce -> cli.
Errors derive from atomforge.data_prep.errors.AtomforgeError; the CLI prints them as one line."""
from atomforge.pipeline.runtime import silence_imports

silence_imports()  # before anything imports fairchem (and warp with it): a CPU machine gets no CUDA-driver noise
