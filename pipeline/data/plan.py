"""The epoch plan: which samples form which batch on which rank, computed from the manifest alone.

Every rank computes every rank's plan (cheap arithmetic on the manifest), so all ranks agree on the number
of batches per epoch without communicating: nobody hangs at the epoch end. Shards are shuffled per epoch,
read in windows of a few shards, and samples shuffled inside a window (bounded memory).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq


@dataclass(frozen=True)
class Sample:
    shard: str
    key: str
    n_atoms: int


def load_index(manifest_path: str, split: str) -> dict[str, list[Sample]]:
    """Samples of one split, grouped by shard in on-disk order."""
    t = pq.read_table(manifest_path, columns=["key", "shard", "index", "n_atoms", "split"])
    t = t.filter(pc.equal(t.column("split"), split))
    if t.num_rows == 0:
        raise ValueError(f"split {split!r} of {manifest_path} has no samples")
    t = t.sort_by([("shard", "ascending"), ("index", "ascending")])
    out: dict[str, list[Sample]] = {}
    for key, shard, n in zip(t.column("key").to_pylist(), t.column("shard").to_pylist(), t.column("n_atoms").to_pylist()):
        out.setdefault(shard, []).append(Sample(shard, key, int(n)))
    return out


def pack(samples: list[Sample], max_atoms: int) -> list[list[Sample]]:
    """Greedy packing in order: a batch closes when the next sample would exceed the atom budget."""
    batches, cur, atoms = [], [], 0
    for s in samples:
        if cur and atoms + s.n_atoms > max_atoms:
            batches.append(cur)
            cur, atoms = [], 0
        cur.append(s)
        atoms += s.n_atoms
    if cur:
        batches.append(cur)
    return batches


def rank_batches(index: dict[str, list[Sample]], rank: int, world: int, epoch: int, seed: int,
                 max_atoms: int, window: int, shuffle: bool) -> list[list[Sample]]:
    shards = sorted(index)
    rng = np.random.default_rng([seed, epoch, 7919])
    order = rng.permutation(len(shards)) if shuffle else np.arange(len(shards))
    shards = [shards[i] for i in order]
    if len(shards) >= world:  # disjoint shards per rank: no rank reads another's data
        mine = shards[rank::world]
        windows = [[s for sh in mine[i:i + window] for s in index[sh]] for i in range(0, len(mine), window)]
    else:  # fewer shards than ranks: split samples instead
        allw = [[s for sh in shards[i:i + window] for s in index[sh]] for i in range(0, len(shards), window)]
        windows = [w[rank::world] for w in allw]
    batches = []
    for wi, w in enumerate(windows):
        if shuffle:
            r = np.random.default_rng([seed, epoch, rank, wi])
            w = [w[i] for i in r.permutation(len(w))]
        batches += pack(w, max_atoms)
    return batches


def epoch_plan(index: dict[str, list[Sample]], rank: int, world: int, epoch: int, seed: int,
               max_atoms: int, window: int = 4, shuffle: bool = True) -> list[list[Sample]]:
    """This rank's batches for the epoch, truncated to the smallest rank's count."""
    counts = [len(rank_batches(index, r, world, epoch, seed, max_atoms, window, shuffle)) for r in range(world)]
    n = min(counts)
    if n == 0:
        raise ValueError(f"rank has no batch this epoch (per-rank batch counts {counts}): too little data for {world} ranks")
    return rank_batches(index, rank, world, epoch, seed, max_atoms, window, shuffle)[:n]
