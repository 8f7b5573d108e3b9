"""ASE databases, including fairchem's `*.aselmdb` shards (OMat24/OMol25 layout) opened with fairchem's own
connector (read-only LMDB via ase-db-backends).

A folder in the fairchem layout also holds `metadata.npz` with `natoms` for every row of its databases in
sorted-file order; when present it is checked against what is read, so a stale or mismatched folder fails loudly.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np

from data_prep.structure import Structure

CHUNK = 1000


def connect(f: Path):
    if f.suffix == ".aselmdb":
        from fairchem.core.datasets.ase_datasets import AseDBDataset

        return AseDBDataset.connect_db(str(f))  # read-only, no lock file: safe from many processes
    import ase.db

    return ase.db.connect(str(f))


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
        self.counts = []
        for f in self.files:
            db = connect(f)
            self.counts.append(db.count())
            if hasattr(db, "close"):
                db.close()
        meta = p / "metadata.npz" if p.is_dir() else None
        self.natoms = None
        if meta is not None and meta.is_file():
            with np.load(meta) as m:
                self.natoms = np.asarray(m["natoms"])
            if len(self.natoms) != sum(self.counts):
                raise ValueError(f"{meta} lists {len(self.natoms)} structures but the databases hold {sum(self.counts)}")

    def tasks(self):
        out, offset = [], 0
        for f, n in zip(self.files, self.counts):
            out += [(str(f), a, min(a + self.chunk, n), offset) for a in range(0, n, self.chunk)]
            offset += n
        return out

    def read(self, task) -> Iterator[Structure]:
        f, a, b, offset = task
        db = connect(Path(f))
        ids = getattr(db, "ids", None)
        try:
            for i in range(a, b):
                row = db._get_row(ids[i]) if ids is not None else db.get(id=i + 1)
                atoms = row.toatoms()
                if self.natoms is not None and len(atoms) != self.natoms[offset + i]:
                    raise ValueError(f"{f} row {i}: {len(atoms)} atoms but metadata.npz says {self.natoms[offset + i]}")
                res = atoms.calc.results if atoms.calc is not None else {}
                data = row.data if isinstance(getattr(row, "data", None), dict) else {}
                group = data.get(self.group_key, row.key_value_pairs.get(self.group_key, f"{Path(f).stem}:{i}"))
                yield Structure.from_atoms(
                    atoms,
                    energy=float(res.get("energy", np.nan)),
                    forces=res.get("forces"),
                    stress=res.get("stress"),
                    source=self.name,
                    group=str(group),
                    info={"db": Path(f).name, "db_index": i,
                          **{k: v for k, v in data.items() if isinstance(v, (str, int, float))}},
                )
        finally:
            if hasattr(db, "close"):
                db.close()
