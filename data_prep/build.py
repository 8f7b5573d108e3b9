"""Build a dataset: sources -> validate -> shards per task (parallel, resumable) -> dedup + card (data_prep.finalize).

Layout of `out/`:
  shards/{split}-{task:06d}.tar   webdataset shards (one per task and split)
  parts/{task:06d}.parquet        manifest rows of a finished task (its completion marker, written last), with
                                  the fingerprint of the task's inputs in its schema metadata (data_prep.fingerprint)
  manifest.parquet                all usable rows; quarantine.parquet: rejected rows with reasons
  card.json                       counts, units, element references, statistics, provenance, hashes
  .build.lock                     held while a build runs (atomforge.data_prep.lock): one build per folder

A rerun redoes the tasks whose fingerprint changed and drops what it wrote for tasks that are gone. Temp files
carry the writer's pid. A record that cannot be read or checked becomes a quarantine row naming its file and
frame; the rest of the build goes on.
"""
from __future__ import annotations

import hashlib
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import webdataset as wds
from tqdm import tqdm

from atomforge.data_prep.finalize import finalize
from atomforge.data_prep.fingerprint import META_KEY, drop_stale, fingerprint, remove_task_outputs, stored_fingerprint
from atomforge.data_prep.integrity import sample_digest
from atomforge.data_prep.lock import OutputLock
from atomforge.data_prep.neighbors import neighbour_stats
from atomforge.data_prep.sample_codec import encode
from atomforge.data_prep.sources import make_source
from atomforge.data_prep.split import SPLITS, assign_split
from atomforge.data_prep.structure import ReadError
from atomforge.data_prep.schema import MANIFEST_SCHEMA
from atomforge.data_prep.validate import ValidationConfig, check
from atomforge.data_prep.workers import init_worker


@dataclass
class BuildConfig:
    out: str
    sources: list[dict]
    split: dict = field(default_factory=lambda: {"train": 0.8, "val": 0.1, "test": 0.1})
    seed: int = 0
    workers: int = 1
    cutoff: float = 6.0  # Å, for the neighbour statistics the model normalises with
    energy_outlier_sigma: float = 8.0  # quarantine |E/atom - refs| beyond this many robust std
    max_force: float | None = None  # eV/Å: quarantine structures with a larger force component (None: no cut)
    dedup: str = "global"  # "global": a copy anywhere is quarantined; "per_split": only copies within a split
    validation: dict = field(default_factory=dict)


def _row(s, key, split, shard, idx, reason, cutoff) -> dict:
    n_re = int((s.atom_fields["r"] == 0).sum()) if "r" in s.atom_fields and len(s.atom_fields["r"]) == s.n_atoms else 0
    zs, counts = np.unique(s.numbers, return_counts=True) if s.n_atoms else (np.array([]), np.array([]))
    f = s.forces
    finite_f = f is not None and f.shape == (s.n_atoms, 3) and np.isfinite(f).all()
    return {
        "key": key,
        "shard": shard,
        "index": idx,
        "n_atoms": s.n_atoms,
        "formula": s.formula() if reason is None else "",
        "elements": [str(x) for x in sorted({int(z) for z in zs})],
        "z": zs.astype(np.int64).tolist(),
        "counts": counts.astype(np.int64).tolist(),
        "source": s.source,
        "group": s.group,
        "split": split,
        "energy": float(s.energy) if s.energy is not None else float("nan"),
        "energy_per_atom": float(s.energy) / max(s.n_atoms, 1) if s.energy is not None else float("nan"),
        "max_force": float(np.abs(f).max()) if finite_f and f.size else float("nan"),
        "f_sq_sum": float((f**2).sum()) if finite_f else 0.0,
        "n_force_comp": int(f.size) if finite_f else 0,
        "has_stress": s.stress is not None,
        "n_re": n_re,
        "avg_neighbors": _avg_neighbors(s, cutoff) if reason is None else 0.0,
        "hash": s.structure_hash() if reason is None else "",
        "digest": "",  # set once the sample is encoded (only shard rows have stored bytes)
        "flags": ([reason] if reason is not None else []) + (["rare_event"] if n_re else []),
        "reason": reason,
    }


def _avg_neighbors(s, cutoff: float) -> float:
    return neighbour_stats(s, cutoff)[1]


def _error_row(source: str, where: str, reason: str) -> dict:
    """A quarantine row for a record that never became a Structure (unreadable frame or file, failed check)."""
    digest = hashlib.blake2b(f"{where}|{reason}".encode(), digest_size=10).hexdigest()
    src = "".join(c if c.isalnum() or c in "_" else "_" for c in source)
    return {"key": f"{src}-{digest}", "shard": "", "index": -1, "n_atoms": 0, "formula": "", "elements": [], "z": [],
            "counts": [], "source": source, "group": "", "split": "", "energy": float("nan"),
            "energy_per_atom": float("nan"), "max_force": float("nan"), "f_sq_sum": 0.0, "n_force_comp": 0,
            "has_stress": False, "n_re": 0, "avg_neighbors": 0.0, "hash": "", "digest": "",
            "flags": [reason.split(":")[0]], "reason": reason}


def _one_line(e: BaseException) -> str:
    return " ".join(f"{type(e).__name__}: {e}".split())[:300]


def _task_file(task) -> str:
    """The file a task reads, for naming it in a reason (the first path-like element), else the task itself."""
    for x in task if isinstance(task, (tuple, list)) else (task,):
        if isinstance(x, str):
            return x
    return repr(task)[:120]


