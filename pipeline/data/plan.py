"""The epoch plan: which samples form which batch on which rank, computed from the manifests alone.

Every rank computes every rank's plan (cheap arithmetic on the manifest), so all ranks agree on the number
of batches per epoch without communicating: nobody hangs at the epoch end. Shards are shuffled per epoch,
read in windows of a few shards, and samples shuffled inside a window (bounded memory).

Several datasets mix as UMA mixes OMat/OMol/OC20: dataset i gets a share p_i ~ w_i^(1/T) of the epoch's
samples (w_i its weight, by default its size; T=1 proportional to size, large T towards uniform). A dataset
drawn more often than its size is read in several passes (`visit`), each freshly shuffled; one drawn less
is cut short. The plan depends only on (manifests, seed, epoch), so a position in it is a complete resume state.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq


@dataclass(frozen=True)
class Sample:
    shard: str  # shard file name inside its dataset's shards/
    key: str
    n_atoms: int
    dataset: int = 0  # position of the dataset in the mix
    visit: int = 0  # pass over that dataset within the epoch
    digest: str = ""  # sha256 of its stored bytes; "" in a dataset built before per-sample digests


def load_index(manifest_path: str, split: str, dataset: int = 0, flag: str | None = None) -> dict[str, list[Sample]]:
    """Samples of one split (only those carrying manifest flag `flag` if given), grouped by shard in on-disk order."""
    has_digest = "digest" in pq.read_schema(manifest_path).names
    columns = ["key", "shard", "index", "n_atoms", "split", "flags"] + (["digest"] if has_digest else [])
    t = pq.read_table(manifest_path, columns=columns)
    t = t.filter(pc.equal(t.column("split"), split))
    if flag is not None:
        t = t.filter(pa.array([flag in (f or ()) for f in t.column("flags").to_pylist()], type=pa.bool_()))
    if t.num_rows == 0:
        raise ValueError(f"split {split!r} of {manifest_path} has no samples{f' flagged {flag!r}' if flag else ''}")
    t = t.sort_by([("shard", "ascending"), ("index", "ascending")])
    out: dict[str, list[Sample]] = {}
    digests = t.column("digest").to_pylist() if has_digest else [""] * t.num_rows
    for key, shard, n, dg in zip(t.column("key").to_pylist(), t.column("shard").to_pylist(),
                                 t.column("n_atoms").to_pylist(), digests):
        out.setdefault(shard, []).append(Sample(shard, key, int(n), dataset, digest=dg or ""))
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


def rank_windows(index: dict[str, list[Sample]], rank: int, world: int, rng_key: list[int], window: int,
                 shuffle: bool) -> list[list[Sample]]:
    """This rank's share of one pass over a dataset, as windows of a few shards, shuffled inside each window."""
    shards = sorted(index)
    rng = np.random.default_rng(rng_key + [7919])
    order = rng.permutation(len(shards)) if shuffle else np.arange(len(shards))
    shards = [shards[i] for i in order]
    if len(shards) >= world:  # disjoint shards per rank: no rank reads another's data
        mine = shards[rank::world]
        windows = [[s for sh in mine[i:i + window] for s in index[sh]] for i in range(0, len(mine), window)]
    else:  # fewer shards than ranks: split samples instead
        allw = [[s for sh in shards[i:i + window] for s in index[sh]] for i in range(0, len(shards), window)]
        windows = [w[rank::world] for w in allw]
    if shuffle:
        windows = [[w[i] for i in np.random.default_rng(rng_key + [rank, wi]).permutation(len(w))]
                   for wi, w in enumerate(windows)]
    return windows


def rank_batches(index: dict[str, list[Sample]], rank: int, world: int, epoch: int, seed: int,
                 max_atoms: int, window: int, shuffle: bool) -> list[list[Sample]]:
    batches = []
    for w in rank_windows(index, rank, world, [seed, epoch], window, shuffle):
        batches += pack(w, max_atoms)
    return batches


