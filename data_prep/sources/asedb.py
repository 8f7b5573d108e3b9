"""ASE databases, including fairchem's `*.aselmdb` shards (OMat24/OMol25 layout) via fairchem's backend."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np

from data_prep.structure import Structure

CHUNK = 1000


class AseDBSource:
    name = "asedb"

    def __init__(self, path: str, name: str | None = None, chunk: int = CHUNK):
        p = Path(path)
        if p.is_dir():
            self.files = sorted(list(p.glob("*.aselmdb")) + list(p.glob("*.db")))
        else:
            self.files = [p]
        if not self.files or not all(f.exists() for f in self.files):
            raise FileNotFoundError(f"no ASE database (*.aselmdb, *.db) at {path}")
        self.name = name or f"db_{p.stem}"
        self.chunk = chunk

    def _connect(self, f: Path):
        from fairchem.core.datasets._utils import rename_data_object_keys  # noqa: F401  (registers nothing; import check)
        import ase.db

        if f.suffix == ".aselmdb":
            from fairchem.core.datasets.ase_datasets import connect_db

            return connect_db(f, readonly=True)
        return ase.db.connect(str(f))

    def tasks(self):
        out = []
        for f in self.files:
            with self._connect(f) as db:
                n = db.count()
            out += [(str(f), a, min(a + self.chunk, n)) for a in range(0, n, self.chunk)]
        return out

    def read(self, task) -> Iterator[Structure]:
        f, a, b = task
        db = self._connect(Path(f))
        ids = getattr(db, "ids", None)
        for i in range(a, b):
            row = db._get_row(ids[i]) if ids is not None else db.get(id=i + 1)
            atoms = row.toatoms()
            res = atoms.calc.results if atoms.calc is not None else {}
            yield Structure.from_atoms(
                atoms,
                energy=float(res.get("energy", np.nan)),
                forces=res.get("forces"),
                stress=res.get("stress"),
                source=self.name,
                group=str(row.data.get("sid", row.key_value_pairs.get("sid", f"{Path(f).stem}:{i}")) if hasattr(row, "data") else f"{Path(f).stem}:{i}"),
                info={"db_index": i},
            )
        if hasattr(db, "close"):
            db.close()
