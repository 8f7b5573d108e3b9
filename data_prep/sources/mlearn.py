"""mlearn JSON (Zuo et al. 2020): a list of {structure (pymatgen dict), outputs{energy, forces, virial_stress},
group}."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import json
import numpy as np

from atomforge.data_prep.structure import ReadError, Structure

KBAR_TO_EV_A3 = 1.0 / 1602.1766208  # 1 eV/Å^3 = 160.2 GPa = 1602.18 kbar


class MLearnSource:
    name = "mlearn"

    def __init__(self, path: str, name: str | None = None, chunk: int = 64, stress: bool = True, block: int = 0):
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"mlearn file not found: {self.path}")
        self.name = name or f"mlearn_{self.path.parent.name}_{self.path.stem}"
        self.chunk = chunk
        self.stress = stress
        self.block = int(block)  # > 0: a run's snapshots split into contiguous blocks of this many (see _group)
        self.error = None
        try:  # an unreadable file is quarantined whole by its one task, not a failed build
            with open(self.path) as f:
                self._n = len(json.load(f))
        except (OSError, ValueError, TypeError) as e:
            self._n, self.error = 0, f"{type(e).__name__}: {e}"

    def tasks(self) -> list[tuple[int, int]]:
        if self.error is not None:
            return [(0, 0)]
        return [(a, min(a + self.chunk, self._n)) for a in range(0, self._n, self.chunk)]

    def inputs(self, task) -> list[str]:
        return [str(self.path)]

    def read(self, task) -> Iterator[Structure | ReadError]:
        a, b = task
        if self.error is not None:
            yield ReadError(str(self.path), None, self.error)
            return
        with open(self.path) as f:
            every = json.load(f)
        ranks = _snapshot_ranks(every) if self.block > 0 else {}
        for i, e in enumerate(every[a:b], start=a):
            try:
                yield self._structure(e, i, ranks.get(i))
            except Exception as err:  # noqa: BLE001 - one malformed entry
                yield ReadError(str(self.path), i, f"{type(err).__name__}: {err}")

    def _structure(self, e: dict, i: int, rank: int | None = None) -> Structure:
        s = e["structure"]
        cell = np.asarray(s["lattice"]["matrix"], dtype=np.float64)
        from ase.data import atomic_numbers

        numbers = np.array([atomic_numbers[site["species"][0]["element"]] for site in s["sites"]], dtype=np.int64)
        pos = np.asarray([site["xyz"] for site in s["sites"]], dtype=np.float64)
        out = e["outputs"]
        stress = None
        if self.stress and out.get("virial_stress") is not None:
            # VASP prints XX YY ZZ XY YZ ZX in kbar with pressure positive in compression;
            # ASE's stress is the negative of that, in eV/Å^3.
            xx, yy, zz, xy, yz, zx = (float(v) for v in out["virial_stress"])
            sig = np.array([[xx, xy, zx], [xy, yy, yz], [zx, yz, zz]])
            stress = -sig * KBAR_TO_EV_A3
        return Structure(
            numbers=numbers,
            positions=pos,
            cell=cell,
            pbc=np.ones(3, dtype=bool),
            energy=float(out["energy"]),
            forces=np.asarray(out["forces"], dtype=np.float64),
            stress=stress,
            source=self.name,
            group=_group(e, self.block, rank),
            info={"group": e.get("group", ""), "tag": e.get("tag", ""), "index": i},
            origin=f"{self.path}:{i}",
        )


def _group(e: dict, block: int, rank: int | None) -> str:
    """AIMD snapshots of one run share a description prefix: each (group, run) is kept together, or with block > 0
    each block of `block` consecutive snapshots (by `rank` in the run), so that a hash split can put part of every
    run in val (mlearn sets have 2-12 runs per kind; whole runs left Si, Mo and Li near-equilibrium-only vals)."""
    key = _run_key(e)
    return key if block <= 0 or rank is None else f"{key}:block{rank // block}"


def _run_key(e: dict) -> str:
    return f"{e.get('group', '')}:{_run_id(e.get('description', ''))}"


def _snapshot_number(description: str) -> int | None:
    # "Snapshot 24000 of 100000 of <run>" -> 24000 (an MD step, not a count)
    head = description[len("Snapshot "):].split(" of ", 1)[0] if description.startswith("Snapshot ") else ""
    return int(head) if head.isdigit() else None


def _snapshot_ranks(entries: list) -> dict[int, int]:
    """Entry index -> its position among its run's snapshots in time order (entries that are no snapshot: none)."""
    runs: dict[str, list[tuple[int, int]]] = {}
    for i, e in enumerate(entries):
        n = _snapshot_number(e.get("description", "")) if isinstance(e, dict) else None
        if n is not None:
            runs.setdefault(_run_key(e), []).append((n, i))
    return {i: r for snaps in runs.values() for r, (_, i) in enumerate(sorted(snaps))}


def _run_id(description: str) -> str:
    # "Snapshot 1 of 32 of Vacancy AIMD NVT simulation at 300 K" -> "Vacancy AIMD NVT simulation at 300 K"
    if " of " in description and description.startswith("Snapshot"):
        return description.split(" of ", 2)[-1]
    return description