def _where(s, task, i: int) -> str:
    """file:frame a record came from: its own `origin` where the source set it, else the task and position."""
    return getattr(s, "origin", "") or f"{_task_file(task)}:{i}"


def _records(src, task):
    """The task's records; an exception from the reader ends the task as one quarantine row naming the file
    and the frame it stopped at, keeping everything read before it."""
    n = 0
    try:
        for s in src.read(task):
            yield s
            n += 1
    except Exception as e:  # noqa: BLE001 - one bad record never sinks a build
        yield ReadError(_task_file(task), n, f"reader stopped: {_one_line(e)}")


def _run_task(args) -> str:
    out, tid, spec, task, split_fr, seed, vcfg, cutoff, fixed_split, fp = args
    out = Path(out)
    remove_task_outputs(out, tid)  # a redone task starts from nothing (its splits may differ from last time)
    src = make_source(spec)
    vc = ValidationConfig(**vcfg)
    writers, rows = {}, []
    counters = {k: 0 for k in SPLITS}
    tmp = {}
    pid = os.getpid()
    try:
        for i, s in enumerate(_records(src, task)):
            if isinstance(s, ReadError):
                rows.append(_error_row(src.name, f"{tid}:{i}", s.reason()))
                continue
            try:
                reason = check(s, vc, cutoff)
                key = s.key()
                if reason is not None:  # say where it came from, so the user can find the record
                    rows.append(_row(s, key, "", "", -1, f"{reason} at {_where(s, task, i)}", cutoff))
                    continue
                split = fixed_split or assign_split(s.group, split_fr, seed)
                shard = f"{split}-{tid:06d}.tar"
                row = _row(s, key, split, shard, counters[split], None, cutoff)
                sample = encode(s, key, split)
                row["digest"] = sample_digest(sample)
            except Exception as e:  # noqa: BLE001 - a record the checks themselves choke on is quarantined
                rows.append(_error_row(src.name, f"{tid}:{i}", f"invalid: {_where(s, task, i)}: {_one_line(e)}"))
                continue
            if split not in writers:
                tmp[split] = out / "shards" / f".{shard}.{pid}.tmp"
                writers[split] = wds.TarWriter(str(tmp[split]), mtime=0.0)
            writers[split].write(sample)
            rows.append(row)
            counters[split] += 1
    finally:
        for w in writers.values():
            w.close()
    for split, path in tmp.items():
        os.replace(path, out / "shards" / f"{split}-{tid:06d}.tar")
    part = out / "parts" / f"{tid:06d}.parquet"
    table = pa.Table.from_pylist(rows, schema=MANIFEST_SCHEMA).replace_schema_metadata({META_KEY: fp.encode()})
    part_tmp = f"{part}.{pid}.tmp"
    pq.write_table(table, part_tmp)
    os.replace(part_tmp, part)  # the task counts as done only once this exists
    return part.name


def _jobs(cfg: BuildConfig) -> list[tuple]:
    jobs = []
    for spec in cfg.sources:
        spec = dict(spec)
        fixed = spec.pop("split", None)
        if fixed is not None and fixed not in SPLITS:
            raise ValueError(f"source split must be one of {SPLITS}, got {fixed!r}")
        src = make_source(spec)
        for task in src.tasks():
            jobs.append((spec, task, fixed, fingerprint(src, spec, task, fixed, cfg)))
    return jobs


def build(cfg: BuildConfig, progress: bool = True) -> dict:
    out = Path(cfg.out)
    (out / "shards").mkdir(parents=True, exist_ok=True)
    (out / "parts").mkdir(exist_ok=True)
    with OutputLock(out):
        return _build_locked(cfg, out, progress)


def task_done(args) -> bool:
    """Whether a task's part exists and was built from these inputs (args as plan_tasks gives them)."""
    out, tid, fp = args[0], args[1], args[-1]
    return stored_fingerprint(Path(out) / "parts" / f"{tid:06d}.parquet") == fp


def plan_tasks(cfg: BuildConfig, out: Path) -> tuple[int, list[tuple]]:
    """(number of tasks, the _run_task arguments of those to (re)do); drops what stale tasks left. The caller
    holds the folder lock."""
    jobs = _jobs(cfg)
    drop_stale(out, len(jobs))
    todo = [(str(out), tid, spec, task, cfg.split, cfg.seed, cfg.validation, cfg.cutoff, fixed, fp)
            for tid, (spec, task, fixed, fp) in enumerate(jobs)]
    return len(jobs), [a for a in todo if not task_done(a)]  # missing, or built from other inputs


def _build_locked(cfg: BuildConfig, out: Path, progress: bool) -> dict:
    n_jobs, todo = plan_tasks(cfg, out)
    jobs = range(n_jobs)
    t0 = time.time()
    bar = tqdm(total=len(jobs), initial=len(jobs) - len(todo), desc="build tasks", unit="task", disable=not progress)
    if cfg.workers > 1 and len(todo) > 1:
        with ProcessPoolExecutor(cfg.workers, initializer=init_worker, initargs=(os.getpid(),)) as pool:
            for fut in as_completed([pool.submit(_run_task, a) for a in todo]):
                fut.result()
                bar.update()
    else:
        for a in todo:
            _run_task(a)
            bar.update()
    bar.close()
    summary = finalize(cfg, n_tasks=len(jobs))
    summary["build_seconds"] = time.time() - t0
    summary["tasks_run"] = len(todo)
    return summary
