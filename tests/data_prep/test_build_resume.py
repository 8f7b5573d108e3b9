"""A build killed mid-way finishes on rerun without redoing finished tasks, byte-identical to an uninterrupted
build; a parallel build equals a serial one."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, build_dataset

SOURCES = [{"type": "emt", "elements": ["Cu", "Al"], "structures_per_task": 4,
            "per_kind": {"bulk": 8, "rattle": 8, "vacancy": 8, "md": 8}}]

# Runs the build in a child process that SIGKILLs itself while writing the 4th task's shard.
KILLER = """
import os, signal, sys
import atomforge.data_prep.build as b
done = {"tasks": 0, "samples": 0}
real_run, real_encode = b._run_task, b.encode
def run(args):
    out = real_run(args); done["tasks"] += 1; return out
def encode(*a, **k):
    if done["tasks"] == 3:
        done["samples"] += 1
        if done["samples"] == 2:
            os.kill(os.getpid(), signal.SIGKILL)
    return real_encode(*a, **k)
b._run_task, b.encode = run, encode
b.build(b.BuildConfig(out=sys.argv[1], sources=%r, workers=1), progress=False)
""" % (SOURCES,)


def files(root: Path) -> dict[str, bytes]:
    names = [p for p in (root / "shards").glob("*.tar")] + [root / "manifest.parquet", root / "quarantine.parquet"]
    return {p.name: p.read_bytes() for p in sorted(names)}


@pytest.mark.slow
def test_killed_build_resumes_byte_identical(tmp_path):
    ref = build_dataset(tmp_path / "ref", SOURCES, workers=1)
    out = tmp_path / "killed"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    p = subprocess.run([sys.executable, "-c", KILLER, str(out)], env=env, cwd=REPO)
    assert p.returncode == -9  # it really died mid-build
    parts = sorted((out / "parts").glob("*.parquet"))
    assert len(parts) == 3 and not (out / "manifest.parquet").exists()
    assert list((out / "shards").glob(".*.tmp")), "the interrupted task left a partial shard behind"
    before = {p.name: p.stat().st_mtime_ns for p in (out / "shards").glob("*.tar")}

    from atomforge.data_prep.build import BuildConfig, build

    summary = build(BuildConfig(out=str(out), sources=SOURCES, workers=1), progress=False)
    n_tasks = len(list((ref / "parts").glob("*.parquet")))
    assert summary["tasks_run"] == n_tasks - 3  # finished tasks were not redone
    for name, mtime in before.items():
        assert (out / "shards" / name).stat().st_mtime_ns == mtime, f"{name} was rewritten"
    assert files(out) == files(ref)
    assert not list((out / "shards").glob(".*.tmp"))
    # a rerun of a complete build does nothing
    assert build(BuildConfig(out=str(out), sources=SOURCES, workers=1), progress=False)["tasks_run"] == 0


@pytest.mark.slow
def test_parallel_build_equals_serial(tmp_path):
    a = build_dataset(tmp_path / "serial", SOURCES, workers=1)
    b = build_dataset(tmp_path / "parallel", SOURCES, workers=2)
    assert files(a) == files(b)
    ca, cb = (json.loads((r / "card.json").read_text()) for r in (a, b))
    for c in (ca, cb):  # where and how it was built is all that differs
        del c["name"], c["build_config"]["out"], c["build_config"]["workers"]
    assert ca == cb
