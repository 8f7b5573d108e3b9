"""BuiltDataset: the one reader of a build's folder layout (card, manifest, shards), with one-line errors."""
from __future__ import annotations

import shutil

import pytest

from atomforge.data_prep.errors import UsageError
from atomforge.pipeline.data.dataset import BuiltDataset, NotBuilt


def test_open_reads_card_manifest_shards_and_splits(emt_dataset):
    ds = BuiltDataset.open(emt_dataset, "emt_small", split="train")
    counts = ds.card["counts"]
    assert ds.count("train") == counts["train"] > 0 and ds.count("nosuch") == 0
    assert ds.element_references and set(ds.element_references) == set(ds.card["element_references"])
    assert ds.manifest(["split"]).num_rows == sum(counts.values())
    index = ds.index("train")
    assert sum(len(v) for v in index.values()) == counts["train"]
    assert set(index) <= {p.name for p in ds.shard_files("train")} == set(ds.card["shards"]["train"])
    assert set(ds.shard_hashes()) >= set(index)
    keys = [s.info["key"] for s in ds.read("val")]
    assert len(keys) == counts["val"] and len(set(keys)) == len(keys)
    assert ds.is_built()


def test_not_a_build_is_one_line_naming_the_folder_and_the_command(emt_dataset, tmp_path):
    with pytest.raises(NotBuilt, match=r"no built dataset at .*nowhere: run `atomforge data build data=x` first"):
        BuiltDataset.open(tmp_path / "nowhere", "x")
    half = tmp_path / "half"
    shutil.copytree(emt_dataset, half)
    shutil.rmtree(half / "shards")
    with pytest.raises(NotBuilt, match="it is not a finished build"):
        BuiltDataset.open(half)
    assert not BuiltDataset(tmp_path / "nowhere").is_built()
    with pytest.raises(NotBuilt, match="no card.json"):
        _ = BuiltDataset(tmp_path).card
    err = pytest.raises(NotBuilt, BuiltDataset.open, emt_dataset, split="nosplit").value
    assert "no nosplit shards" in str(err) and "\n" not in str(err)
    assert isinstance(err, UsageError) and isinstance(err, FileNotFoundError)  # the CLI's exit 2; callers' excepts
