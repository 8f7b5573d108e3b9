"""What a finished task was built from, so a rerun redoes exactly the tasks whose inputs changed.

A task's fingerprint hashes its source spec, the task itself, the build settings its rows depend on (split
fractions and seed, validation, cutoff) and (path, size, mtime_ns) of every input file it reads. It is stored
in the schema metadata of the task's part, which is written last and atomically, so a part and the fingerprint
it was made from never disagree.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import asdict
from pathlib import Path

import pyarrow.parquet as pq

from atomforge.data_prep.split import SPLITS
from atomforge.data_prep.validate import ValidationConfig

META_KEY = b"atomforge.task_fingerprint"
FINGERPRINT_VERSION = 1
PART_RE = re.compile(r"^(\d{6})\.parquet$")
SHARD_RE = re.compile(rf"^({'|'.join(SPLITS)})-(\d{{6}})\.tar$")
TMP_RE = re.compile(r"^\.?(?:(?:train|val|test)-\d{6}\.tar|\d{6}\.parquet)(?:\.\d+)?\.tmp$")  # ours, any pid
ROOT_TMP_RE = re.compile(r"^(?:manifest\.parquet|quarantine\.parquet|card\.json)(?:\.\d+)?\.tmp$")


def _files_in(obj) -> list[str]:
    """Existing files named anywhere in a spec or task (strings, lists, dicts, dataclasses)."""
    if isinstance(obj, (str, os.PathLike)):
        try:
            return [str(obj)] if Path(obj).is_file() else []
        except (OSError, ValueError):
            return []
    if isinstance(obj, dict):
        return [f for v in obj.values() for f in _files_in(v)]
    if isinstance(obj, (list, tuple)):
        return [f for v in obj for f in _files_in(v)]
    if hasattr(obj, "__dataclass_fields__"):
        return _files_in(asdict(obj))
    return []


def task_inputs(src, spec: dict, task) -> list[str]:
    """The files a task reads: the source says so (`inputs(task)`), else every file its spec or task names."""
    own = getattr(src, "inputs", None)
    return sorted(set(own(task) if own is not None else _files_in(spec) + _files_in(task)))


def _stat(path: str) -> list:
    try:
        st = os.stat(path)
        return [os.path.abspath(path), st.st_size, st.st_mtime_ns]
    except OSError:
        return [os.path.abspath(path), None, None]


def fingerprint(src, spec: dict, task, fixed_split, cfg) -> str:
    doc = {
        "version": FINGERPRINT_VERSION,
        "spec": spec,
        "task": task,
        "fixed_split": fixed_split,
        "split": cfg.split,
        "seed": cfg.seed,
        "validation": asdict(ValidationConfig(**cfg.validation)),
        "cutoff": cfg.cutoff,
        "inputs": [_stat(p) for p in task_inputs(src, spec, task)],
    }
    text = json.dumps(doc, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()


def stored_fingerprint(part: Path) -> str | None:
    """The fingerprint a finished part was built from; None if there is no part or it predates fingerprints."""
    try:
        meta = pq.read_schema(part).metadata or {}
    except (OSError, ValueError):  # missing or unreadable part: not done
        return None
    v = meta.get(META_KEY)
    return v.decode() if v is not None else None


def remove_task_outputs(out: Path, tid: int) -> None:
    """Forget a task's part (first: it is the completion marker) and its shards, before redoing or dropping it."""
    (out / "parts" / f"{tid:06d}.parquet").unlink(missing_ok=True)
    for split in SPLITS:
        (out / "shards" / f"{split}-{tid:06d}.tar").unlink(missing_ok=True)


def drop_stale(out: Path, n_tasks: int) -> list[str]:
    """Remove what this build layout wrote for tasks that no longer exist, and temp files of dead writers
    (the caller holds the folder lock, so no live writer owns them). Only our own file names are touched."""
    removed = []
    for f in sorted((out / "parts").iterdir()):
        m = PART_RE.match(f.name)
        if (m and int(m.group(1)) >= n_tasks) or TMP_RE.match(f.name):
            f.unlink()
            removed.append(f"parts/{f.name}")
    for f in sorted((out / "shards").iterdir()):
        m = SHARD_RE.match(f.name)
        if (m and int(m.group(2)) >= n_tasks) or TMP_RE.match(f.name):
            f.unlink()
            removed.append(f"shards/{f.name}")
    for f in sorted(out.iterdir()):
        if f.is_file() and ROOT_TMP_RE.match(f.name):
            f.unlink()
            removed.append(f.name)
    return removed
