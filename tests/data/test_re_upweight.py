"""Rare-event up-weighting: every structure once per epoch, every rare-event-flagged one k times."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from atomforge.pipeline.data.loader import LoaderConfig, ShardBatches
from atomforge.pipeline.train.data_mix import RE_FLAG, train_mix


def _train_keys(root: Path) -> tuple[set, set]:
    t = pq.read_table(root / "manifest.parquet", columns=["key", "split", "flags"]).to_pylist()
    keys = {r["key"] for r in t if r["split"] == "train"}
    return keys, {r["key"] for r in t if r["split"] == "train" and RE_FLAG in (r["flags"] or [])}


def test_rare_event_structures_drawn_k_times_per_epoch(emt_dataset):
    keys, re_keys = _train_keys(emt_dataset)
    assert re_keys and re_keys != keys  # the EMT MD frames with hops are flagged
    mix, epoch_size = train_mix(str(emt_dataset), None, 1.0, 3.0)
    assert epoch_size == len(keys) + 2 * len(re_keys)
    ds = ShardBatches(LoaderConfig(root=str(emt_dataset), max_atoms=128, mix=mix, epoch_size=epoch_size))
    counts = Counter(s.key for b in ds.plan for s in b)
    assert set(counts) == keys
    assert all(counts[k] == 1 for k in keys - re_keys) and all(counts[k] == 3 for k in re_keys)
    for rank in (0, 1):  # two ranks: equal batch counts, and still no ordinary structure drawn twice
        ds = ShardBatches(LoaderConfig(root=str(emt_dataset), max_atoms=128, mix=mix, epoch_size=epoch_size), rank, 2)
        c = Counter(s.key for b in ds.plan for s in b)
        assert max(c[k] for k in keys - re_keys) == 1

def test_bad_upweight_settings_are_refused(emt_dataset):
    with pytest.raises(ValueError, match=">= 1"):
        train_mix(str(emt_dataset), None, 1.0, 0.5)
    with pytest.raises(ValueError, match="explicit mix weights"):
        train_mix(str(emt_dataset), [{"root": str(emt_dataset), "weight": 1.0}], 1.0, 2.0)
    with pytest.raises(ValueError, match="temperature"):
        train_mix(str(emt_dataset), None, 2.0, 2.0)
