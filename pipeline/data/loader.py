"""Stream planned batches out of webdataset shards into fairchem AtomicData batches.

Worker w of k yields planned batches w, w+k, ...; torch's DataLoader interleaves workers round-robin, so
the sequence is exactly the plan's order whatever k is, and resuming at batch b means skipping b batches.
Each worker reads a shard once per visit, in the order its batches need them, and holds only the samples
still waiting for their batch (bounded by the plan's window).

Checks on read: every npz member's CRC-32 (sample_codec.read_npz), and on a shard's first read in an epoch its
sha256 against the card's `shard_sha256`, hashed as it streams in, and on that same read each wanted sample's
sha256 against the manifest's `digest`. A shard that fails its sha256 (or has none recorded) still delivers every
sample whose digest matches; only the others are skipped. In a dataset built before per-sample digests a shard
that fails its sha256 is not trusted at all (its json members carry no checksum of their own).
"""
from __future__ import annotations

import logging
import multiprocessing as mp
from dataclasses import dataclass
from pathlib import Path

from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from atomforge.data_prep.errors import AtomforgeError
from atomforge.data_prep.integrity import ShardHashMismatch, ShardReader, expected_hash, reason, sample_digest
from atomforge.data_prep.sample_codec import decode
from atomforge.pipeline.data.convert import structures_to_batch
from atomforge.pipeline.data.dataset import BuiltDataset
from atomforge.pipeline.data.plan import epoch_plan, mixed_plan

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
    on_error: str = "raise"  # "raise": error naming shard and key; "skip": drop the sample, count it, log it
    task: str = "omat"
    # several built datasets: [{"root": ..., "weight": ..., "task": ..., "flag": ...}, ...]; weight defaults to the
    # dataset's size; task (the sample's dataset name, which picks its energy head under model.tasks) to `task`
    # above; "flag" keeps only samples with that manifest flag (the same root twice, once flagged, up-weights them)
    mix: list | None = None
    temperature: float = 1.0  # share_i ~ weight_i^(1/temperature)
    epoch_size: int | None = None  # samples per epoch over the mix (default: sum of the datasets' sizes)


class CorruptInput(AtomforgeError, RuntimeError):
    """A damaged shard or sample under on_error=raise; the message names the shard and the key."""


