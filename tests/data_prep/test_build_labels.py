"""Labels as configured, references that survive a wild label: a +50 eV/atom frame is quarantined as
energy_outlier and leaves the Al reference where the clean data puts it (extxyz and ASE db alike), and
`energy_key`/`forces_key`/`stress_key` win over ASE's calculator fields."""
from __future__ import annotations

import json
import tarfile

import numpy as np
import pytest

from atomforge.data_prep.build import BuildConfig, build
from atomforge.data_prep.sample_codec import read_npz
from tests.data_prep.dft_files import frames, rows, write_db, write_xyz

SPLIT = {"train": 1.0}


def _images(outlier: bool):
    cu = frames(8, seed=1, element="Cu")
    al = frames(8, seed=2, element="Al")
    if outlier:
        bad = frames(1, seed=3, element="Al")[0]
        bad.calc.results["energy"] += 50.0 * len(bad)
        al.append(bad)
    return cu, al


def _refs(out) -> dict:
    return json.loads((out / "card.json").read_text())["element_references"]


@pytest.mark.parametrize("kind", ["extxyz", "asedb"])
def test_outlier_is_cut_and_the_reference_stays_put(tmp_path, kind):
    def make(folder, outlier):
        folder.mkdir()
        cu, al = _images(outlier)
        if kind == "extxyz":
            write_xyz(folder / "cu.extxyz", cu)
            write_xyz(folder / "al.extxyz", al)
        else:
            write_db(folder / "cu.db", cu)
            write_db(folder / "al.db", al)
        return [{"type": kind, "path": str(folder)}]

    clean, dirty = tmp_path / "clean", tmp_path / "dirty"
    build(BuildConfig(out=str(clean), sources=make(tmp_path / "in_clean", False), split=SPLIT), progress=False)
    build(BuildConfig(out=str(dirty), sources=make(tmp_path / "in_dirty", True), split=SPLIT), progress=False)
    q = rows(dirty, "quarantine.parquet")
    assert [r["reason"] for r in q] == ["energy_outlier"]
    assert q[0]["energy_per_atom"] > 40
    assert len(rows(dirty)) == 16
    al_clean, al_dirty = _refs(clean)["13"], _refs(dirty)["13"]
    assert abs(al_dirty - al_clean) < 0.01, (al_clean, al_dirty)
    assert abs(_refs(dirty)["29"] - _refs(clean)["29"]) < 0.01


def test_robust_fit_matches_least_squares_on_clean_data(tmp_path):
    """Where nothing is wild, the cut and the card are what plain least squares gives."""
    from atomforge.data_prep.card import ReferenceFit
    from atomforge.data_prep.robust_refs import RobustReferences
    import pyarrow as pa

    rng = np.random.default_rng(0)
    n = rng.integers(1, 9, size=(200, 2))
    e = n @ np.array([-3.7, -4.1]) + rng.normal(0, 0.01, 200) * n.sum(1)
    t = pa.table({"z": [[13, 29]] * 200, "counts": n.tolist(), "energy": e, "n_atoms": n.sum(1)})
    robust = RobustReferences(tmp_path)
    robust.add(t.slice(0, 120))
    robust.add(t.slice(120))
    r = robust.solve()
    ls = ReferenceFit().add(t).solve()
    assert abs(r[13] - ls[13]) < 0.01 and abs(r[29] - ls[29]) < 0.01
    assert abs(r[13] + 3.7) < 0.01 and abs(r[29] + 4.1) < 0.01


def _sample_arrays(out) -> dict[float, dict]:
    """energy -> arrays of every stored sample."""
    got = {}
    for shard in (out / "shards").glob("*.tar"):
        with tarfile.open(shard) as tf:
            members = {m.name: tf.extractfile(m).read() for m in tf.getmembers()}
        for name, data in members.items():
            if name.endswith(".json"):
                meta = json.loads(data)
                got[round(meta["energy"], 6)] = read_npz(members[name[:-5] + ".npz"])
    return got


def test_configured_label_keys_win_over_calculator_fields(tmp_path):
    images = frames(4, seed=5)
    true = []
    for a in images:  # the plain fields hold wrong labels; REF_* the right ones
        e, f, s = a.calc.results["energy"], a.calc.results["forces"], a.calc.results["stress"]
        a.info["REF_energy"] = e
        a.arrays["REF_forces"] = f.copy()
        a.info["REF_stress"] = s.copy()
        a.calc.results.update(energy=e + 10.0, forces=f + 1.0, stress=s + 0.1)
        true.append((e, f, s))
    folder = tmp_path / "in"
    folder.mkdir()
    write_xyz(folder / "ref.extxyz", images)
    src = {"type": "extxyz", "path": str(folder), "energy_key": "REF_energy", "forces_key": "REF_forces",
           "stress_key": "REF_stress"}
    out = tmp_path / "out"
    build(BuildConfig(out=str(out), sources=[src], split=SPLIT), progress=False)
    assert sorted(r["energy"] for r in rows(out)) == pytest.approx(sorted(e for e, _, _ in true))
    stored = _sample_arrays(out)
    for e, f, s in true:
        arr = stored[round(e, 6)]
        np.testing.assert_allclose(arr["forces"], f, atol=1e-9)
        xx, yy, zz, yz, xz, xy = s
        np.testing.assert_allclose(arr["stress"], [[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]], atol=1e-9)


def test_default_keys_still_read_the_calculator_fields(tmp_path):
    images = frames(3, seed=6)
    folder = tmp_path / "in"
    folder.mkdir()
    write_xyz(folder / "plain.extxyz", images)
    out = tmp_path / "out"
    build(BuildConfig(out=str(out), sources=[{"type": "extxyz", "path": str(folder)}], split=SPLIT), progress=False)
    assert sorted(r["energy"] for r in rows(out)) == pytest.approx(sorted(a.calc.results["energy"] for a in images))
    assert all(r["has_stress"] for r in rows(out))
