"""Stream planned batches out of webdataset shards into fairchem AtomicData batches.

Worker w of k yields planned batches w, w+k, ...; torch's DataLoader interleaves workers round-robin, so
the sequence is exactly the plan's order whatever k is, and resuming at batch b means skipping b batches.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch
import webdataset as wds
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from data_prep.sample_codec import decode
from pipeline.data.convert import structures_to_batch
from pipeline.data.plan import epoch_plan, load_index

log = logging.getLogger(__name__)


@dataclass
class LoaderConfig:
    root: str
    split: str = "train"
    max_atoms: int = 256
    seed: int = 0
    window: int = 4  # shards held in memory at once per worker
    shuffle: bool = True
    num_workers: int = 0
    on_error: str = "raise"  # "raise": error naming shard and key; "skip": drop the sample, count it
    task: str = "omat"


class ShardBatches(IterableDataset):
    def __init__(self, cfg: LoaderConfig, rank: int = 0, world: int = 1, epoch: int = 0, start: int = 0):
        if cfg.on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', got {cfg.on_error!r}")
        root = Path(cfg.root)
        manifest = root / "manifest.parquet"
        if not manifest.is_file():
            raise FileNotFoundError(f"no manifest.parquet in {root}: not a built dataset (run `atomforge data build`)")
        shards = list((root / "shards").glob(f"{cfg.split}-*.tar"))
        if not shards:
            raise FileNotFoundError(f"no {cfg.split} shards in {root / 'shards'}")
        self.cfg, self.rank, self.world, self.epoch, self.start = cfg, rank, world, epoch, start
        self.index = load_index(str(manifest), cfg.split)
        self.plan = epoch_plan(self.index, rank, world, epoch, cfg.seed, cfg.max_atoms, cfg.window, cfg.shuffle)
        self.skipped = 0

    def __len__(self) -> int:
        return len(self.plan) - self.start

    def __iter__(self):
        info = get_worker_info()
        wid, nw = (info.id, info.num_workers) if info else (0, 1)
        mine = [b for b in range(self.start, len(self.plan)) if (b - self.start) % nw == wid]
        if not mine:
            return
        need: dict[str, set] = {}
        for b in mine:
            for s in self.plan[b]:
                need.setdefault(s.shard, set()).add(s.key)
        shard_order = list(dict.fromkeys(s.shard for b in mine for s in self.plan[b]))
        pos = {sh: i for i, sh in enumerate(shard_order)}
        ready_after = [max(pos[s.shard] for s in self.plan[b]) for b in mine]  # last shard each batch needs
        cache: dict[str, dict] = {}
        next_i = 0
        root = Path(self.cfg.root) / "shards"
        for i, shard in enumerate(shard_order):
            for sample in self._read_shard(root / shard):
                if sample["__key__"] in need[shard]:
                    cache[sample["__key__"]] = sample
            missing = need[shard] - cache.keys()
            if missing:
                self._fail(f"shard {shard} lacks {len(missing)} planned sample(s), e.g. {sorted(missing)[0]}", len(missing))
                need[shard] -= missing
            while next_i < len(mine) and ready_after[next_i] <= i:  # emit in plan order
                batch = self._make_batch(self.plan[mine[next_i]], cache)
                next_i += 1
                if batch is not None:
                    yield batch

    def _read_shard(self, path: Path):
        try:
            for sample in wds.WebDataset(str(path), shardshuffle=False, nodesplitter=None, workersplitter=None, empty_check=False):
                yield sample
        except Exception as e:  # truncated tar, bad header
            self._fail(f"shard {path.name} is unreadable: {e}", 1)

    def _make_batch(self, samples, cache):
        structures = []
        for s in samples:
            raw = cache.pop(s.key, None)
            if raw is None:
                continue  # already reported as missing
            try:
                structures.append(decode(raw))
            except ValueError as e:
                self._fail(str(e), 1)
        if not structures:
            return None
        return structures_to_batch(structures, self.cfg.task)

    def _fail(self, msg: str, n: int):
        if self.cfg.on_error == "raise":
            raise RuntimeError(f"corrupt input: {msg}")
        self.skipped += n
        log.warning("skipping corrupt input (%d so far): %s", self.skipped, msg)


def make_loader(cfg: LoaderConfig, rank: int = 0, world: int = 1, epoch: int = 0, start: int = 0) -> DataLoader:
    ds = ShardBatches(cfg, rank, world, epoch, start)
    return DataLoader(ds, batch_size=None, num_workers=cfg.num_workers, persistent_workers=False,
                      collate_fn=lambda x: x, prefetch_factor=4 if cfg.num_workers else None)
