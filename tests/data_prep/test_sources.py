"""extxyz, ASE db / fairchem aselmdb (+ metadata.npz), and EMT MD with vacancy hops flagged as rare events."""
from __future__ import annotations

import ase.db
import numpy as np
import pyarrow.parquet as pq
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import read, write

from tests.data_prep.test_roundtrip import read_back
from tests.conftest import build_dataset


def labelled(n: int, seed: int = 0):
    out = []
    for i in range(n):
        a = bulk("Cu" if i % 2 else "Al", "fcc", cubic=True).repeat((2, 1, 1))
        a.rattle(0.05, seed=seed + i)
        a.calc = EMT()
        e, f, s = a.get_potential_energy(), a.get_forces(), a.get_stress()
        a.calc = SinglePointCalculator(a, energy=e, forces=f, stress=s)
        a.info["traj"] = f"t{i // 4}"
        out.append(a)
    return out


def by_index(stored, field):
    return {s.info[field]: s for s in stored.values()}


def test_extxyz_source(tmp_path):
    frames = labelled(12)
    write(tmp_path / "mp.extxyz", frames, format="extxyz")
    root = build_dataset(tmp_path / "ds",
                         [{"type": "extxyz", "path": str(tmp_path / "mp.extxyz"), "group_key": "traj"}], workers=1)
    stored = read_back(root)
    assert len(stored) == 12
    again = read(tmp_path / "mp.extxyz", index=":")
    got = sorted(stored.values(), key=lambda s: s.energy)
    ref = sorted(again, key=lambda a: a.get_potential_energy())
    for s, a in zip(got, ref):  # exactly what the file says
        assert s.energy == a.get_potential_energy()
        np.testing.assert_array_equal(s.forces, a.get_forces())
        np.testing.assert_array_equal(s.positions, a.positions)
    m = pq.read_table(root / "manifest.parquet").to_pylist()
    for t in {r["group"] for r in m}:  # a trajectory never straddles splits
        assert len({r["split"] for r in m if r["group"] == t}) == 1
    assert {r["group"] for r in m} == {"t0", "t1", "t2"}


@pytest.mark.parametrize("suffix", ["aselmdb", "db"])
def test_asedb_and_fairchem_aselmdb_with_metadata(tmp_path, suffix):
    folder = tmp_path / "omat_like"
    folder.mkdir()
    frames = labelled(10, seed=3)
    natoms = []
    for j, chunk in enumerate((frames[:6], frames[6:])):  # two shards, as fairchem's releases are split
        with ase.db.connect(str(folder / f"data.{j:04d}.{suffix}")) as db:
            for i, a in enumerate(chunk):
                db.write(a, data={"sid": f"traj-{(6 * j + i) // 5}"})
                natoms.append(len(a))
    np.savez(folder / "metadata.npz", natoms=np.array(natoms))
    root = build_dataset(tmp_path / "ds", [{"type": "asedb", "path": str(folder), "chunk": 4}], workers=1,
                         split={"train": 1.0})
    stored = read_back(root)
    assert len(stored) == 10
    for s in stored.values():
        a = frames[(0 if s.info["db"].startswith("data.0000") else 6) + s.info["db_index"]]
        assert s.energy == a.get_potential_energy()
        np.testing.assert_array_equal(s.forces, a.get_forces())
        np.testing.assert_allclose(s.stress[0, 0], a.get_stress()[0])
        assert s.group == f"traj-{((0 if s.info['db'].startswith('data.0000') else 6) + s.info['db_index']) // 5}"
    # a metadata.npz that does not match the databases is an error, not a silent misread
    np.savez(folder / "metadata.npz", natoms=np.array(natoms[:-1]))
    with pytest.raises(ValueError, match="metadata.npz lists 9 structures"):
        build_dataset(tmp_path / "ds2", [{"type": "asedb", "path": str(folder)}], workers=1)


def test_emt_md_flags_vacancy_hops(tmp_path):
    spec = {"type": "emt", "elements": ["Al"], "per_kind": {"md": 40}, "md_temperatures": [900.0],
            "md_steps_between": 25, "structures_per_task": 40}
    root = build_dataset(tmp_path / "md", [spec], workers=1, split={"train": 1.0})
    stored = read_back(root)
    m = pq.read_table(root / "manifest.parquet").to_pylist()
    hops = [s for s in stored.values() if s.atom_fields["re"].sum() > 0]
    assert hops, "no vacancy hop caught at 900 K"
    for s in stored.values():
        re = s.atom_fields["re"] > 0
        np.testing.assert_array_equal(s.atom_fields["r"] == 0, re)  # r == 0 marks RE atoms, as in silicon_re
        assert (s.atom_fields["r"] <= 5.5).all()
    flagged = {r["key"] for r in m if "rare_event" in r["flags"]}
    assert flagged == {s.info["key"] for s in hops}
    assert len({r["group"] for r in m}) == 1  # one trajectory, one group
