"""Malformed DFT files next to good ones: each bad record becomes a quarantine row naming its file and frame,
every good frame is kept, the inputs are left byte-identical (same mtime) and the build exits normally."""
from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import time
from pathlib import Path

import ase.db
import pyarrow.parquet as pq
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import write

from helpers import build_dataset

REPO = Path(__file__).resolve().parents[2]


def frames(n: int, seed: int, element: str = "Cu") -> list:
    out = []
    for i in range(n):
        a = bulk(element, "fcc", a=3.6 if element == "Cu" else 4.05, cubic=True)
        a.rattle(0.05, seed=seed * 100 + i)
        a.calc = EMT()
        e, f = a.get_potential_energy(), a.get_forces()
        a.calc = SinglePointCalculator(a, energy=e, forces=f)
        out.append(a)
    return out


def xyz_text(images) -> list[str]:
    """One extxyz text per frame, so a test can damage exactly one of them."""
    out = []
    for a in images:
        buf = io.StringIO()
        write(buf, a, format="extxyz")
        out.append(buf.getvalue())
    return out


def snapshot(folder: Path) -> dict:
    return {p.name: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(folder.iterdir())}


def run(tmp_path: Path, sources: list[dict], inputs: Path) -> tuple[list, list]:
    before = snapshot(inputs)
    root = build_dataset(tmp_path / "out", sources, workers=1, split={"train": 1.0})
    assert snapshot(inputs) == before, "an input file was created, changed or touched"
    return (pq.read_table(root / "manifest.parquet").to_pylist(),
            pq.read_table(root / "quarantine.parquet").to_pylist())


def kept(tally, manifest: list, n_good: int, exact: bool = True) -> None:
    tally.lost(max(n_good - len(manifest), 0))
    ok = len(manifest) == n_good if exact else len(manifest) >= n_good
    assert ok, f"{len(manifest)} rows kept for {n_good} good frames"


def names(q: list, file: str, frame) -> list[str]:
    """Quarantine reasons that name this file and frame."""
    return [r["reason"] for r in q if f"{file}:{frame}" in r["reason"]]


def xyz_case(tmp_path, tally, damage, bad_frame: int, n: int = 6, expect: str = "read_error", spoilt: int = 1):
    """A folder with a good file and one with n frames damaged at `bad_frame` (`spoilt` of the n frames are
    broken; 0 where the damage is an inserted line or frame); every other frame is kept."""
    tally.tried()
    d = tmp_path / "in"
    d.mkdir()
    (d / "good.extxyz").write_text("".join(xyz_text(frames(5, seed=1))))
    texts = xyz_text(frames(n, seed=2))
    (d / "bad.extxyz").write_text(damage(texts))
    m, q = run(tmp_path, [{"type": "extxyz", "path": str(d)}], d)
    bad = str(d / "bad.extxyz")
    hits = names(q, bad, bad_frame)
    assert hits and all(h.startswith(expect) for h in hits), [r["reason"] for r in q]
    kept(tally, m, 5 + n - spoilt)
    tally.handled()
    return m, q


def test_unknown_symbol(tmp_path, tally):
    def damage(t):
        t[2] = t[2].replace("\nCu ", "\nXx ", 1)
        return "".join(t)
    xyz_case(tmp_path, tally, damage, bad_frame=2)


def test_garbage_line_between_frames(tmp_path, tally):
    xyz_case(tmp_path, tally, lambda t: "".join(t[:3]) + "this is not an xyz line\n" + "".join(t[3:]), bad_frame=3,
             spoilt=0)


def test_garbage_line_inside_frame(tmp_path, tally):
    def damage(t):
        lines = t[1].splitlines(keepends=True)
        lines[3] = "Cu 0.0 zero 1.0 0 0 0\n"
        t[1] = "".join(lines)
        return "".join(t)
    xyz_case(tmp_path, tally, damage, bad_frame=1)


