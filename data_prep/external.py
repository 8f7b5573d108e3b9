"""Whole-dataset operations in bounded memory: duplicate detection over spilled hash buckets, and exact order
statistics (median) over values kept in per-part files. Memory depends on bucket and part sizes, not on the
number of structures."""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

RECORD = np.dtype([("hi", "<u8"), ("lo", "<u8"), ("order", "<u8")])
BUCKET_ROWS = 1 << 16  # records per spill bucket (1.5 MiB) while at most MAX_BUCKETS are needed
MAX_BUCKETS = 512  # open files at once; past 32M rows buckets grow instead (48 MiB each at 1G rows)
COLLECT = 1 << 16  # order statistics: candidates gathered and sorted once this few remain


def hash_keys(hashes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """96-bit structure hashes (24 hex digits) as two unsigned integers."""
    raw = np.frombuffer(bytes.fromhex("".join(hashes)), dtype=np.dtype([("hi", ">u8"), ("lo", ">u4")]))
    return raw["hi"].astype(np.uint64), raw["lo"].astype(np.uint64)


def duplicates(parts: Iterable[tuple[int, list[str], np.ndarray, np.ndarray]], n_rows: int,
               tmp: Path) -> dict[int, np.ndarray]:
    """Rows whose hash occurred earlier in the same scope (part order, then row order), as {part: row indices}.

    `parts` yields (part index, hashes, row indices, scope ids) for the usable rows; rows of different scopes
    (splits, when deduplicating per split) never count as copies of each other. Records go to hash-partitioned
    bucket files on disk; each bucket is then sorted on its own. Memory: one bucket plus the duplicates."""
    n_buckets = min(MAX_BUCKETS, max(1, math.ceil(n_rows / BUCKET_ROWS)))
    files = [open(tmp / f"bucket-{b:05d}.bin", "wb") for b in range(n_buckets)]
    try:
        for part, hashes, rows, scope in parts:
            if not len(hashes):
                continue
            rec = np.empty(len(hashes), RECORD)
            rec["hi"], rec["lo"] = hash_keys(hashes)
            rec["lo"] |= np.asarray(scope, dtype=np.uint64) << np.uint64(32)  # the hash's low part has 32 bits
            rec["order"] = (np.uint64(part) << np.uint64(32)) | np.asarray(rows, dtype=np.uint64)
            which = rec["hi"] % np.uint64(n_buckets)
            for b in np.unique(which):
                rec[which == b].tofile(files[int(b)])
    finally:
        for f in files:
            f.close()
    dups = []
    for f in files:
        rec = np.fromfile(f.name, RECORD)
        Path(f.name).unlink()
        rec = rec[np.lexsort((rec["order"], rec["lo"], rec["hi"]))]
        same = (rec["hi"][1:] == rec["hi"][:-1]) & (rec["lo"][1:] == rec["lo"][:-1])
        dups.append(rec["order"][1:][same])
    order = np.sort(np.concatenate(dups)) if dups else np.zeros(0, np.uint64)
    part_of = (order >> np.uint64(32)).astype(np.int64)
    row_of = (order & np.uint64(0xFFFFFFFF)).astype(np.int64)
    return {int(p): row_of[part_of == p] for p in np.unique(part_of)}


def _sortable(x: np.ndarray) -> np.ndarray:
    """float64 -> uint64 with the same order (sign-magnitude to two's-complement-free keys)."""
    u = np.ascontiguousarray(x, dtype=np.float64).view(np.uint64)
    return np.where(u >> np.uint64(63), ~u, u | np.uint64(1 << 63))


def kth_smallest(chunks: Callable[[], Iterable[np.ndarray]], k: int) -> float:
    """The exact k-th smallest (0-based) value over the arrays `chunks()` yields, by radix selection on 16-bit
    digits of order-preserving keys: at most four counting passes, never all values at once."""
    prefix, shift, rank = np.uint64(0), 64, k
    while True:
        mask = np.uint64(0) if shift == 64 else ~np.uint64((1 << shift) - 1)
        left = sum(int((( _sortable(c) & mask) == prefix).sum()) for c in chunks())
        if left <= COLLECT or shift == 0:
            vals = [c[(_sortable(c) & mask) == prefix] for c in chunks()]
            return float(np.sort(np.concatenate(vals))[rank])
        shift -= 16
        counts = np.zeros(1 << 16, np.int64)
        for c in chunks():
            key = _sortable(c)
            key = key[(key & mask) == prefix]
            counts += np.bincount(((key >> np.uint64(shift)) & np.uint64(0xFFFF)).astype(np.int64), minlength=1 << 16)
        cum = np.cumsum(counts)
        digit = int(np.searchsorted(cum, rank, side="right"))
        rank -= int(cum[digit - 1]) if digit else 0
        prefix = prefix | (np.uint64(digit) << np.uint64(shift))


def median(chunks: Callable[[], Iterable[np.ndarray]], n: int) -> float:
    """np.median's value (mean of the two middle values for even n) without holding the values."""
    lo = kth_smallest(chunks, (n - 1) // 2)
    return lo if n % 2 else 0.5 * (lo + kth_smallest(chunks, n // 2))
