"""Streaming loader: atom-budget batches, equal batches per rank, exact resume, mixing, corrupt input."""
from __future__ import annotations

import io
import json
import math
import shutil
import tarfile
from collections import Counter

import pyarrow.parquet as pq
import pytest

from atomforge.pipeline.data.loader import LoaderConfig, ShardBatches, make_loader
from tests.conftest import build_dataset

SECOND = {"type": "emt", "elements": ["Ni", "Pd"], "structures_per_task": 8,
          "per_kind": {"bulk": 16, "rattle": 16, "vacancy": 8}}


def keys(loader) -> list[list[str]]:
    return [list(b.sid) for b in loader]


def train_rows(root):
    return {r["key"]: r for r in pq.read_table(root / "manifest.parquet").to_pylist() if r["split"] == "train"}


@pytest.fixture(scope="module")
def second_dataset(tmp_path_factory):
    return build_dataset(tmp_path_factory.mktemp("data") / "nipd", [SECOND], workers=1, split={"train": 1.0})


def test_epoch_covers_split_once_packed_by_atoms(emt_dataset):
    rows = train_rows(emt_dataset)
    got = keys(make_loader(LoaderConfig(root=str(emt_dataset), max_atoms=96)))
    flat = [k for b in got for k in b]
    assert sorted(flat) == sorted(rows)  # every training sample once: nothing repeated, nothing skipped
    for b in got:
        atoms = sum(rows[k]["n_atoms"] for k in b)
        assert atoms <= 96 or len(b) == 1
    assert len({len(b) for b in got}) > 1  # batch size follows the atom budget, not a fixed count


def test_ranks_get_equal_batches_and_disjoint_samples(emt_dataset):
    plans = [ShardBatches(LoaderConfig(root=str(emt_dataset), max_atoms=64), r, 2, epoch=1).plan for r in range(2)]
    assert len(plans[0]) == len(plans[1]) > 0
    k0 = {s.key for b in plans[0] for s in b}
    k1 = {s.key for b in plans[1] for s in b}
    assert not k0 & k1


@pytest.mark.parametrize("workers", [0, 2])
def test_resume_continues_exactly(emt_dataset, workers):
    cfg = LoaderConfig(root=str(emt_dataset), max_atoms=64, num_workers=workers, seed=3)
    full = keys(make_loader(LoaderConfig(root=str(emt_dataset), max_atoms=64, seed=3), epoch=2))
    resumed = keys(make_loader(cfg, epoch=2, start=5))
    assert resumed == full[5:]
    assert keys(make_loader(cfg, epoch=3)) != full  # a new epoch reshuffles


def test_mixing_by_weight_and_temperature_with_exact_resume(emt_dataset, second_dataset):
    a, b = train_rows(emt_dataset), train_rows(second_dataset)
    mix = [{"root": str(emt_dataset), "weight": 1.0}, {"root": str(second_dataset), "weight": 3.0}]
    cfg = LoaderConfig(root="", mix=mix, max_atoms=64, epoch_size=200, seed=1)
    got = keys(make_loader(cfg))
    flat = [k for bt in got for k in bt]
    n_a, n_b = sum(k in a for k in flat), sum(k in b for k in flat)
    assert n_a + n_b == len(flat)
    assert abs(n_a - 50) <= 2 and abs(n_b - 150) <= 2  # 1:3 of 200
    reps = Counter(k for k in flat if k in b)
    # upsampled: whole passes first (every sample once), then a partial pass
    assert len(b) < 150 and set(b) <= set(reps)
    assert max(reps.values()) == math.ceil(n_b / len(b)) and min(reps.values()) == n_b // len(b)
    assert keys(make_loader(cfg, start=7)) == got[7:]
    # temperature sampling over sizes: T=1 follows sizes, large T tends to equal shares
    by_size = [{"root": str(emt_dataset)}, {"root": str(second_dataset)}]
    flat1 = [k for bt in keys(make_loader(LoaderConfig(root="", mix=by_size, max_atoms=64))) for k in bt]
    assert abs(sum(k in a for k in flat1) - len(a)) <= 1
    hot = LoaderConfig(root="", mix=by_size, max_atoms=64, temperature=100.0, epoch_size=200)
    flat_hot = [k for bt in keys(make_loader(hot)) for k in bt]
    assert abs(sum(k in a for k in flat_hot) - 100) <= 3
    plans = [ShardBatches(cfg, r, 2).plan for r in range(2)]
    assert len(plans[0]) == len(plans[1])


