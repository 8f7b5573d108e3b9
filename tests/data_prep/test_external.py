"""Bounded-memory whole-dataset operations: exact medians by radix selection, duplicates across spill buckets."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest

from atomforge.data_prep import external


@pytest.mark.parametrize("collect", [1 << 20, 7])  # 7: force every radix pass
def test_median_and_kth_are_exact(monkeypatch, collect):
    monkeypatch.setattr(external, "COLLECT", collect)
    rng = np.random.default_rng(0)
    for n in (1, 2, 5, 1000, 1001):
        x = np.concatenate([rng.normal(0, 1e-3, n // 2), rng.standard_cauchy(n - n // 2)])
        x[::7] = -0.0 if n > 7 else x[::7]
        chunks = lambda x=x: iter(np.array_split(x, 3))  # noqa: E731
        assert external.median(chunks, n) == np.median(x)
        k = n // 3
        assert external.kth_smallest(chunks, k) == np.sort(x)[k]


def test_duplicates_across_buckets_keep_the_first(tmp_path, monkeypatch):
    monkeypatch.setattr(external, "BUCKET_ROWS", 5)  # many buckets for 40 rows
    h = [hashlib.blake2b(str(i % 13).encode(), digest_size=12).hexdigest() for i in range(40)]
    parts = [(p, h[p * 10:(p + 1) * 10], np.arange(10), np.zeros(10, np.uint64)) for p in range(4)]
    dups = external.duplicates(iter(parts), 40, tmp_path)
    got = sorted(p * 10 + int(r) for p, rows in dups.items() for r in rows)
    assert got == list(range(13, 40))  # every hash first seen among rows 0..12
    assert not list(tmp_path.iterdir())  # spill files removed
