"""Ways a built shard goes bad after the build, applied to a copy of a dataset: a flipped value inside a sample's
npz (its CRC no longer matches), the same change written consistently (CRC recomputed), an edited json member,
a truncated file, two shards swapped; and the manifest and card of datasets built before per-sample digests or
shard hashes."""
from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile
from pathlib import Path

import numpy as np

from atomforge.data_prep.sample_codec import npz_bytes, read_npz

BAD_FORCE = 1234.5


def copy_dataset(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def train_shards(root: Path) -> list[Path]:
    return sorted((root / "shards").glob("train-*.tar"))


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _members(shard: Path) -> list[tuple[tarfile.TarInfo, bytes]]:
    with tarfile.open(shard) as t:
        return [(m, t.extractfile(m).read()) for m in t.getmembers()]


def _first_key(shard: Path) -> str:
    return _members(shard)[0][0].name.split(".")[0]


def flip_force(shard: Path, key: str | None = None) -> str:
    """Overwrite the first force component of one sample with BAD_FORCE, in place: the tar stays valid, the npz
    member's stored CRC-32 no longer matches its bytes. Returns the sample's key."""
    key = key or _first_key(shard)
    with tarfile.open(shard) as t:
        m = t.getmember(f"{key}.npz")
        start, npz = m.offset_data, t.extractfile(m).read()
    forces = read_npz(npz)["forces"]
    at = npz.find(forces.tobytes())
    assert at > 0 and abs(forces.flat[0]) < 100, "forces not found where expected"
    with open(shard, "r+b") as f:
        f.seek(start + at)
        f.write(np.asarray(BAD_FORCE, forces.dtype).tobytes())
    return key


def _rewrite(shard: Path, key: str, suffix: str, change) -> None:
    members = _members(shard)
    with tarfile.open(shard, "w") as t:
        for m, data in members:
            if m.name == f"{key}.{suffix}":
                data = change(data)
                m.size = len(data)
            t.addfile(m, io.BytesIO(data))


def rewrite_force_consistently(shard: Path, key: str | None = None) -> str:
    """The same bad force, with the npz written anew (its CRC matches): only the shard's sha256 can tell."""
    key = key or _first_key(shard)

    def change(data: bytes) -> bytes:
        arrays = read_npz(data)
        arrays["forces"].flat[0] = BAD_FORCE
        return npz_bytes(arrays)

    _rewrite(shard, key, "npz", change)
    return key


def edit_energy(shard: Path, key: str | None = None) -> str:
    """The json member's energy shifted by 1 eV (json members carry no checksum of their own)."""
    key = key or _first_key(shard)

    def change(data: bytes) -> bytes:
        meta = json.loads(data)
        meta["energy"] += 1.0
        return json.dumps(meta, sort_keys=True).encode()

    _rewrite(shard, key, "json", change)
    return key


def truncate(shard: Path) -> set:
    """Cut the file inside a 512-byte block (a cut on a block edge reads as a short tar); returns the keys of the
    samples the cut damaged or removed (any member ending past it)."""
    data = shard.read_bytes()
    cut = len(data) // 2 - 7
    shard.write_bytes(data[:cut])
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        return {m.name.split(".")[0] for m in t.getmembers() if m.offset_data + m.size > cut}


def swap(a: Path, b: Path) -> None:
    da, db = a.read_bytes(), b.read_bytes()
    a.write_bytes(db)
    b.write_bytes(da)


def drop_shard_hashes(root: Path) -> None:
    """The card of a dataset built before shards were hashed."""
    card = json.loads((root / "card.json").read_text())
    del card["shard_sha256"]
    (root / "card.json").write_text(json.dumps(card))


def drop_digests(root: Path) -> None:
    """The manifest of a dataset built before per-sample digests."""
    import pyarrow.parquet as pq

    t = pq.read_table(root / "manifest.parquet")
    pq.write_table(t.drop_columns(["digest"]), root / "manifest.parquet")
