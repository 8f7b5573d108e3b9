"""Merge finished task parts into manifest.parquet, quarantine.parquet and card.json, one part at a time.

Passes over the parts (each reads only the columns it needs): duplicates by structure hash (first occurrence
in task order wins; spilled hash buckets), the force cut (`max_force`, from each row's recorded largest force
component, so changing it re-merges without relabelling anything), robust (Huber) element references on the
training rows, per-atom energy residuals (kept per part on disk) for a robust median/MAD outlier cut, the refit
on what is left, and the writing.
Peak memory is one part plus one hash bucket, whatever the number of structures.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from atomforge.data_prep import FORMAT_VERSION
from atomforge.data_prep.sources import make_source
from atomforge.data_prep.card import TrainStats, residual_per_atom
from atomforge.data_prep.external import duplicates, median
from atomforge.data_prep.fingerprint import SHARD_RE
from atomforge.data_prep.robust_refs import RobustReferences
from atomforge.data_prep.integrity import shard_digests, shard_hashes
from atomforge.data_prep.schema import MANIFEST_SCHEMA, UNITS
from atomforge.data_prep.split import SPLITS

DEDUP = ("global", "per_split")  # per_split: a published test set stays whole even where training repeats it
ROW_GROUP_ROWS = 16384
STAT_COLUMNS = ["split", "z", "counts", "energy", "n_atoms", "n_force_comp", "f_sq_sum", "avg_neighbors", "max_force"]


class Parts:
    """The task parts of a build and the per-part masks the passes compute."""

    def __init__(self, out: Path, n_tasks: int, max_force: float | None = None):
        self.max_force = max_force
        self.paths = [out / "parts" / f"{t:06d}.parquet" for t in range(n_tasks)]
        self.dups: dict[int, np.ndarray] = {}
        self.tmp = out / f".finalize.{os.getpid()}"
        for old in out.glob(".finalize*"):  # left by a killed build (the caller holds the folder lock)
            if old.is_dir() and (old.name == ".finalize" or old.name[len(".finalize."):].isdigit()):
                shutil.rmtree(old, ignore_errors=True)
        self.tmp.mkdir()

    def read(self, i: int, columns=None) -> pa.Table:
        return pq.read_table(self.paths[i], columns=columns).replace_schema_metadata(None)  # drop the fingerprint

    def valid(self, i: int, t: pa.Table) -> np.ndarray:
        """Rows that passed validation and are not duplicates."""
        keep = pc.is_null(t.column("reason")).to_numpy(zero_copy_only=False)
        keep[self.dups.get(i, [])] = False
        return keep

    def usable(self, i: int, t: pa.Table) -> np.ndarray:
        """Valid rows within the force cut: the rows the references and the energy cut are computed on."""
        return self.valid(i, t) & ~self.too_hot(t)

    def too_hot(self, t: pa.Table) -> np.ndarray:
        """Rows whose largest force component is above `max_force` (eV/Å); none without a cut."""
        if self.max_force is None:
            return np.zeros(t.num_rows, bool)
        return np.nan_to_num(t.column("max_force").to_numpy(zero_copy_only=False), nan=0.0) > self.max_force

    def residuals(self, i: int) -> np.ndarray:
        return np.load(self.tmp / f"res-{i:06d}.npy")

    def all_residuals(self):
        return (self.residuals(i) for i in range(len(self.paths)))


def finalize(cfg, n_tasks: int) -> dict:
    """Dedup, cut force outliers, fit references, quarantine energy outliers, write manifest, quarantine and card."""
    out = Path(cfg.out)
    parts = Parts(out, n_tasks, cfg.max_force)
    n_rows = sum(pq.ParquetFile(p).metadata.num_rows for p in parts.paths)

    if cfg.dedup not in DEDUP:
        raise ValueError(f"dedup must be one of {DEDUP}, got {cfg.dedup!r}")

    def hashes():
        for i in range(n_tasks):
            t = parts.read(i, ["hash", "reason", "split"])
            ok = np.flatnonzero(pc.is_null(t.column("reason")).to_numpy(zero_copy_only=False))
            split = t.column("split").take(ok).to_pylist()
            scope = [SPLITS.index(s) + 1 if cfg.dedup == "per_split" else 0 for s in split]
            yield i, t.column("hash").take(ok).to_pylist(), ok, scope

    parts.dups = duplicates(hashes(), n_rows, parts.tmp)

    first = RobustReferences(parts.tmp)  # references before the outlier cut: robust, or the outliers hide in them
    for i in range(n_tasks):
        t = parts.read(i, STAT_COLUMNS + ["reason"])
        first.add(_train(t.filter(parts.usable(i, t))))
    refs = first.solve()
    n_usable = 0
    for i in range(n_tasks):  # residuals of every usable row, all splits
        t = parts.read(i, STAT_COLUMNS + ["reason"])
        res = residual_per_atom(t.filter(parts.usable(i, t)), refs)
        np.save(parts.tmp / f"res-{i:06d}.npy", res)
        n_usable += res.size
    med = median(parts.all_residuals, n_usable)
    mad = 1.4826 * median(lambda: (np.abs(r - med) for r in parts.all_residuals()), n_usable) + 1e-6
    cut = cfg.energy_outlier_sigma * max(mad, 1e-3)

    def split_rows(i: int, t: pa.Table) -> tuple[pa.Table, pa.Table, pa.Table, pa.Table]:
        """(kept, duplicates, energy outliers, force outliers) of one part."""
        valid = parts.valid(i, t)
        hot = valid & parts.too_hot(t)
        usable = valid & ~hot
        outlier = np.zeros(t.num_rows, bool)
        outlier[np.flatnonzero(usable)] = np.abs(parts.residuals(i) - med) > cut
        dup = np.zeros(t.num_rows, bool)
        dup[parts.dups.get(i, [])] = True
        return t.filter(usable & ~outlier), t.filter(dup), t.filter(outlier), t.filter(hot)

    final = TrainStats()  # the refit without outliers
    for i in range(n_tasks):
        t = parts.read(i, STAT_COLUMNS + ["reason"])
        final.add(_train(split_rows(i, t)[0]))
    refs = final.refs()

    counts, atoms, reasons = dict.fromkeys(SPLITS, 0), dict.fromkeys(SPLITS, 0), {}
    man_tmp, qua_tmp = out / f"manifest.parquet.{os.getpid()}.tmp", out / f"quarantine.parquet.{os.getpid()}.tmp"
    with RowGroups(man_tmp) as man, RowGroups(qua_tmp) as qua:
        for i in range(n_tasks):
            t = _with_digests(parts.read(i), out)
            kept, dup, outl, hot = split_rows(i, t)
            man.write(kept)
            final.add_residuals(_train(kept), refs)
            for s in SPLITS:
                rows = kept.filter(pc.equal(kept.column("split"), s))
                counts[s] += rows.num_rows
                atoms[s] += int(pc.sum(rows.column("n_atoms")).as_py() or 0)
            for q in (t.filter(pc.is_valid(t.column("reason"))), _reason(dup, "duplicate"),
                      _reason(outl, "energy_outlier"),
                      _reason(hot, [f"force_outlier: max |F| component {f:.4g} > max_force {cfg.max_force:g} eV/Å"
                                    for f in hot.column("max_force").to_pylist()])):
                qua.write(q)
                for r in q.column("reason").to_pylist():
                    kind = r.split(":")[0].split(" ")[0]  # "bad_stress at f.xyz:3" and "read_error: ..." count by kind
                    reasons[kind] = reasons.get(kind, 0) + 1
    os.replace(qua_tmp, out / "quarantine.parquet")
    os.replace(man_tmp, out / "manifest.parquet")
    shutil.rmtree(parts.tmp, ignore_errors=True)

    shard_files = sorted(f for f in (out / "shards").glob("*.tar") if SHARD_RE.match(f.name))  # ours only
    quarantined = sum(reasons.values())
    card = {
        "format_version": FORMAT_VERSION,
        "name": out.name,
        "units": UNITS,
        "counts": counts,
        "atoms": atoms,
        "quarantined": quarantined,
        "quarantine_reasons": reasons,
        "shards": {s: sorted(f.name for f in shard_files if f.name.startswith(s + "-")) for s in SPLITS},
        "cutoff": cfg.cutoff,
        "statistics_from": "train split, after dedup and quarantine",
        **final.result(refs),
        "sources": cfg.sources,
        "teachers": teachers(cfg.sources),
        "build_config": asdict(cfg),
        "content_hash": content_hash(shard_files),
        "shard_sha256": shard_hashes(shard_files),  # checked by the readers as each shard streams in
    }
    card_tmp = out / f"card.json.{os.getpid()}.tmp"
    card_tmp.write_text(json.dumps(card, indent=1, sort_keys=True))
    os.replace(card_tmp, out / "card.json")
    return {"out": str(out), "counts": counts, "quarantined": quarantined, "reasons": reasons}


class RowGroups:
    """A Parquet writer that gathers small per-part tables into row groups of ROW_GROUP_ROWS: a file's
    metadata, held in memory until it is closed, grows with its number of row groups, not rows."""

    def __init__(self, path: Path):
        self.writer = pq.ParquetWriter(path, MANIFEST_SCHEMA)
        self.pending: list[pa.Table] = []
        self.rows = 0

    def write(self, t: pa.Table) -> None:
        if not t.num_rows:  # most parts quarantine nothing: empty tables piling up here grew with the dataset
            return
        self.pending.append(t)
        self.rows += t.num_rows
        if self.rows >= ROW_GROUP_ROWS:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            self.writer.write_table(pa.concat_tables(self.pending), row_group_size=max(self.rows, 1))
        self.pending, self.rows = [], 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.flush()
        self.writer.close()


def _with_digests(t: pa.Table, out: Path) -> pa.Table:
    """A part written before per-sample digests gets them from its shards (the same bytes the card hashes), so
    a resumed build does not redo its tasks."""
    if "digest" in t.column_names:
        return t
    found: dict[str, str] = {}
    shards = t.column("shard").to_pylist()
    for shard in sorted(set(shards) - {""}):
        found.update(shard_digests(out / "shards" / shard))
    col = pa.array([found.get(k, "") if sh else "" for k, sh in zip(t.column("key").to_pylist(), shards)], pa.string())
    return t.append_column("digest", col).select(MANIFEST_SCHEMA.names)


def _train(t: pa.Table) -> pa.Table:
    return t.filter(pc.equal(t.column("split"), "train"))


def _reason(t: pa.Table, reason: str | list[str]) -> pa.Table:
    """`t` with its reason column set: one reason for every row, or one per row."""
    reasons = [reason] * t.num_rows if isinstance(reason, str) else reason
    return t.set_column(t.schema.get_field_index("reason"), "reason", pa.array(reasons, pa.string()))


def content_hash(files) -> str:
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode())
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def teachers(sources: list[dict]) -> list[dict]:
    """Who labelled the generated structures: each teacher source's name, package version and weights sha256."""
    out = []
    for spec in sources:
        if spec.get("type") == "teacher":
            out.append(make_source({k: v for k, v in spec.items() if k != "split"}).provenance())
    return out
