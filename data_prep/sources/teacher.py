"""Generated structures labelled by a teacher named in config (atomforge.data_prep.teachers): EMT, SevenNet-0, CHGNet or
any importable ASE calculator class.

Prototypes (atomforge.data_prep.sources.prototypes) over the configured elements, distorted per kind (bulk, strain,
rattle, vacancy, interstitial, surface), plus short teacher MD: one Langevin replica per temperature, run in
lock-step so each step labels all replicas in one teacher call. A task's structures depend only on the task
(its seed), so the build is parallel and resumable; the teacher is built once per worker process.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Iterator

import numpy as np
from ase import units
from ase.data import atomic_numbers

from atomforge.data_prep.sources import prototypes
from atomforge.data_prep.sources.emt import _distance_to, _nearest_site
from atomforge.data_prep.structure import ReadError, Structure
from atomforge.data_prep.teachers import get_teacher, parse, provenance, weights_file

KINDS = ("bulk", "strain", "rattle", "vacancy", "interstitial", "surface", "md")


@dataclass(frozen=True)
class TeacherTask:
    kind: str
    index: int  # first structure of this task within its kind
    seed: int
    n: int
    teacher: str  # name, version and weights checksum: a new teacher redoes the task on rerun


def _task_seed(*parts) -> int:
    return int.from_bytes(hashlib.blake2b(repr(parts).encode(), digest_size=4).digest(), "little")


class TeacherSource:
    name = "teacher"

    def __init__(self, teacher: str = "emt", teacher_kwargs: dict | None = None, elements=None,
                 per_kind: dict | None = None, min_atoms: int = 16, max_atoms: int = 64,
                 md_temperatures=(300.0, 900.0, 1500.0), md_steps_between: int = 5, md_timestep_fs: float = 2.0,
                 md_friction_per_fs: float = 0.01, batch_atoms: int = 0, threads: int = 1, device: str = "cpu",
                 structures_per_task: int = 8, seed: int = 0, name: str = "teacher"):
        parse(teacher)  # one-line error for a malformed name, before any task runs
        self.teacher, self.teacher_kwargs = str(teacher), dict(teacher_kwargs or {})
        self.per_kind = dict(per_kind or {k: 8 for k in KINDS})
        unknown = set(self.per_kind) - set(KINDS)
        if unknown:
            raise ValueError(f"unknown teacher structure kinds {sorted(unknown)}; expected {KINDS}")
        if elements is None:
            elements = (prototypes.DEFAULT_ELEMENTS if parse(teacher)[0] != "emt"
                        else ("Al", "Cu", "Ag", "Au", "Ni", "Pd", "Pt"))
        bad = [e for e in elements if e not in atomic_numbers]
        if bad:
            raise ValueError(f"unknown elements {bad} in the teacher source")
        self.elements = [str(e) for e in elements]
        self.min_atoms, self.max_atoms = int(min_atoms), int(max_atoms)
        self.md_temperatures = tuple(float(t) for t in md_temperatures)
        self.md_steps_between, self.md_dt = int(md_steps_between), float(md_timestep_fs)
        self.md_friction = float(md_friction_per_fs)
        self.batch_atoms, self.threads, self.device = int(batch_atoms), int(threads), device
        self.per_task, self.seed, self.name = int(structures_per_task), int(seed), name

    def provenance(self) -> dict:
        """The teacher as the card should record it (name, package version, sha256 of its weights file)."""
        return provenance(self.teacher, json.dumps(self.teacher_kwargs, sort_keys=True))

    def _teacher_tag(self) -> str:
        p = self.provenance()
        return f"{p['name']}|{p['version']}|{p['weights_sha256']}"

    def tasks(self) -> list[TeacherTask]:
        tag, out = self._teacher_tag(), []
        for kind in KINDS:
            total = int(self.per_kind.get(kind, 0))
            for t in range(0, total, self.per_task):
                out.append(TeacherTask(kind, t, _task_seed(self.seed, kind, t), min(self.per_task, total - t), tag))
        return out

    def inputs(self, task) -> list[str]:
        w = weights_file(self.teacher)
        return [w] if w else []

    def locate(self, task: TeacherTask, i: int) -> str:
        return f"{self.teacher}:{task.kind}[{task.index + i}]"

    def _teacher(self):
        t = get_teacher(self.teacher, self.teacher_kwargs, self.device, self.threads)
        known = t.elements()
        if known is not None:
            missing = [e for e in self.elements if atomic_numbers[e] not in known]
            if missing:
                raise ValueError(f"teacher {self.teacher} does not know {missing}")
        return t

    def _info(self, task, extra: dict) -> dict:
        p = self.provenance()
        return {"kind": task.kind, "teacher": p["name"], "teacher_version": p["version"],
                "teacher_weights_sha256": p["weights_sha256"], **extra}

    def read(self, task: TeacherTask) -> Iterator[Structure]:
        rng = np.random.default_rng(task.seed)
        teacher = self._teacher()
        if task.kind == "md":
            yield from self._md(task, rng, teacher)
            return
        made = []
        for _ in range(task.n):
            proto, cell = prototypes.pick(self.elements, rng)
            cell = prototypes.supercell(cell, self.min_atoms, self.max_atoms)
            made.append((proto, prototypes.distort(cell, task.kind, rng, self.elements)))
        stress = [task.kind != "surface" for _ in made]  # a slab's stress is mostly its vacuum
        labels = teacher.label([a for _, a in made], stress, self.batch_atoms)
        for i, ((proto, atoms), lab) in enumerate(zip(made, labels)):
            if isinstance(lab, Exception):
                yield ReadError(f"{self.teacher}:{task.kind}", task.index + i, f"teacher failed: {lab}")
                continue
            yield Structure.from_atoms(atoms, energy=lab.energy, forces=lab.forces, stress=lab.stress,
                                       source=self.name, group=f"{task.kind}-{task.seed}-{i}",
                                       info=self._info(task, {"prototype": proto}))

    def _md(self, task: TeacherTask, rng, teacher) -> Iterator[Structure]:
        """Langevin (BAOAB) replicas, one per temperature, stepped together; a replica starts from a prototype
        supercell, half of them with a vacancy so hops (rare events) happen at the higher temperatures."""
        temps = self.md_temperatures
        reps, sites, protos = [], [], []
        for _ in temps:
            proto, cell = prototypes.pick(self.elements, rng)
            cell = prototypes.supercell(cell, self.min_atoms, self.max_atoms)
            sites.append(cell.positions.copy())
            if rng.random() < 0.5 and len(cell) > 2:
                del cell[int(rng.integers(len(cell)))]
            reps.append(cell)
            protos.append(proto)
        frames = -(-task.n // len(temps))
        dt = self.md_dt * units.fs
        c1 = np.exp(-self.md_friction / units.fs * dt)
        kts = [units.kB * t for t in temps]
        masses = [a.get_masses()[:, None] for a in reps]
        vel = [rng.normal(size=(len(a), 3)) * np.sqrt(kt / m) for a, kt, m in zip(reps, kts, masses)]
        labels = teacher.label(reps, [True] * len(reps), self.batch_atoms)
        prev = [_nearest_site(a, s)[0] for a, s in zip(reps, sites)]
        d_nn = [_spacing(s, a.cell.array) for a, s in zip(reps, sites)]
        alive = [not isinstance(lab, Exception) for lab in labels]
        done, out = set(), []  # done: replicas whose last frame (failed or blown up) was already given out
        for frame in range(frames):
            for _ in range(self.md_steps_between):
                for k, a in enumerate(reps):
                    if not alive[k]:
                        continue
                    m, v, f = masses[k], vel[k], labels[k].forces
                    v += 0.5 * dt * f / m
                    a.positions += 0.5 * dt * v
                    v[:] = c1 * v + np.sqrt((1 - c1**2) * kts[k] / m) * rng.normal(size=v.shape)
                    a.positions += 0.5 * dt * v
                new = teacher.label([a for k, a in enumerate(reps) if alive[k]], None, self.batch_atoms)
                live = [k for k in range(len(reps)) if alive[k]]
                for k, lab in zip(live, new):
                    if isinstance(lab, Exception) or not np.isfinite(lab.forces).all():
                        alive[k] = False  # a replica that blew up stops; its last frame goes to validation
                    else:
                        vel[k] += 0.5 * dt * lab.forces / masses[k]
                    labels[k] = lab
            for k, a in enumerate(reps):
                lab = labels[k]
                if k in done:
                    continue
                if not alive[k]:
                    done.add(k)
                if isinstance(lab, Exception):
                    out.append(ReadError(f"{self.teacher}:md", task.index + len(out), f"teacher failed: {lab}"))
                    continue
                site, off = _nearest_site(a, sites[k])
                hopped = ((site != prev[k]) | (off > 0.3 * d_nn[k])).astype(np.float64)
                prev[k] = site
                out.append(Structure.from_atoms(
                    a, energy=lab.energy, forces=lab.forces, stress=lab.stress, source=self.name,
                    group=f"md-{task.seed}-{k}",  # one trajectory: its frames stay in one split
                    atom_fields={"re": hopped, "r": _distance_to(a, hopped > 0)},
                    info=self._info(task, {"prototype": protos[k], "temperature_K": temps[k], "frame": frame,
                                           "replica": k})))
        yield from out[: task.n]


def _spacing(sites: np.ndarray, cell: np.ndarray) -> float:
    """Nearest-neighbour distance between lattice sites (minimum image)."""
    d = sites[:, None, :] - sites[None, :, :]
    frac = np.linalg.solve(cell.T, d.reshape(-1, 3).T).T
    frac -= np.round(frac)
    r = np.linalg.norm(frac @ cell, axis=1)
    return float(r[r > 1e-6].min())

