"""A built dataset as `atomforge data build` leaves it (card.json, manifest.parquet, quarantine.parquet, shards/):
the one place that knows that layout. The loader, the mixer, training, evaluation and the recipes open datasets
through `BuiltDataset`; `read` is the one split reader, every byte checked against the build's records."""
from __future__ import annotations

import functools
import json
from pathlib import Path

import pyarrow.parquet as pq

from atomforge.data_prep.errors import UsageError
from atomforge.data_prep.integrity import (CorruptShard, ShardHashMismatch, ShardReader, expected_hash, reason,
                                           recorded_hashes, sample_digest)
from atomforge.data_prep.sample_codec import decode
from atomforge.pipeline.data.plan import Sample, load_index


class NotBuilt(UsageError, FileNotFoundError):
    """A folder that is not a finished build (or lacks the split asked for)."""


class BuiltDataset:
    CARD, MANIFEST, QUARANTINE, SHARDS = "card.json", "manifest.parquet", "quarantine.parquet", "shards"

    def __init__(self, root):
        self.root = Path(root)

    @classmethod
    def open(cls, root, name: str | None = None, split: str | None = None) -> BuiltDataset:
        """The dataset at `root`, checked to be a finished build (with shards of `split` when given); `name`, the
        data config that builds it, goes into the one-line error."""
        ds, how = cls(root), f"atomforge data build data={name}" if name else "atomforge data build"
        if not ds.root.is_dir():
            raise NotBuilt(f"no built dataset at {ds.root}: run `{how}` first")
        if not ds.manifest_path.is_file() or not ds.shard_files():
            raise NotBuilt(f"{ds.root} has no shards or manifest: it is not a finished build (rerun `{how}`)")
        if split and not ds.shard_files(split):
            raise NotBuilt(f"no {split} shards in {ds.shard_dir}")
        return ds

    @property
    def name(self) -> str:
        return self.root.name

    @property
    def card_path(self) -> Path:
        return self.root / self.CARD

    @property
    def manifest_path(self) -> Path:
        return self.root / self.MANIFEST

    @property
    def shard_dir(self) -> Path:
        return self.root / self.SHARDS

    def is_built(self) -> bool:
        return self.manifest_path.is_file() and self.card_path.is_file()

    def shard(self, name: str) -> Path:
        return self.shard_dir / name

    def shard_files(self, split: str | None = None) -> list[Path]:
        return sorted(self.shard_dir.glob(f"{split}-*.tar" if split else "*.tar"))

    @functools.cached_property
    def card(self) -> dict:
        if not self.card_path.is_file():
            raise NotBuilt(f"no {self.CARD} in {self.root}: build the dataset first (atomforge data build)")
        return json.loads(self.card_path.read_text())

    def count(self, split: str) -> int:
        """Structures in a split, as the card records them."""
        return int(self.card.get("counts", {}).get(split, 0))

    @property
    def element_references(self) -> dict:
        return self.card["element_references"]

    def manifest(self, columns: list[str] | None = None):
        """The manifest as a pyarrow Table (only `columns`, when given)."""
        return pq.read_table(self.manifest_path, columns=columns)

    def index(self, split: str, dataset: int = 0, flag: str | None = None) -> dict[str, list[Sample]]:
        """The split's samples grouped by shard, in on-disk order (the plan's input)."""
        return load_index(str(self.manifest_path), split, dataset, flag)

    def shard_hashes(self) -> dict[str, str] | None:
        return recorded_hashes(self.root)

    def read(self, split: str):
        """Yield the split's Structures shard by shard (evaluation reads everything once, unshuffled).

        A shard's structures are yielded only once the whole shard has passed its checks (npz CRCs, its sha256
        against the card, each sample's sha256 against the manifest's digest): an evaluation never scores part of a
        damaged shard. A shard failing its sha256 whose samples all match their digests is read (the damage is
        outside them); in a dataset built before digests it is refused. Any damage is a one-line CorruptShard (a
        ValueError) naming the shard, and the sample where one is to blame."""
        hashes = self.shard_hashes()
        for shard, samples in self.index(split).items():
            yield from _checked_shard(self.shard(shard), {s.key: s.digest for s in samples}, hashes)


def _checked_shard(path: Path, want: dict[str, str], hashes: dict | None):
    got, last, digests = {}, None, all(want.values())
    try:
        reader = ShardReader(path, expected_hash(hashes, path))
        mismatched = set()  # a shard can hold a sample quarantined after it was written under a kept key
        for raw in reader:
            last = raw["__key__"]
            if last in want and last not in got:
                raw["__url__"] = str(path)
                try:  # decoded first: a CRC failure names the member
                    sample = decode(raw)
                except ValueError as e:  # names key, shard and the failing member
                    raise CorruptShard(str(e)) from None
                if digests and sample_digest(raw) != want[last]:
                    mismatched.add(last)  # unless a later sample of this key is the recorded one
                    continue
                got[last] = sample
        bad = sorted(mismatched - set(got))
        if bad:
            raise CorruptShard(f"sample {bad[0]} in {path} does not match its recorded sha256 digest: its "
                               f"bytes changed since the build")
        try:
            reader.verify()
        except ShardHashMismatch:
            if not digests or len(got) < len(want):
                raise
    except CorruptShard:
        raise
    except Exception as e:  # truncated tar, bad header
        raise CorruptShard(f"shard {path} is unreadable after key {last}: {reason(e)}") from None
    if len(got) < len(want):
        raise CorruptShard(f"shard {path} lacks {len(want) - len(got)} sample(s) of the manifest, e.g. key "
                           f"{sorted(set(want) - set(got))[0]}")
    return got.values()


def read_split(root, split: str):
    """`BuiltDataset(root).read(split)`: a split's Structures, every byte checked."""
    return BuiltDataset(root).read(split)
