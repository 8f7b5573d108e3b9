"""The one in-memory record every source yields and every shard stores."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
from ase import Atoms


@dataclass
class Structure:
    """A labelled structure. Units: eV, Å, eV/Å; stress eV/Å^3 (3x3, ASE sign convention)."""

    numbers: np.ndarray  # (n,) int
    positions: np.ndarray  # (n, 3) Å
    cell: np.ndarray  # (3, 3) Å
    pbc: np.ndarray  # (3,) bool
    energy: float  # total, eV
    forces: np.ndarray | None = None  # (n, 3) eV/Å
    stress: np.ndarray | None = None  # (3, 3) eV/Å^3
    source: str = ""
    group: str = ""  # trajectory / family; splits never cut a group
    atom_fields: dict[str, np.ndarray] = field(default_factory=dict)  # extra per-atom arrays (r, forces_k1, ...)
    info: dict = field(default_factory=dict)  # small JSON-able metadata
    origin: str = ""  # "file:frame" it was read from, for quarantine reasons; not stored in shards

    @property
    def n_atoms(self) -> int:
        return int(len(self.numbers))

    def to_atoms(self) -> Atoms:
        return Atoms(numbers=self.numbers, positions=self.positions, cell=self.cell, pbc=self.pbc)

    @classmethod
    def from_atoms(cls, atoms: Atoms, energy: float, forces=None, stress=None, **kw) -> "Structure":
        if stress is not None:
            stress = np.asarray(stress, dtype=np.float64)
            if stress.shape == (6,):  # ASE Voigt xx yy zz yz xz xy
                xx, yy, zz, yz, xz, xy = stress
                stress = np.array([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]])
        return cls(
            numbers=np.asarray(atoms.numbers, dtype=np.int64),
            positions=np.asarray(atoms.positions, dtype=np.float64),
            cell=np.asarray(atoms.cell.array, dtype=np.float64),
            pbc=np.asarray(atoms.pbc, dtype=bool),
            energy=float(energy),
            forces=None if forces is None else np.asarray(forces, dtype=np.float64),
            stress=stress,
            **kw,
        )

    def formula(self) -> str:
        return self.to_atoms().get_chemical_formula(mode="hill")

    def structure_hash(self, decimals: int = 3) -> str:
        """Composition + positions rounded in a canonical frame: equal structures hash alike whatever the atom
        order, a rigid translation or a lattice-vector shift.

        Periodic: fractional coordinates relative to each atom of the least abundant element in turn (wrapped,
        rounded, rows sorted); the smallest digest is the hash, so the choice of origin atom does not matter.
        Open boundaries: Cartesian positions relative to the centroid.
        """
        if self.pbc.any() and abs(np.linalg.det(self.cell)) > 1e-8:
            frac = np.linalg.solve(self.cell.T, self.positions.T).T
            zs, counts = np.unique(self.numbers, return_counts=True)
            origins = np.flatnonzero(self.numbers == zs[counts.argmin()])
            cell = np.round(self.cell, decimals).tobytes()
            return min(self._digest(frac - frac[o], cell, decimals) for o in origins)
        return self._digest(self.positions - self.positions.mean(0), b"", decimals)

    def _digest(self, coords: np.ndarray, prefix: bytes, decimals: int) -> str:
        if prefix:  # periodic directions wrap to [0, 1), after rounding so 0.9999 and 0.0 agree
            coords = np.where(self.pbc, coords % 1.0, coords)
            coords = np.round(coords, decimals)
            coords = np.where(self.pbc, coords % 1.0, coords)
        else:
            coords = np.round(coords, decimals)
        coords = coords + 0.0  # -0.0 -> 0.0
        rows = np.concatenate([self.numbers[:, None].astype(np.float64), coords], axis=1)
        rows = rows[np.lexsort(rows.T[::-1])]
        h = hashlib.blake2b(prefix, digest_size=12)
        h.update(np.ascontiguousarray(rows).tobytes())
        return h.hexdigest()

    def key(self) -> str:
        """Stable unique sample key `{source}-{content hash}`; no dots (webdataset splits keys on them)."""
        h = hashlib.blake2b(digest_size=10)
        for a in (self.numbers, self.positions, self.cell):
            h.update(np.ascontiguousarray(a).tobytes())
        h.update(np.float64(self.energy).tobytes())
        src = "".join(c if c.isalnum() or c in "_" else "_" for c in self.source)
        return f"{src}-{h.hexdigest()}"


@dataclass
class ReadError:
    """What a source yields for a record it cannot read (one frame, or a whole file when `frame` is None): the
    build quarantines it with a reason naming the file and frame and goes on with the rest."""

    file: str
    frame: int | None
    message: str

    def reason(self) -> str:
        where = f"{self.file}:{self.frame}" if self.frame is not None else f"{self.file}:*"
        msg = " ".join(str(self.message).split())[:300] or "unreadable"
        return f"read_error: {where}: {msg}"
