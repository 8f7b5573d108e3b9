"""A rebuild into the same folder redoes exactly the tasks whose inputs changed (added, edited, removed files,
changed settings), drops what it wrote for tasks that are gone, leaves other files alone, and equals a fresh
build; with nothing changed it redoes nothing and rewrites nothing."""
from __future__ import annotations

import os

import pytest

from atomforge.data_prep.build import BuildConfig, build
from tests.data_prep.dft_files import frames, output_bytes, rows, write_db, write_mlearn, write_xyz

SPLIT = {"train": 0.5, "val": 0.25, "test": 0.25}  # several shards per task, so stale shards can show up


def _build(out, src, **kw):
    return build(BuildConfig(out=str(out), sources=[{"type": "extxyz", "path": str(src)}], split=SPLIT, **kw),
                 progress=False)


def _published(out):
    b = output_bytes(out)
    b.pop("card.json")  # names its own folder
    b.pop("keep.tar", None)  # the user's own file
    return b


def test_added_edited_and_removed_files_are_rebuilt(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    write_xyz(src / "a.extxyz", frames(6, seed=1))
    write_xyz(src / "c.extxyz", frames(6, seed=3))
    out = tmp_path / "out"
    assert _build(out, src)["tasks_run"] == 2
    (out / "notes.txt").write_text("mine")  # not the build's: must survive every rebuild
    (out / "shards" / "keep.tar").write_bytes(b"mine")

    write_xyz(src / "b.extxyz", frames(5, seed=2))  # sorts between a and c: c's task number moves too
    s = _build(out, src)
    assert s["tasks_run"] == 2  # b (new) and c (moved); a untouched
    keys = {r["key"] for r in rows(out)}
    assert len(keys) == 17
    fresh = tmp_path / "fresh"
    _build(fresh, src)
    assert _published(out) == _published(fresh)

    write_xyz(src / "c.extxyz", frames(4, seed=4))  # edited in place
    assert _build(out, src)["tasks_run"] == 1
    assert len(rows(out)) == 15

    os.remove(src / "b.extxyz")
    os.remove(src / "c.extxyz")
    assert _build(out, src)["tasks_run"] == 0  # a kept its task number and inputs
    assert sorted(p.name for p in (out / "parts").iterdir()) == ["000000.parquet"]
    assert all(p.name.endswith("-000000.tar") or p.name == "keep.tar" for p in (out / "shards").iterdir())
    assert len(rows(out)) == 6
    fresh2 = tmp_path / "fresh2"
    _build(fresh2, src)
    assert _published(out) == _published(fresh2)
    assert (out / "notes.txt").read_text() == "mine" and (out / "shards" / "keep.tar").read_bytes() == b"mine"


def test_unchanged_rerun_skips_everything_byte_identical(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    write_xyz(src / "a.extxyz", frames(5, seed=1))
    write_xyz(src / "b.extxyz", frames(5, seed=2))
    out = tmp_path / "out"
    _build(out, src)
    before = output_bytes(out)
    mtimes = {p.name: p.stat().st_mtime_ns for p in (out / "shards").iterdir()}
    assert _build(out, src)["tasks_run"] == 0
    assert output_bytes(out) == before
    assert {p.name: p.stat().st_mtime_ns for p in (out / "shards").iterdir()} == mtimes


def test_changed_settings_redo_the_tasks(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    write_xyz(src / "a.extxyz", frames(5, seed=1))
    write_xyz(src / "b.extxyz", frames(3, seed=2, repeat=(2, 1, 1)))
    out = tmp_path / "out"
    _build(out, src)
    assert len(rows(out)) == 8
    assert _build(out, src, validation={"max_atoms": 6})["tasks_run"] == 2  # b's 8-atom frames are now too big
    assert len(rows(out)) == 5
    q = rows(out, "quarantine.parquet")
    assert len(q) == 3 and all(r["reason"].startswith("too_many_atoms") for r in q)


def test_same_size_edit_with_a_new_mtime_is_seen(tmp_path):
    """An edit that keeps the file size (a relabelled energy digit) still changes the fingerprint."""
    src = tmp_path / "in"
    src.mkdir()
    f = write_xyz(src / "a.extxyz", frames(3, seed=1))
    out = tmp_path / "out"
    _build(out, src)
    e0 = sorted(r["energy"] for r in rows(out))
    text = f.read_text()
    i = text.index("energy=") + len("energy=")
    j = i + 1 + next(k for k, ch in enumerate(text[i + 1:]) if ch.isdigit())  # first digit after the sign
    text = text[:j] + ("1" if text[j] != "1" else "2") + text[j + 1:]
    st = f.stat()
    f.write_text(text)
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert f.stat().st_size == st.st_size
    assert _build(out, src)["tasks_run"] == 1
    assert sorted(r["energy"] for r in rows(out)) != e0


@pytest.mark.parametrize("kind", ["asedb", "mlearn", "subset"])
def test_every_file_source_sees_an_edited_input(tmp_path, kind):
    src = tmp_path / "in"
    src.mkdir()

    def write(n, seed):
        if kind == "asedb":
            (src / "a.db").unlink(missing_ok=True)
            return write_db(src / "a.db", frames(n, seed=seed))
        if kind == "mlearn":
            return write_mlearn(src / "a.json", frames(n, seed=seed))
        return write_xyz(src / "a.extxyz", frames(n, seed=seed))

    f = write(4, seed=1)
    spec = {"type": kind, "path": str(f)}
    if kind == "subset":
        spec = {"type": "subset", "source": {"type": "extxyz", "path": str(src)}, "fraction": 1.0}
    cfg = BuildConfig(out=str(tmp_path / "out"), sources=[spec], split={"train": 1.0})
    build(cfg, progress=False)
    assert build(cfg, progress=False)["tasks_run"] == 0
    write(5, seed=2)
    assert build(cfg, progress=False)["tasks_run"] == 1
    assert len(rows(tmp_path / "out")) == 5