class ShardBatches(IterableDataset):
    def __init__(self, cfg: LoaderConfig, rank: int = 0, world: int = 1, epoch: int = 0, start: int = 0):
        if cfg.on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', got {cfg.on_error!r}")
        self.cfg, self.rank, self.world, self.epoch, self.start = cfg, rank, world, epoch, start
        if cfg.mix:
            roots = [m["root"] for m in cfg.mix]
            weights = [m.get("weight") for m in cfg.mix]
            if any(w is None for w in weights) and any(w is not None for w in weights):
                raise ValueError("give a weight for every dataset in the mix or for none")
            weights = None if weights[0] is None else [float(w) for w in weights]
        else:
            roots = [cfg.root]
        self.datasets = [BuiltDataset.open(r, split=cfg.split) for r in roots]
        flags = [m.get("flag") for m in cfg.mix] if cfg.mix else [None]
        indices = [ds.index(cfg.split, d, f) for d, (ds, f) in enumerate(zip(self.datasets, flags))]
        if cfg.mix:
            self.plan = mixed_plan(indices, weights, cfg.temperature, rank, world, epoch, cfg.seed, cfg.max_atoms,
                                   cfg.window, cfg.shuffle, cfg.epoch_size)
        else:
            self.plan = epoch_plan(indices[0], rank, world, epoch, cfg.seed, cfg.max_atoms, cfg.window, cfg.shuffle)
        self.hashes = [ds.shard_hashes() for ds in self.datasets]
        self._verified: set = set()  # shard files whose sha256 matched in this epoch: later visits skip the hash
        self._bad: dict = {}  # shards that failed -> whether later visits may read them again (checking digests)
        self._moved: dict = {}  # shards found holding another shard's bytes -> the shard file holding theirs
        self._skipped = mp.Value("q", 0)  # shared with DataLoader worker processes, so the trainer sees their count

    @property
    def skipped(self) -> int:
        """Planned samples of the batches made so far that were dropped as corrupt (on_error=skip), all workers
        together: counted as their batch is made, so a resume at batch b counts exactly what an unbroken run would."""
        return self._skipped.value

    def __len__(self) -> int:
        return len(self.plan) - self.start

    def __iter__(self):
        info = get_worker_info()
        wid, nw = (info.id, info.num_workers) if info else (0, 1)
        mine = [b for b in range(self.start, len(self.plan)) if (b - self.start) % nw == wid]
        if not mine:
            return
        need: dict[tuple, dict] = {}  # (dataset, shard, visit) -> {key: digest} this worker needs from that read
        for b in mine:
            for s in self.plan[b]:
                need.setdefault((s.dataset, s.shard, s.visit), {})[s.key] = s.digest
        reads = list(dict.fromkeys((s.dataset, s.shard, s.visit) for b in mine for s in self.plan[b]))
        pos = {r: i for i, r in enumerate(reads)}
        ready_after = [max(pos[(s.dataset, s.shard, s.visit)] for s in self.plan[b]) for b in mine]
        cache: dict[tuple, dict] = {}
        next_i = 0
        for i, (d, shard, visit) in enumerate(reads):
            wanted = need[(d, shard, visit)]
            got = self._read_shard(self.datasets[d].shard(shard), wanted, cache, d, visit)
            missing = set(wanted) - got
            if missing:
                self._fail(f"shard {self.datasets[d].name}/shards/{shard} lacks {len(missing)} planned sample(s), "
                           f"e.g. key {sorted(missing)[0]}", len(missing))
            while next_i < len(mine) and ready_after[next_i] <= i:  # emit in plan order
                batch = self._make_batch(self.plan[mine[next_i]], cache)
                next_i += 1
                if batch is not None:
                    yield batch

    def _read_shard(self, path: Path, wanted: dict, cache: dict, d: int, visit: int, name: str | None = None) -> set:
        """Decode the wanted samples ({key: recorded digest}) of one shard read into `cache`; returns the keys
        handled (got or counted). `name`: the shard whose bytes are expected there (path's own, unless swapped)."""
        name = name or path.name
        shard_id = (str(path), name)  # one check per file, also where a mix lists a dataset twice
        if shard_id in self._moved:
            return self._read_shard(path.parent / self._moved[shard_id], wanted, cache, d, visit, name)
        digests = all(wanted.values())  # each sample can be trusted on its own, whatever the shard's sha256 says
        if shard_id in self._bad and not (digests and self._bad[shard_id]):
            self._fail(f"shard {path} failed its checks earlier this epoch; {len(wanted)} planned sample(s) skipped, "
                       f"first key {min(wanted)}", len(wanted))
            return set(wanted)
        check = digests and shard_id not in self._verified  # ~2% of a read: cheaper than a second pass on failure
        got, bad, last, expected, reader = [], [], None, None, None
        try:
            if shard_id not in self._verified and shard_id not in self._bad:
                expected = expected_hash(self.hashes[d], path.parent / name)
            reader = ShardReader(path, expected)
            mismatched: dict[str, str] = {}  # key -> error, until a later sample of that key matches its digest
            delivered: set[str] = set()
            for sample in reader:
                last = sample["__key__"]
                # a later sample under a delivered key is not the recorded one
                if last in wanted and last not in delivered:
                    sample["__url__"] = str(path)
                    try:  # decoded first: a CRC failure names the member
                        cache[(d, visit, last)] = decode(sample)
                        if check and sample_digest(sample) != wanted[last]:
                            # a shard can hold a sample the build quarantined after writing it (an outlier found
                            # once references were fitted) under the same key as a kept one: the digest decides
                            del cache[(d, visit, last)]
                            mismatched[last] = (f"sample {last} in {path} does not match its recorded sha256 digest: "
                                                f"its bytes changed since the build")
                            continue
                        got.append(last)
                        delivered.add(last)
                        mismatched.pop(last, None)
                    except ValueError as e:  # names key, shard and the failing member
                        if self.cfg.on_error == "raise":
                            self._fail(str(e), 1)
                        bad.append((last, str(e)))
            for key, msg in mismatched.items():
                if self.cfg.on_error == "raise":
                    self._fail(msg, 1)
                bad.append((key, msg))
            reader.verify()
        except CorruptInput:
            raise
        except Exception as e:
            sha = isinstance(e, ShardHashMismatch)
            if reader is not None and (check or (expected is None and not sha)):  # got: trusted by digest or CRC
                for _, msg in bad:
                    self._fail(msg, 1)
                lost = sorted(set(wanted) - set(got) - {k for k, _ in bad})
                if sha:
                    self._bad[shard_id] = True  # later visits read it again, checking digests, without hashing
                    other = self._holder(d, reader, name) if not got and not bad and name == path.name else None
                    self._fail(f"{reason(e)}; {len(got)} of its {len(wanted)} planned sample(s) match their digests"
                               + (f"; it holds the bytes of shard {other}" if other else ""), 0 if other else len(lost))
                    if other:  # swapped or copied over: read this shard's samples where its bytes are
                        self._moved[shard_id] = other
                        return self._read_shard(path.parent / other, wanted, cache, d, visit, name)
                else:
                    self._fail(f"shard {path} is unreadable after key {last}: {reason(e)}; {len(lost)} planned "
                               f"sample(s) lost, first key {lost[0] if lost else None}", len(lost))
                return set(wanted)
            for k in got:  # unverified bytes and no digests (built before them): nothing from this shard is delivered
                cache.pop((d, visit, k), None)
            self._bad[shard_id] = False
            what = reason(e) if sha else f"shard {path} is unreadable after key {last}: {reason(e)}"
            also = f"; first damaged sample: {bad[0][1]}" if bad else ""
            self._fail(f"{what}{also}; all {len(wanted)} planned sample(s) of this shard skipped, "
                       f"first key {min(wanted)}", len(wanted))
            return set(wanted)
        if expected:
            self._verified.add(shard_id)
        for _, msg in bad:  # the shard matched (or has no recorded hash): only these samples are damaged
            self._fail(msg, 1)
        return set(got) | {k for k, _ in bad}

    def _holder(self, d: int, reader, name: str) -> str | None:
        """The other shard whose recorded sha256 this file's bytes have, if any."""
        got = reader.digest if reader is not None else None
        return next((n for n, h in (self.hashes[d] or {}).items() if h == got and n != name), None)

    def _make_batch(self, samples, cache):
        structures, tasks = [], []
        for s in samples:
            structure = cache.pop((s.dataset, s.visit, s.key), None)
            if structure is None:  # reported (named) when its shard was read
                with self._skipped.get_lock():
                    self._skipped.value += 1
                continue
            structures.append(structure)
            tasks.append(self.cfg.mix[s.dataset].get("task", self.cfg.task) if self.cfg.mix else self.cfg.task)
        if not structures:
            return None
        return structures_to_batch(structures, tasks)

    def _fail(self, msg: str, n: int):
        if self.cfg.on_error == "raise":
            raise CorruptInput(f"corrupt input: {msg} (set on_error=skip to drop and count such samples)")
        if n:
            log.warning("skipping %d corrupt sample(s): %s", n, msg)
        else:
            log.warning("corrupt input, no sample lost: %s", msg)


def make_loader(cfg: LoaderConfig, rank: int = 0, world: int = 1, epoch: int = 0, start: int = 0) -> DataLoader:
    ds = ShardBatches(cfg, rank, world, epoch, start)
    return DataLoader(ds, batch_size=None, num_workers=cfg.num_workers, persistent_workers=False,
                      collate_fn=lambda x: x, prefetch_factor=4 if cfg.num_workers else None)
