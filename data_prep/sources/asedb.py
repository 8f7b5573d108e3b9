"""ASE databases, including fairchem's `*.aselmdb` shards (OMat24/OMol25 layout) opened with fairchem's own
connector (read-only LMDB via ase-db-backends).

A folder in the fairchem layout also holds `metadata.npz` with `natoms` for every row of its databases in
sorted-file order; when present it is checked against what is read, so a stale or mismatched folder fails loudly.
"""
from __future__ import annotations

import os
import sqlite3
import struct
import urllib.parse
from pathlib import Path
from typing import Iterator

import numpy as np
from ase.db.sqlite import SQLite3Database

from atomforge.data_prep.structure import ReadError, Structure

CHUNK = 1000
LMDB_MAGIC = 0xBEEFC0DE


def connect(f: Path):
    """Open a database for reading only: an input is never created, initialised or modified (ASE's own
    connect turns a 0-byte or missing `.db` into a fresh database)."""
    if not f.is_file():
        raise FileNotFoundError(f"no such database: {f}")
    if f.stat().st_size == 0:
        raise ValueError("empty file, not an ASE database")
    if f.suffix == ".aselmdb":
        with open(f, "rb") as fh:  # LMDB's meta page magic: refuse junk before the backend half-opens it
            head = fh.read(20)
        if len(head) < 20 or struct.unpack_from("<I", head, 16)[0] != LMDB_MAGIC:
            raise ValueError("not an LMDB file")
        from fairchem.core.datasets.ase_datasets import AseDBDataset

        return AseDBDataset.connect_db(str(f))  # read-only, no lock file: safe from many processes
    return ReadOnlySQLite(str(f), create_indices=False)


class ReadOnlySQLite(SQLite3Database):
    def _connect(self):
        uri = "file:" + urllib.parse.quote(os.path.abspath(self.filename)) + "?mode=ro"
        return sqlite3.connect(uri, uri=True, timeout=20)

    def row_ids(self, a: int, b: int) -> list[int]:
        """Ids of rows a..b-1 in id order: ids need not run 1..n (rows get deleted)."""
        with self.managed_connection() as con:
            cur = con.execute("SELECT id FROM systems ORDER BY id LIMIT ? OFFSET ?", (b - a, a))
            return [int(r[0]) for r in cur.fetchall()]


class AseDBSource:
    name = "asedb"

    def __init__(self, path: str, name: str | None = None, chunk: int = CHUNK, group_key: str = "sid"):
        p = Path(path)
        if p.is_dir():
            self.files = sorted(list(p.glob("*.aselmdb")) + list(p.glob("*.db")))
        else:
            self.files = [p]
        if not self.files or not all(f.exists() for f in self.files):
            raise FileNotFoundError(f"no ASE database (*.aselmdb, *.db) at {path}")
        self.name = name or f"db_{p.stem}"
        self.chunk = chunk
        self.group_key = group_key
        self.counts, self.broken = [], {}
        for f in self.files:  # a file that will not open or count is quarantined whole, by its one task
            try:
                db = connect(f)
                try:
                    self.counts.append(int(db.count()))
                finally:
                    if hasattr(db, "close"):
                        db.close()
            except Exception as e:  # noqa: BLE001 - sqlite, lmdb and ASE raise many kinds
                self.counts.append(0)
                self.broken[str(f)] = f"{type(e).__name__}: {e}"
        meta = p / "metadata.npz" if p.is_dir() else None
        self.natoms = None
        if meta is not None and meta.is_file():
            with np.load(meta) as m:
                self.natoms = np.asarray(m["natoms"])
            if len(self.natoms) != sum(self.counts):
                raise ValueError(f"{meta} lists {len(self.natoms)} structures but the databases hold "
                                 f"{sum(self.counts)}")

    def tasks(self):
        out, offset = [], 0
        for f, n in zip(self.files, self.counts):
            if str(f) in self.broken:
                out.append((str(f), 0, 0, offset))
            out += [(str(f), a, min(a + self.chunk, n), offset) for a in range(0, n, self.chunk)]
            offset += n
        return out

    def inputs(self, task) -> list[str]:
        meta = Path(task[0]).parent / "metadata.npz"
        return [task[0]] + ([str(meta)] if self.natoms is not None else [])

    def read(self, task) -> Iterator[Structure | ReadError]:
        f, a, b, offset = task
        if f in self.broken:
            yield ReadError(f, None, self.broken[f])
            return
        try:
            db = connect(Path(f))
            ids = getattr(db, "ids", None)
            ids = db.row_ids(a, b) if ids is None else ids[a:b]
        except Exception as e:  # noqa: BLE001 - the file went bad after it was counted
            yield ReadError(f, None, f"{type(e).__name__}: {e}")
            return
        try:
            for i, rid in enumerate(ids, start=a):
                try:
                    yield self._structure(db._get_row(rid), f, i, offset)
                except Exception as e:  # noqa: BLE001 - one undecodable row
                    yield ReadError(f, i, f"{type(e).__name__}: {e}")
        finally:
            if hasattr(db, "close"):
                db.close()

    def _structure(self, row, f: str, i: int, offset: int) -> Structure:
        atoms = row.toatoms()
        if self.natoms is not None and len(atoms) != self.natoms[offset + i]:
            raise ValueError(f"{f} row {i}: {len(atoms)} atoms but metadata.npz says {self.natoms[offset + i]}")
        res = atoms.calc.results if atoms.calc is not None else {}
        data = row.data if isinstance(getattr(row, "data", None), dict) else {}
        group = data.get(self.group_key, row.key_value_pairs.get(self.group_key, f"{Path(f).stem}:{i}"))
        return Structure.from_atoms(
            atoms,
            energy=float(res.get("energy", np.nan)),
            forces=res.get("forces"),
            stress=res.get("stress"),
            source=self.name,
            group=str(group),
            info={"db": Path(f).name, "db_index": i,
                  **{k: v for k, v in data.items() if isinstance(v, (str, int, float))}},
            origin=f"{f}:{i}",
        )
