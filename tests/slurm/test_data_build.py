"""`atomforge data build cluster=slurm` on the real SLURM controller: the tasks run as a submitit job array,
the merge as a dependent job; an element killed mid-task is resubmitted, and the dataset is byte-identical
to a local build of the same config."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow
HYDRA_SOURCES = ("data.build.sources=[{type: python, target: 'tests.slurm.flaky_source:FlakyEMT', elements: [Cu, Al], "
                 "per_kind: {bulk: 4, rattle: 4, vacancy: 4}, structures_per_task: 4}]")


def outputs(root: Path) -> dict[str, bytes]:
    names = (sorted((root / "shards").glob("*.tar"))
             + [root / n for n in ("manifest.parquet", "quarantine.parquet", "card.json")])
    return {p.name: p.read_bytes() for p in names if p.is_file()}


def cli_build(slurm, out: Path, *extra, env_extra=None, rc=0) -> subprocess.CompletedProcess:
    env = dict(slurm.env, PYTHONPATH=str(REPO), **({"ATOMFORGE_DEBUG": "1"} if rc == 0 else {}), **(env_extra or {}))
    res = subprocess.run([sys.executable, "-m", "atomforge.pipeline.cli", "data", "build", f"data.root={out}",
                          HYDRA_SOURCES,
                          *extra], env=env, capture_output=True, text=True, cwd=REPO, timeout=600)
    assert res.returncode == rc, res.stderr[-3000:] + res.stdout[-2000:]
    return res


def test_slurm_build_retries_and_matches_local(slurm, tmp_path):
    out, marker = tmp_path / "ds", tmp_path / "fail-once"
    cli_build(slurm, out)  # the same command, local (the card records the folder, so both builds use the same one)
    want, n_tasks = outputs(out), len(list((out / "parts").glob("*.parquet")))
    shutil.rmtree(out)
    marker.write_text("")
    res = cli_build(slurm, out, "cluster=slurm", "cluster.data.poll_s=0.5",
                    env_extra={"ATOMFORGE_TEST_FAIL_ONCE": str(marker)})
    assert not marker.exists(), "no array element took the failure"
    summary = json.loads(res.stdout[res.stdout.index("{"):res.stdout.rindex("}") + 1])
    assert n_tasks == 6 and summary["tasks_run"] == n_tasks
    assert len(summary["slurm"]["retried"]) == 1 and len(summary["slurm"]["retried"][0]) == 1, summary["slurm"]
    assert len(summary["slurm"]["arrays"]) == 2 and "resubmitting 1 failed task(s)" in res.stdout
    got = outputs(out)
    assert sorted(got) == sorted(want) and len(want) >= 5
    for name in want:
        assert got[name] == want[name], f"{name} differs from the local build's"
    assert not (out / ".build.lock").exists()
    assert slurm.job(summary["slurm"]["merge_job"])["JobState"] == "COMPLETED"
    first = slurm.job(summary["slurm"]["arrays"][0])  # an array's first element stands for it in scontrol
    assert first["JobState"] in ("COMPLETED", "FAILED")


def test_slurm_build_out_of_retries_fails_in_one_line(slurm, tmp_path):
    out, marker = tmp_path / "ds", tmp_path / "fail-once"
    marker.write_text("")
    res = cli_build(slurm, out, "cluster=slurm", "cluster.data.poll_s=0.5", "cluster.data.retries=0",
                    env_extra={"ATOMFORGE_TEST_FAIL_ONCE": str(marker)}, rc=2)
    err = res.stderr.strip().splitlines()
    assert (len(err) == 1 and "1 task(s) still failed after 0 retries" in err[0]
            and "killed without a result" in err[0]), err
    assert not (out / "manifest.parquet").exists() and not (out / ".build.lock").exists()
    assert len(list((out / "parts").glob("*.parquet"))) == 5  # the others finished: a rerun redoes only the one
