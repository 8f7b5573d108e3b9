"""`max_force`: structures with a force component above the cut are quarantined as force_outlier with their
value, the card's force RMS and references come from what is left, and changing the cut re-merges the build
without redoing (relabelling) any task."""
from __future__ import annotations

import json

from atomforge.data_prep.build import BuildConfig, build
from tests.data_prep.dft_files import frames, rows, write_xyz

SPLIT = {"train": 1.0}


def _source(folder):
    folder.mkdir()
    al = frames(8, seed=2, element="Al")
    hot = frames(1, seed=3, element="Al")[0]
    hot.calc.results["forces"] = hot.calc.results["forces"].copy()
    hot.calc.results["forces"][0] = [400.0, 0.0, 0.0]  # a teacher extrapolating on a close contact
    write_xyz(folder / "al.extxyz", al + [hot])
    return [{"type": "extxyz", "path": str(folder)}]


def _card(out) -> dict:
    return json.loads((out / "card.json").read_text())


def test_force_cut_quarantines_and_reuses_the_tasks(tmp_path):
    src, out = _source(tmp_path / "in"), tmp_path / "out"
    first = build(BuildConfig(out=str(out), sources=src, split=SPLIT), progress=False)
    assert first["counts"]["train"] == 9 and first["quarantined"] == 0
    rms_all = _card(out)["force_rms"]

    again = build(BuildConfig(out=str(out), sources=src, split=SPLIT, max_force=50.0), progress=False)
    assert again["tasks_run"] == 0  # only the merge reran
    assert again["counts"]["train"] == 8 and again["reasons"] == {"force_outlier": 1}
    q = rows(out, "quarantine.parquet")
    assert len(q) == 1 and q[0]["reason"].startswith("force_outlier: max |F| component 400 > max_force 50")
    assert max(r["max_force"] for r in rows(out)) < 50.0
    assert _card(out)["force_rms"] < rms_all / 5  # one hot atom had dominated the scale
    assert _card(out)["build_config"]["max_force"] == 50.0

    back = build(BuildConfig(out=str(out), sources=src, split=SPLIT), progress=False)  # no cut: all back
    assert back["tasks_run"] == 0 and back["counts"]["train"] == 9
