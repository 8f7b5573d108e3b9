"""The subset source (nested deterministic fractions, val groups kept whole) and silicon_re's null RE labels."""
from __future__ import annotations

from pathlib import Path

from atomforge.data_prep.sources import make_source
from atomforge.data_prep.split import assign_split

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
SI = {"type": "mlearn", "path": str(DATA / "mlearn" / "Si" / "training.json"), "chunk": 256}
SPLIT = {"train": 0.9, "val": 0.1, "test": 0.0}


def _keys(spec):
    src = make_source(spec)
    return {s.structure_hash(): s for t in src.tasks() for s in src.read(t)}


def test_subsets_are_nested_and_keep_val_whole():
    full = _keys(SI)
    small = _keys({"type": "subset", "source": SI, "fraction": 0.1, "split_fractions": SPLIT, "split_seed": 0})
    mid = _keys({"type": "subset", "source": SI, "fraction": 0.25, "split_fractions": SPLIT, "split_seed": 0})
    assert set(small) < set(mid) < set(full)
    val = {k for k, s in full.items() if assign_split(s.group, SPLIT, 0) == "val"}
    assert val and val <= set(small)
    n_train = sum(1 for k, s in full.items() if k not in val)
    assert 0.03 * n_train < len(set(small) - val) < 0.2 * n_train


def test_silicon_re_bulk_like_snapshots_have_no_re_labels():
    src = make_source({"type": "silicon_re", "path": str(DATA / "silicon_re" / "Enhanced_Validation_Set")})
    structs = [s for t in src.tasks() for s in src.read(t)]
    assert len(structs) == 50
    labelled = [s for s in structs if "r" in s.atom_fields]
    assert 0 < len(labelled) < 50 and all(len(s.atom_fields["r"]) == s.n_atoms for s in labelled)
