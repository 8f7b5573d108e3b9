"""Every manifest row of a stored sample records the sha256 of its stored bytes (npz then json); a build whose task
parts predate the digests gets them from its shards on rerun, without redoing a task."""
from __future__ import annotations

import hashlib
import tarfile

import pyarrow.parquet as pq

from tests.conftest import build_dataset

SOURCES = [{"type": "emt", "elements": ["Cu", "Al"], "structures_per_task": 4, "per_kind": {"bulk": 8, "rattle": 8}}]


def stored_digests(root) -> dict[str, str]:
    out = {}
    for shard in sorted((root / "shards").glob("*.tar")):
        with tarfile.open(shard) as t:
            data = {m.name: t.extractfile(m).read() for m in t.getmembers()}
        for name in data:
            key = name.rsplit(".", 1)[0]
            out[key] = hashlib.sha256(data[f"{key}.npz"] + data[f"{key}.json"]).hexdigest()
    return out


def test_manifest_digest_is_the_sha256_of_the_stored_bytes(emt_dataset):
    rows = pq.read_table(emt_dataset / "manifest.parquet", columns=["key", "digest"]).to_pylist()
    quarantined = pq.read_table(emt_dataset / "quarantine.parquet", columns=["key", "shard", "digest"]).to_pylist()
    stored = stored_digests(emt_dataset)  # duplicates were stored too, before the merge found them
    assert rows and all(r["digest"] == stored[r["key"]] for r in rows + [q for q in quarantined if q["shard"]])
    from atomforge.data_prep.build import _error_row

    assert _error_row("src", "f.xyz:3", "read_error: bad")["digest"] == ""  # no stored bytes, no digest


def test_parts_without_digests_get_them_from_their_shards(tmp_path):
    from atomforge.data_prep.build import BuildConfig, build

    ref = build_dataset(tmp_path / "ref", SOURCES, workers=1)
    old = build_dataset(tmp_path / "old", SOURCES, workers=1)
    parts = sorted((old / "parts").glob("*.parquet"))
    for part in parts:  # as written before per-sample digests (the task fingerprint kept in the schema)
        pq.write_table(pq.read_table(part).drop_columns(["digest"]), part)
    (old / "manifest.parquet").unlink()
    assert build(BuildConfig(out=str(old), sources=SOURCES, workers=1), progress=False)["tasks_run"] == 0
    assert (old / "manifest.parquet").read_bytes() == (ref / "manifest.parquet").read_bytes()
    assert (old / "quarantine.parquet").read_bytes() == (ref / "quarantine.parquet").read_bytes()
