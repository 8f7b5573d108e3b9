"""Shard checksums: recorded in card.json at build time (`shard_sha256`), checked while a shard is streamed.

The sha256 is computed over the bytes the tar reader pulls anyway, so a checked read costs one hash pass and no
second read of the file. Samples of a shard are only trusted once its whole file has been hashed: readers hold
them until `ShardReader` has finished (the loader already does, batches wait for their shards).

Each sample also has its own sha256 (`digest` in the manifest, over its npz bytes then its json bytes): where a
shard fails its sha256, or the card records none, the samples whose digests match are still trusted.
"""
from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

from webdataset.tariterators import group_by_keys, tar_file_expander
from atomforge.data_prep.errors import AtomforgeError

log = logging.getLogger(__name__)
_warned: set[str] = set()  # roots already warned about (once per process, not once per epoch)


class CorruptShard(AtomforgeError, ValueError):
    """A shard, or a sample in it, that fails a check; the message names the shard (and the key where one is known)."""


class ShardHashMismatch(CorruptShard):
    pass


def reason(e: Exception) -> str:
    """An exception's own message: webdataset appends its stream and url to `args`, which would print a tuple."""
    return str(e.args[0]) if e.args else type(e).__name__


def file_sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def shard_hashes(files) -> dict[str, str]:
    """{shard file name: sha256}, for the card."""
    return {Path(f).name: file_sha256(f) for f in files}


def recorded_hashes(root) -> dict[str, str] | None:
    """The card's `shard_sha256`, or None (with one warning) for a dataset built before shards were hashed."""
    root = Path(root)
    card = root / "card.json"
    hashes = json.loads(card.read_text()).get("shard_sha256") if card.is_file() else None
    if hashes is None and str(root) not in _warned:
        _warned.add(str(root))
        log.warning("%s: card.json records no shard_sha256 (built before shards were hashed): its shards are read "
                    "without a whole-shard check (per-member CRCs, and per-sample digests where its manifest has "
                    "them); rebuild the dataset to verify whole shards", root)
    return hashes


MEMBERS = ("npz", "json")  # a sample's stored members (atomforge.data_prep.sample_codec.encode), in digest order


def sample_digest(sample: dict) -> str:
    """sha256 of a sample's stored bytes (npz, then json), as `sample_codec.encode` made them; a missing member
    hashes as empty, so it never matches."""
    h = hashlib.sha256()
    for m in MEMBERS:
        h.update(sample.get(m, b""))
    return h.hexdigest()


def shard_digests(path) -> dict[str, str]:
    """{key: digest} of every sample in a shard (for manifests written before per-sample digests)."""
    return {s["__key__"]: sample_digest(s) for s in ShardReader(path)}


class _Hashing:
    """A read-only file wrapper that hashes every byte read through it (when `on`)."""

    def __init__(self, fh, path: Path, on: bool):
        self.fh, self.path, self.h = fh, path, hashlib.sha256() if on else None

    def read(self, n: int = -1) -> bytes:
        b = self.fh.read(n)
        if self.h is not None:
            self.h.update(b)
        return b

    def __repr__(self) -> str:  # webdataset appends the stream to its error messages
        return str(self.path)

    def rest(self) -> str:
        """Hash what the tar reader left unread (end-of-archive padding, or anything appended) and return the digest."""
        for block in iter(lambda: self.fh.read(1 << 20), b""):
            self.h.update(block)
        return self.h.hexdigest()


class ShardReader:
    """Iterate a shard's raw webdataset samples; with `expected` (a sha256 hex), `verify()` after the last sample
    raises ShardHashMismatch if the file's bytes are not the recorded ones."""

    def __init__(self, path, expected: str | None = None):
        self.path, self.expected = Path(path), expected
        self._fh = None

    def __iter__(self):
        self._error = None
        with open(self.path, "rb") as raw:
            self._fh = _Hashing(raw, self.path, bool(self.expected))
            for sample in group_by_keys(self._members()):
                if self._error is not None and not all(m in sample for m in MEMBERS):
                    break  # cut inside it: the read error's to report, not a damaged sample's
                yield sample
            if self._error is not None:
                raise self._error
            if self.expected:
                self._digest = self._fh.rest()

    def _members(self):
        """The tar's members; a read error ends them, so the sample read before it is still yielded (if it has
        all its members; whether they are whole, its checks tell) before the error is raised."""
        try:
            yield from tar_file_expander([{"url": str(self.path), "stream": self._fh}])
        except Exception as e:  # noqa: BLE001 - re-raised by __iter__ once the pending sample is out
            self._error = e

    @property
    def digest(self) -> str | None:
        """The file's sha256 once it has been read through (when hashed)."""
        return getattr(self, "_digest", None)

    def verify(self):
        if not self.expected:
            return
        got = getattr(self, "_digest", None)
        if got != self.expected:
            raise ShardHashMismatch(f"shard {self.path} fails its sha256 check (card {self.expected[:16]}..., "
                                    f"file {got[:16] + '...' if got else 'not fully read'}): its bytes changed since "
                                    "the build")


def expected_hash(hashes: dict | None, path) -> str | None:
    """The recorded sha256 of one shard; a shard the card does not list is refused (it was not part of the build)."""
    if hashes is None:
        return None
    name = Path(path).name
    if name not in hashes:
        raise ShardHashMismatch(f"shard {path} is not listed in its card's shard_sha256: not part of the build")
    return hashes[name]