def corrupt_copy(src, dst, how: str):
    shutil.copytree(src, dst)
    shard = sorted((dst / "shards").glob("train-*.tar"))[0]
    if how == "truncate":
        data = shard.read_bytes()
        shard.write_bytes(data[: len(data) // 2])
        return shard, None
    with tarfile.open(shard) as t:  # drop the arrays of one sample
        members = [(m, t.extractfile(m).read()) for m in t.getmembers()]
    victim = members[0][0].name.split(".")[0]
    with tarfile.open(shard, "w") as t:
        for m, data in members:
            if m.name != f"{victim}.npz":
                t.addfile(m, io.BytesIO(data))
    return shard, victim


def test_truncated_shard_raises_naming_shard_and_key_or_skips_with_count(emt_dataset, tmp_path):
    root = tmp_path / "trunc"
    shard, _ = corrupt_copy(emt_dataset, root, "truncate")
    cfg = LoaderConfig(root=str(root), max_atoms=64, shuffle=False)
    with pytest.raises(RuntimeError, match=rf"{shard.name}.*key"):
        keys(make_loader(cfg))
    cfg.on_error = "skip"
    ds = ShardBatches(cfg)
    got = [k for b in ds for k in b.sid]
    planned = {s.key for b in ds.plan for s in b}
    assert ds.skipped == len(planned) - len(got) > 0
    assert set(got) < planned


def test_missing_field_raises_naming_shard_and_key_or_skips(emt_dataset, tmp_path):
    root = tmp_path / "missing"
    shard, victim = corrupt_copy(emt_dataset, root, "missing")
    cfg = LoaderConfig(root=str(root), max_atoms=64, shuffle=False)
    with pytest.raises(RuntimeError, match=rf"{victim}.*{shard.name}.*missing field"):
        keys(make_loader(cfg))
    cfg.on_error = "skip"
    ds = ShardBatches(cfg)
    got = [k for b in ds for k in b.sid]
    in_shard = {s.key for b in ds.plan for s in b if s.shard == shard.name}
    # the rewritten shard fails its sha256, but its other samples match their recorded digests: only the victim goes
    assert ds.skipped == 1 and sorted(got) == sorted({s.key for b in ds.plan for s in b} - {victim})
    t = pq.read_table(root / "manifest.parquet")
    pq.write_table(t.drop_columns(["digest"]), root / "manifest.parquet")  # built before per-sample digests
    ds = ShardBatches(cfg)
    got = [k for b in ds for k in b.sid]  # none of the shard is trusted, every other shard is delivered whole
    assert ds.skipped == len(in_shard) > 1 and sorted(got) == sorted({s.key for b in ds.plan for s in b} - in_shard)
    card = json.loads((root / "card.json").read_text())
    del card["shard_sha256"]  # a dataset built before shard hashes: only the damaged sample goes
    (root / "card.json").write_text(json.dumps(card))
    ds = ShardBatches(cfg)
    got = [k for b in ds for k in b.sid]
    assert ds.skipped == 1 and victim not in got
    assert len(got) == len({s.key for b in ds.plan for s in b}) - 1


def test_a_quarantined_sample_under_a_kept_key_is_neither_read_nor_an_error(tmp_path):
    """The silicon_re interstitial set has two records under one key; the build keeps one and quarantines the
    other (an energy outlier found once references are fitted) after both were written to the shard. The
    manifest's digest picks the kept one, in training and in evaluation, with on_error=raise."""
    from collections import Counter as C

    from atomforge.data_prep.integrity import ShardReader
    from atomforge.pipeline.data.dataset import read_split

    src = {"type": "silicon_re", "path": "../shared/data/silicon_re/Interstitial-enhanced_Training_Set"}
    root = build_dataset(tmp_path / "si_re", [src], workers=1, split={"train": 1.0})
    rows = train_rows(root)
    in_shards = C(s["__key__"] for shard in sorted((root / "shards").glob("*.tar")) for s in ShardReader(shard, None))
    assert [k for k, n in in_shards.items() if n > 1], "the data no longer holds a repeated key: pick another case"
    loader = make_loader(LoaderConfig(root=str(root), split="train", max_atoms=512, seed=0, on_error="raise"), 0, 1)
    got = [k for batch in keys(loader) for k in batch]
    assert sorted(got) == sorted(rows)
    assert sorted(s.info["key"] for s in read_split(str(root), "train")) == sorted(rows)
