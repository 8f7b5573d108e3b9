"""Extended XYZ (as exported for MPtrj, MatPES, Alexandria).

Labels come from `energy_key` / `forces_key` / `stress_key`: the configured name wins over ASE's calculator
fields, so `energy_key: REF_energy` is honoured even where a frame also has a plain `energy`.

The file is split into frames by its atom-count lines and each frame is parsed by ASE on its own, so one bad
frame (unknown symbol, garbage line, wrong column count) is one ReadError naming file and frame, and the
reader resyncs on the next atom-count line; a truncated last frame keeps every frame before it.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Iterator

import numpy as np
from ase.io import read

from atomforge.data_prep.structure import ReadError, Structure


def _count(line: str) -> int | None:
    """The atom count if `line` is an XYZ frame header (a lone non-negative integer)."""
    t = line.strip()
    return int(t) if t.isdigit() else None


def frames(path: str) -> Iterator[tuple[int, str | ReadError]]:
    """(frame index, frame text or ReadError), one frame in memory at a time."""
    with open(path, encoding="utf-8", errors="replace") as fh:  # binary junk becomes a parse error, not a crash
        line, lineno, i = fh.readline(), 1, 0
        while line:
            n = _count(line)
            if n is None:
                if not line.strip():
                    line, lineno = fh.readline(), lineno + 1
                    continue
                yield i, ReadError(path, i, f"line {lineno}: expected an atom count, got {line.strip()[:40]!r}")
                i += 1
                while line and _count(line) is None:  # resync on the next header
                    line, lineno = fh.readline(), lineno + 1
                continue
            start, body = lineno, [line]
            comment = fh.readline()
            lineno += 1
            nxt = None
            if comment:
                body.append(comment)
                while len(body) < n + 2:
                    atom = fh.readline()
                    lineno += 1
                    if not atom:
                        break
                    if _count(atom) is not None:  # a header inside the atoms block: this frame is cut short
                        nxt = atom
                        break
                    body.append(atom)
            if len(body) < n + 2:
                yield i, ReadError(path, i, f"truncated: frame at line {start} has {max(len(body) - 2, 0)} of {n} "
                                            "atom lines")
            else:
                yield i, "".join(body)
            i += 1
            if nxt is not None:
                line = nxt
            else:
                line, lineno = fh.readline(), lineno + 1


def _label(atoms, results: dict, key: str, table: dict):
    """A label by its configured name: ASE moves standard names (energy, forces, stress) to the calculator."""
    if key in table:
        return table[key]
    return results.get(key)


class ExtXYZSource:
    name = "extxyz"

    def __init__(self, path: str, name: str | None = None, energy_key: str = "energy", forces_key: str = "forces",
                 stress_key: str = "stress", group_key: str | None = None):
        p = Path(path)
        self.files = sorted(p.glob("*.extxyz")) + sorted(p.glob("*.xyz")) if p.is_dir() else [p]
        if not self.files or not all(f.is_file() for f in self.files):
            raise FileNotFoundError(f"no extxyz files at {path}")
        self.name = name or f"xyz_{p.stem}"
        self.energy_key, self.forces_key, self.stress_key = energy_key, forces_key, stress_key
        self.group_key = group_key

    def tasks(self):
        return [str(f) for f in self.files]

    def inputs(self, task) -> list[str]:
        return [task]

    def read(self, task) -> Iterator[Structure | ReadError]:
        for i, text in frames(task):
            if isinstance(text, ReadError):
                yield text
                continue
            try:
                yield self._structure(read(io.StringIO(text), format="extxyz"), task, i)
            except KeyError as e:  # ASE's way of saying it does not know a symbol (or a column)
                yield ReadError(task, i, f"unknown element symbol or key {e}")
            except Exception as e:  # noqa: BLE001 - one frame's problem, whatever ASE raised
                yield ReadError(task, i, f"{type(e).__name__}: {e}")

    def _structure(self, atoms, task: str, i: int) -> Structure:
        res = dict(atoms.calc.results) if atoms.calc is not None else {}
        energy = _label(atoms, res, self.energy_key, atoms.info)
        if energy is not None and np.size(energy) != 1:
            raise ValueError(f"{self.energy_key} has {np.size(energy)} values, expected 1")
        forces = _label(atoms, res, self.forces_key, atoms.arrays)
        stress = _label(atoms, res, self.stress_key, atoms.info)
        if stress is not None and np.size(stress) not in (6, 9):
            raise ValueError(f"{self.stress_key} has {np.size(stress)} values, expected 6 (Voigt) or 9")
        group = f"{Path(task).stem}:{i}"
        if self.group_key:
            group = str(atoms.info.get(self.group_key, group))
        return Structure.from_atoms(
            atoms,
            energy=np.nan if energy is None else float(np.asarray(energy).reshape(())),
            forces=forces,
            stress=stress,
            source=self.name,
            group=group,
            info={k: v for k, v in atoms.info.items() if isinstance(v, (str, int, float))},
            origin=f"{task}:{i}",
        )
