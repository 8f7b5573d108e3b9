"""Read one split of a built dataset back as Structures, every byte checked against the build's records."""
from __future__ import annotations

from pathlib import Path

from atomforge.data_prep.integrity import (CorruptShard, ShardHashMismatch, ShardReader, expected_hash, reason,
                                           recorded_hashes,
                                 sample_digest)
from atomforge.data_prep.sample_codec import decode
from atomforge.pipeline.data.plan import load_index


def read_split(root: str, split: str):
    """Yield the split's Structures shard by shard (evaluation reads everything once, unshuffled).

    A shard's structures are yielded only once the whole shard has passed its checks (npz CRCs, its sha256
    against the card, each sample's sha256 against the manifest's digest): an evaluation never scores part of a
    damaged shard. A shard failing its sha256 whose samples all match their digests is read (the damage is
    outside them); in a dataset built before digests it is refused. Any damage is a one-line CorruptShard (a
    ValueError) naming the shard, and the sample where one is to blame."""
    root = Path(root)
    index = load_index(str(root / "manifest.parquet"), split)
    hashes = recorded_hashes(root)
    for shard, samples in index.items():
        path = root / "shards" / shard
        want, got, last = {s.key: s.digest for s in samples}, {}, None
        digests = all(want.values())
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
        yield from got.values()