def epoch_plan(index: dict[str, list[Sample]], rank: int, world: int, epoch: int, seed: int,
               max_atoms: int, window: int = 4, shuffle: bool = True) -> list[list[Sample]]:
    """This rank's batches for the epoch, truncated to the smallest rank's count."""
    counts = [len(rank_batches(index, r, world, epoch, seed, max_atoms, window, shuffle)) for r in range(world)]
    n = min(counts)
    if n == 0:
        raise ValueError(f"rank has no batch this epoch (per-rank batch counts {counts}): too little data for "
                         f"{world} ranks")
    return rank_batches(index, rank, world, epoch, seed, max_atoms, window, shuffle)[:n]


def mix_shares(sizes: list[int], weights: list[float] | None, temperature: float) -> np.ndarray:
    """p_i ~ w_i^(1/T), w_i = weight or dataset size."""
    if temperature <= 0:
        raise ValueError(f"mixing temperature must be > 0, got {temperature}")
    w = np.asarray(sizes if weights is None else weights, dtype=np.float64)
    if (w < 0).any() or w.sum() <= 0:
        raise ValueError(f"mixing weights must be >= 0 with a positive sum, got {w.tolist()}")
    p = w ** (1.0 / temperature)
    return p / p.sum()


def _mixed_rank_batches(indices, shares, total, rank, world, epoch, seed, max_atoms, window, shuffle):
    streams = []  # per dataset: this rank's windows, pass after pass, cut at its quota
    for d, (index, p) in enumerate(zip(indices, shares)):
        size = sum(len(v) for v in index.values())
        want_frac = p * total / size  # passes over this dataset this epoch (may be < 1)
        wins, taken, visit = [], 0, 0
        # this rank's share of the first pass, dealt exactly as that pass deals it (a shuffled deal differs per rank)
        mine = sum(len(w) for w in rank_windows(index, rank, world, [seed, epoch, d, 0], window, shuffle))
        quota = int(round(want_frac * mine))
        while taken < quota:
            for w in rank_windows(index, rank, world, [seed, epoch, d, visit], window, shuffle):
                w = [replace(s, dataset=d, visit=visit) for s in w[: quota - taken]]
                if w:
                    wins.append(w)
                    taken += len(w)
            visit += 1
        streams.append(wins)
    # interleave windows at random, in proportion to what each dataset still has to give
    rng = np.random.default_rng([seed, epoch, rank, 104729])
    left = np.array([sum(len(w) for w in s) for s in streams], dtype=np.float64)
    pos = [0] * len(streams)
    batches = []
    while left.sum() > 0:
        d = int(rng.choice(len(streams), p=left / left.sum()))
        w = streams[d][pos[d]]
        pos[d] += 1
        left[d] -= len(w)
        batches += pack(w, max_atoms)
    return batches


def mixed_plan(indices: list[dict[str, list[Sample]]], weights: list[float] | None, temperature: float,
               rank: int, world: int, epoch: int, seed: int, max_atoms: int, window: int = 4,
               shuffle: bool = True, epoch_size: int | None = None) -> list[list[Sample]]:
    """This rank's batches for an epoch drawn from several datasets, equal in number on every rank."""
    sizes = [sum(len(v) for v in ix.values()) for ix in indices]
    shares = mix_shares(sizes, weights, temperature)
    total = epoch_size or sum(sizes)
    args = (indices, shares, total)
    counts = [len(_mixed_rank_batches(*args, r, world, epoch, seed, max_atoms, window, shuffle)) for r in range(world)]
    n = min(counts)
    if n == 0:
        raise ValueError(f"rank has no batch this epoch (per-rank batch counts {counts}): too little data for "
                         f"{world} ranks")
    return _mixed_rank_batches(*args, rank, world, epoch, seed, max_atoms, window, shuffle)[:n]
