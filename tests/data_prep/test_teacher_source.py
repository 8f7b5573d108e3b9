"""The teacher source: tiny builds with each teacher read back exactly what the teacher computes; a structure
the teacher returns NaN for is quarantined; a build killed half-way resumes byte-identical."""
from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pyarrow.parquet as pq
import pytest

from atomforge.data_prep.sources import make_source
from atomforge.data_prep.teachers import get_teacher, weights_file
from tests.conftest import REPO, build_dataset

KINDS = {"bulk": 2, "vacancy": 1, "interstitial": 1, "surface": 1, "md": 2}


def _spec(teacher, **kw):
    return {"type": "teacher", "teacher": teacher, "elements": kw.pop("elements", ["Cu", "Al", "Ni"]),
            "per_kind": kw.pop("per_kind", KINDS), "structures_per_task": 2, "md_steps_between": 2, **kw}


def _read_all(root):
    from atomforge.pipeline.data.dataset import read_split

    return [s for split in ("train", "val", "test") for s in read_split(str(root), split)]


@pytest.mark.parametrize("teacher", ["emt", "sevennet:7net-0", "chgnet:0.3.0"])
def test_tiny_build_reads_back_what_the_teacher_computes(tmp_path, teacher):
    root = build_dataset(tmp_path / "d", [_spec(teacher)], workers=1, split={"train": 0.5, "val": 0.25, "test": 0.25})
    got = _read_all(root)
    assert len(got) == sum(KINDS.values())
    assert {s.info["kind"] for s in got} == set(KINDS)
    t = get_teacher(teacher)
    for s in got:  # the same calculator on the read-back structure gives the stored labels, bit for bit
        lab = t.label([s.to_atoms()], [s.stress is not None], batch_atoms=0)[0]
        assert lab.energy == s.energy, (teacher, s.info)
        assert np.array_equal(lab.forces, s.forces)
        if s.stress is not None:
            assert np.array_equal(lab.stress, s.stress)
        assert s.info["teacher"] == teacher
    w = weights_file(teacher)
    if w is None:
        assert teacher == "emt" and got[0].info["teacher_weights_sha256"] is None
    else:
        assert got[0].info["teacher_weights_sha256"] == hashlib.sha256(open(w, "rb").read()).hexdigest()
    md = [s for s in got if s.info["kind"] == "md"]
    assert all("re" in s.atom_fields for s in md) and len({s.info["temperature_K"] for s in md}) == 2


def test_batched_labels_match_single_structure_labels():
    t = get_teacher("sevennet:7net-0")
    src = make_source(_spec("sevennet:7net-0", elements=["Si", "C", "Ga", "N", "Ba", "Ti", "O"]))
    from atomforge.data_prep.sources import prototypes

    rng = np.random.default_rng(0)
    atoms = [prototypes.supercell(prototypes.pick(src.elements, rng)[1], 8, 32) for _ in range(4)]
    one, many = t.label(atoms, batch_atoms=0), t.label(atoms, batch_atoms=200)
    for a, b in zip(one, many):
        assert abs(a.energy - b.energy) < 1e-3 and np.abs(a.forces - b.forces).max() < 1e-4


def test_prototypes_span_many_elements_and_families():
    from atomforge.data_prep.sources import prototypes

    assert len(prototypes.DEFAULT_ELEMENTS) >= 40
    rng = np.random.default_rng(1)
    names = [prototypes.pick(prototypes.DEFAULT_ELEMENTS, rng)[0].split("-")[1] for _ in range(400)]
    families = set(prototypes.ELEMENTAL + prototypes.BINARY_IONIC + prototypes.BINARY_METALLIC + prototypes.TERNARY)
    assert set(names) == families


def test_nan_from_the_teacher_is_quarantined(tmp_path):
    spec = _spec("tests.data_prep.teacher_calcs:NaNEMT", per_kind={"bulk": 2, "vacancy": 4, "interstitial": 2})
    root = build_dataset(tmp_path / "d", [spec], workers=1)
    man = pq.read_table(root / "manifest.parquet").to_pylist()
    qua = pq.read_table(root / "quarantine.parquet").to_pylist()
    nan = [r for r in qua if r["reason"].startswith("non_finite")]
    assert nan and all(r["n_atoms"] % 2 == 1 for r in nan)
    assert man and all(r["n_atoms"] % 2 == 0 for r in man)
    assert len(man) + len(qua) == 8


def test_unknown_teacher_and_unknown_element_are_one_line_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown teacher"):
        make_source(_spec("nosuch"))
    src = make_source(_spec("emt", elements=["Cu", "Si"]))
    with pytest.raises(ValueError, match=r"does not know \['Si'\]"):
        next(src.read(src.tasks()[0]))


SLOW = [_spec("tests.data_prep.teacher_calcs:SlowEMT", per_kind={"bulk": 6, "rattle": 6, "vacancy": 6, "md": 4})]
BUILD = """
import sys
from atomforge.data_prep.build import BuildConfig, build
build(BuildConfig(out=sys.argv[1], sources=%r, workers=2), progress=False)
""" % (SLOW,)


def _files(root):
    names = sorted((root / "shards").glob("*.tar")) + [root / "manifest.parquet", root / "quarantine.parquet"]
    return {p.name: p.read_bytes() for p in names}


def test_killed_build_resumes_byte_identical(tmp_path):
    from atomforge.data_prep.build import BuildConfig, build

    ref = build_dataset(tmp_path / "ref", SLOW, workers=1)
    out = tmp_path / "killed"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    p = subprocess.Popen([sys.executable, "-c", BUILD, str(out)], env=env, cwd=REPO)
    deadline = time.time() + 60
    while time.time() < deadline and len(list((out / "parts").glob("*.parquet"))) < 2:
        time.sleep(0.02)
    p.send_signal(signal.SIGKILL)
    assert p.wait() == -9
    n_done = len(list((out / "parts").glob("*.parquet")))
    n_tasks = len(list((ref / "parts").glob("*.parquet")))
    assert 2 <= n_done < n_tasks and not (out / "manifest.parquet").exists()
    summary = build(BuildConfig(out=str(out), sources=SLOW, workers=1), progress=False)
    assert summary["tasks_run"] == n_tasks - n_done  # finished tasks were not redone
    assert _files(out) == _files(ref)


def test_tiny_config_builds_through_the_cli(tmp_path, capsys):
    from atomforge.pipeline.cli import main

    root = tmp_path / "teacher_tiny"
    assert main(["data", "build", "data=teacher_tiny", f"data.root={root}"]) == 0
    card = __import__("json").loads((root / "card.json").read_text())
    assert sum(card["counts"].values()) + card["quarantined"] == 15
    assert card["sources"][0]["teacher"] == "sevennet:7net-0" and len(card["elements"]) >= 5
    (who,) = card["teachers"]  # the card names the teacher, its package version and its weights checksum
    assert who["name"] == "sevennet:7net-0" and who["version"] == "0.13.0" and len(who["weights_sha256"]) == 64


@pytest.mark.slow
def test_parallel_sevennet_build_equals_serial(tmp_path):
    """Workers build their own SevenNet and label on one thread: the shards equal a serial build's, bit for bit."""
    spec = [_spec("sevennet:7net-0", elements=["Si", "Ga", "N"], per_kind={"bulk": 2, "rattle": 2, "md": 2})]
    a = build_dataset(tmp_path / "serial", spec, workers=1)
    b = build_dataset(tmp_path / "parallel", spec, workers=2)
    assert _files(a) == _files(b)
