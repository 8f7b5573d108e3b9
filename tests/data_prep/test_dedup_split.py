"""Deduplication by structure hash (permuted, translated, lattice-shifted copies) and group-aware splits."""
from __future__ import annotations

import json

import numpy as np
import pytest
import pyarrow.parquet as pq
from ase.build import bulk

from atomforge.data_prep.split import assign_split
from atomforge.data_prep.structure import Structure
from tests.conftest import build_dataset

COPIES = '''
import json

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT
from atomforge.data_prep.structure import Structure


def make(seed, shift=None, perm=False, nudge=0.0):
    a = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((2, 2, 1))
    a[0].symbol = "Al"
    a.rattle(0.05, seed=seed)
    if shift is not None:
        a.positions += shift
    if perm:
        a = a[np.random.default_rng(seed).permutation(len(a))]
    a.positions[3] += nudge
    a.calc = EMT()
    return Structure.from_atoms(a, a.get_potential_energy(), a.get_forces(), source="dup", group=f"g{seed}-{nudge}")


class Copies:
    name = "dup"

    def tasks(self):
        return [0, 1]

    def read(self, task):
        if task == 0:
            for seed in range(6):
                yield make(seed)
        else:
            cell = np.diag([7.2, 7.2, 3.6])
            yield make(0, perm=True)                              # same atoms, other order
            yield make(1, shift=np.array([0.37, -1.1, 0.5]))      # rigid translation
            yield make(2, shift=cell[0] - cell[2])                # lattice-vector shift
            yield make(3, shift=np.array([0.2, 0.2, 0.2]), perm=True)
            yield make(4, nudge=0.01)                             # a different structure: kept
'''


def test_permuted_and_translated_copies_are_duplicates(tmp_path, monkeypatch):
    (tmp_path / "copies.py").write_text(COPIES)
    monkeypatch.syspath_prepend(str(tmp_path))
    root = build_dataset(tmp_path / "ds", [{"type": "python", "target": "copies:Copies"}], workers=1,
                         split={"train": 1.0})
    m = pq.read_table(root / "manifest.parquet").to_pylist()
    q = pq.read_table(root / "quarantine.parquet").to_pylist()
    assert len(m) == 7
    assert sorted(r["reason"] for r in q) == ["duplicate"] * 4
    assert len({r["hash"] for r in m}) == 7


def test_hash_invariances():
    a = bulk("Si", "diamond", a=5.43, cubic=True)
    a.rattle(0.03, seed=1)
    s = Structure.from_atoms(a, 0.0)
    h = s.structure_hash()
    t = Structure.from_atoms(a, 0.0)
    t.positions = t.positions + np.array([1.3, -0.2, 4.1])
    assert t.structure_hash() == h
    p = np.random.default_rng(0).permutation(len(a))
    assert Structure(s.numbers[p], s.positions[p], s.cell, s.pbc, 0.0).structure_hash() == h
    moved = Structure.from_atoms(a, 0.0)
    moved.positions[0, 0] += 0.02
    assert moved.structure_hash() != h


def test_group_split_keeps_groups_together_and_follows_fractions():
    fr = {"train": 0.8, "val": 0.1, "test": 0.1}
    groups = [f"traj{i}" for i in range(4000)]
    splits = [assign_split(g, fr, seed=0) for g in groups]
    assert [assign_split(g, fr, seed=0) for g in groups] == splits  # pure function of the group
    share = {k: splits.count(k) / len(splits) for k in fr}
    assert abs(share["train"] - 0.8) < 0.03 and abs(share["val"] - 0.1) < 0.02
    assert [assign_split(g, fr, seed=1) for g in groups] != splits  # the seed reshuffles


def test_per_split_dedup_keeps_a_published_test_set_whole(tmp_path, monkeypatch):
    """A test set repeating training structures: global dedup empties it, per_split keeps all but its own copies."""
    (tmp_path / "copies.py").write_text(COPIES)
    monkeypatch.syspath_prepend(str(tmp_path))
    src = {"type": "python", "target": "copies:Copies"}
    sources = [{**src, "split": "train"}, {**src, "split": "test"}]
    kept = {}
    for mode in ("global", "per_split"):
        root = build_dataset(tmp_path / mode, sources, workers=1, dedup=mode)
        card = json.loads((root / "card.json").read_text())
        kept[mode] = card["counts"]
        assert card["counts"]["train"] == 7
        assert card["quarantine_reasons"] == {"duplicate": 4 + (11 if mode == "global" else 4)}
    assert kept["global"]["test"] == 0 and kept["per_split"]["test"] == 7


def test_unknown_dedup_mode_is_refused(tmp_path, monkeypatch):
    (tmp_path / "copies.py").write_text(COPIES)
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ValueError, match="dedup must be one of"):
        build_dataset(tmp_path / "x", [{"type": "python", "target": "copies:Copies"}], workers=1, dedup="fuzzy")