def test_truncated_mid_frame(tmp_path, tally):
    def damage(t):
        last = t[-1]
        return "".join(t[:-1]) + last[: len(last) * 2 // 3]
    xyz_case(tmp_path, tally, damage, bad_frame=5)


def test_four_value_stress(tmp_path, tally):
    def damage(t):
        head, rest = t[0].split("\n", 1)
        comment, body = rest.split("\n", 1)
        t[0] = f'{head}\n{comment} stress="1.0 2.0 3.0 4.0"\n{body}'
        return "".join(t)
    xyz_case(tmp_path, tally, damage, bad_frame=0)


def test_energy_with_two_values(tmp_path, tally):
    def damage(t):
        t[4] = t[4].replace("energy=", 'energy="1.0 2.0" old_energy=', 1)
        return "".join(t)
    xyz_case(tmp_path, tally, damage, bad_frame=4)


def test_degenerate_cell_is_rejected_cheaply(tmp_path, tally):
    flat = frames(1, seed=9)[0]
    flat.set_cell([100.0, 100.0, 1e-7], scale_atoms=False)
    t0 = time.time()

    def damage(t):
        return "".join(t[:3]) + xyz_text([flat])[0] + "".join(t[3:])
    xyz_case(tmp_path, tally, damage, bad_frame=3, expect="bad_cell", spoilt=0)
    assert time.time() - t0 < 30  # the neighbour search never sized its image grid on it


def db_with(path: Path, images, delete: int | None = None) -> None:
    with ase.db.connect(str(path)) as db:
        for a in images:
            db.write(a)
    if delete is not None:
        with ase.db.connect(str(path)) as db:
            db.delete([delete])


def db_case(tmp_path, tally, make_bad, n_good: int, exact: bool = True):
    tally.tried()
    d = tmp_path / "in"
    d.mkdir()
    db_with(d / "good.db", frames(4, seed=3))
    make_bad(d / "bad.db")
    m, q = run(tmp_path, [{"type": "asedb", "path": str(d)}], d)
    kept(tally, m, n_good, exact)
    return m, q


def test_zero_byte_db_is_not_rewritten(tmp_path, tally):
    m, q = db_case(tmp_path, tally, lambda p: p.write_bytes(b""), n_good=4)
    assert (tmp_path / "in" / "bad.db").stat().st_size == 0
    assert names(q, str(tmp_path / "in" / "bad.db"), "*"), [r["reason"] for r in q]
    tally.handled()


def test_text_file_named_db(tmp_path, tally):
    m, q = db_case(tmp_path, tally, lambda p: p.write_text("id,energy\n1,-3.2\n"), n_good=4)
    assert names(q, str(tmp_path / "in" / "bad.db"), "*"), [r["reason"] for r in q]
    tally.handled()


def test_truncated_db(tmp_path, tally):
    def make(p):
        db_with(p, frames(30, seed=4))
        data = p.read_bytes()
        p.write_bytes(data[: len(data) // 3])
    m, q = db_case(tmp_path, tally, make, n_good=4, exact=False)  # rows before the cut may survive
    bad = str(tmp_path / "in" / "bad.db")
    assert [r for r in q if bad in r["reason"] and r["reason"].startswith("read_error")], [r["reason"] for r in q]
    tally.handled()


def test_db_with_a_deleted_row(tmp_path, tally):
    m, q = db_case(tmp_path, tally, lambda p: db_with(p, frames(6, seed=5), delete=3), n_good=4 + 5)
    assert not q, [r["reason"] for r in q]
    tally.handled()


def test_bad_frames_through_the_cli(tmp_path, tally):
    """The way users run it: `atomforge data build` with the sources given as overrides."""
    tally.tried()
    d = tmp_path / "in"
    d.mkdir()
    (d / "good.extxyz").write_text("".join(xyz_text(frames(4, seed=6))))
    t = xyz_text(frames(4, seed=7))
    t[1] = t[1].replace("\nCu ", "\nXx ", 1)
    (d / "bad.extxyz").write_text("".join(t) + "garbage at the end\n")
    before = snapshot(d)
    out = tmp_path / "data"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    cli = Path(sys.executable).with_name("atomforge")
    cmd = [str(cli)] if cli.exists() else [sys.executable, "-m", "atomforge.pipeline.cli"]
    p = subprocess.run(cmd + ["data", "build", "data=emt_demo", f"paths.data={out}",
                        f"data.build.sources=[{{type:extxyz,path:'{d}'}}]", "data.build.workers=1",
                        "data.build.split={train:1.0}"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    assert snapshot(d) == before
    m = pq.read_table(out / "emt_demo" / "manifest.parquet").to_pylist()
    q = pq.read_table(out / "emt_demo" / "quarantine.parquet").to_pylist()
    kept(tally, m, 7)
    bad = str(d / "bad.extxyz")
    assert names(q, bad, 1) and names(q, bad, 4), [r["reason"] for r in q]
    tally.handled()


def mlearn_entries(images) -> list[dict]:
    return [{"structure": {"lattice": {"matrix": a.cell.array.tolist()},
                           "sites": [{"species": [{"element": s}], "xyz": p.tolist()}
                                     for s, p in zip(a.get_chemical_symbols(), a.positions)]},
             "outputs": {"energy": a.get_potential_energy(), "forces": a.get_forces().tolist(),
                         "virial_stress": [0.0] * 6},
             "group": "Rattled", "description": f"frame {i}"} for i, a in enumerate(images)]


def test_mlearn_bad_entries_and_a_truncated_file(tmp_path, tally):
    import json

    tally.tried(2)
    d = tmp_path / "in"
    d.mkdir()
    entries = mlearn_entries(frames(6, seed=8))
    entries[1]["structure"]["sites"][0]["species"][0]["element"] = "Xx"
    del entries[4]["outputs"]
    (d / "mixed.json").write_text(json.dumps(entries))
    (d / "cut.json").write_text(json.dumps(mlearn_entries(frames(3, seed=9)))[:500])
    (d / "good.json").write_text(json.dumps(mlearn_entries(frames(3, seed=10))))
    srcs = [{"type": "mlearn", "path": str(d / n), "name": n.split(".")[0]}
            for n in ("mixed.json", "cut.json", "good.json")]
    m, q = run(tmp_path, srcs, d)
    kept(tally, m, 4 + 3)
    mixed, cut = str(d / "mixed.json"), str(d / "cut.json")
    assert names(q, mixed, 1) and names(q, mixed, 4) and names(q, cut, "*"), [r["reason"] for r in q]
    tally.handled(2)


def test_empty_and_junk_aselmdb(tmp_path, tally):
    tally.tried(2)
    d = tmp_path / "in"
    d.mkdir()
    db_with(d / "good.db", frames(4, seed=11))
    (d / "empty.aselmdb").write_bytes(b"")
    (d / "junk.aselmdb").write_bytes(b"not an lmdb file " * 200)
    m, q = run(tmp_path, [{"type": "asedb", "path": str(d)}], d)
    kept(tally, m, 4)
    assert names(q, str(d / "empty.aselmdb"), "*") and names(q, str(d / "junk.aselmdb"), "*"), [r["reason"] for r in q]
    tally.handled(2)
