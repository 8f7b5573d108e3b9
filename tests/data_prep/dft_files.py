"""Small real DFT-style input files for data_prep tests: EMT-labelled Cu/Al frames as extxyz or ASE db."""
from __future__ import annotations

import hashlib
from pathlib import Path

import ase.db
import pyarrow.parquet as pq
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import write

LATTICE = {"Cu": 3.6, "Al": 4.05}


def frames(n: int, seed: int, element: str = "Cu", repeat=(1, 1, 1)) -> list:
    out = []
    for i in range(n):
        a = bulk(element, "fcc", a=LATTICE[element], cubic=True).repeat(repeat)
        a.rattle(0.05, seed=seed * 1000 + i)
        a.calc = EMT()
        e, f, s = a.get_potential_energy(), a.get_forces(), a.get_stress()
        a.calc = SinglePointCalculator(a, energy=e, forces=f, stress=s)
        out.append(a)
    return out


def write_xyz(path: Path, images) -> Path:
    write(str(path), images, format="extxyz")
    return path


def write_db(path: Path, images) -> Path:
    with ase.db.connect(str(path)) as db:
        for a in images:
            db.write(a)
    return path


def rows(root: Path, name: str = "manifest.parquet") -> list[dict]:
    return pq.read_table(root / name).to_pylist()


def output_bytes(root: Path) -> dict[str, str]:
    """sha256 of every file a build publishes (shards, manifest, quarantine, card)."""
    files = (sorted((root / "shards").glob("*.tar"))
             + [root / n for n in ("manifest.parquet", "quarantine.parquet", "card.json")])
    return {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in files}


def write_mlearn(path: Path, images) -> Path:
    """mlearn JSON (pymatgen-style structure dicts, VASP-style virial stress)."""
    import json

    entries = [{"structure": {"lattice": {"matrix": a.cell.array.tolist()},
                              "sites": [{"species": [{"element": s}], "xyz": p.tolist()}
                                        for s, p in zip(a.get_chemical_symbols(), a.positions)]},
                "outputs": {"energy": a.get_potential_energy(), "forces": a.get_forces().tolist(),
                            "virial_stress": [0.0] * 6},
                "group": "Rattled", "description": f"frame {i}"} for i, a in enumerate(images)]
    path.write_text(json.dumps(entries))
    return path
