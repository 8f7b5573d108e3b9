"""One bad structure of each kind lands in quarantine.parquet with its reason; good ones are kept."""
from __future__ import annotations

import json

import pyarrow.parquet as pq

from tests.conftest import build_dataset

BAD_SOURCE = '''
import numpy as np
from ase.build import bulk
from ase.calculators.emt import EMT
from atomforge.data_prep.structure import Structure


def good(i):
    a = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((2, 1, 1))
    a.rattle(0.05, seed=i)
    a.calc = EMT()
    return Structure.from_atoms(a, a.get_potential_energy(), a.get_forces(), source="bad", group=f"g{i}")


class Bad:
    name = "bad"

    def __init__(self, n_good=24):
        self.n_good = n_good

    def tasks(self):
        return [0, 1]

    def read(self, task):
        if task == 0:
            for i in range(self.n_good):
                yield good(i)
            return
        s = good(100); s.energy = float("nan"); s.info = {"case": "nan"}; yield s
        s = good(101); s.forces[0, 0] = np.inf; s.info = {"case": "inf"}; yield s
        s = good(102); s.positions[1] = s.positions[0] + 0.1; s.info = {"case": "close"}; yield s
        s = good(103); s.cell[2] = s.cell[0] + s.cell[1]; s.info = {"case": "singular"}; yield s
        s = good(104); s.forces = s.forces[:-1]; s.info = {"case": "force_shape"}; yield s
        s = good(105); s.numbers[0] = 150; s.info = {"case": "unknown_element"}; yield s
        s = good(106); s.energy += 50.0 * s.n_atoms; s.info = {"case": "outlier"}; yield s
        big = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(3); big.calc = EMT()
        s = Structure.from_atoms(big, big.get_potential_energy(), big.get_forces(), source="bad", group="big")
        s.info = {"case": "too_many"}; yield s
'''

EXPECTED = {  # case -> reason prefix
    "nan": "non_finite:energy",
    "inf": "non_finite:forces",
    "close": "atoms_too_close",
    "singular": "bad_cell:singular",
    "force_shape": "bad_shape:forces",
    "unknown_element": "unknown_element",
    "outlier": "energy_outlier",
    "too_many": "too_many_atoms",
}


def test_each_bad_kind_is_quarantined_with_its_reason(tmp_path, monkeypatch):
    (tmp_path / "bad_structures.py").write_text(BAD_SOURCE)
    monkeypatch.syspath_prepend(str(tmp_path))
    root = build_dataset(tmp_path / "ds", [{"type": "python", "target": "bad_structures:Bad"}],
                         workers=1, validation={"max_atoms": 64}, split={"train": 1.0})
    q = pq.read_table(root / "quarantine.parquet").to_pylist()
    m = pq.read_table(root / "manifest.parquet").to_pylist()
    assert len(m) == 24 and len(q) == len(EXPECTED)
    reasons = sorted(r["reason"] for r in q)
    for case, prefix in EXPECTED.items():
        assert sum(r.startswith(prefix) for r in reasons) == 1, (case, reasons)
    for r in q:  # every quarantined row says where it came from
        assert r["key"].startswith("bad-") and r["source"] == "bad"
    card = json.loads((root / "card.json").read_text())
    assert card["quarantined"] == len(EXPECTED)
    assert sum(card["quarantine_reasons"].values()) == len(EXPECTED)
    assert card["counts"]["train"] == 24
