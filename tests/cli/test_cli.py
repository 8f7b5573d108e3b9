"""The CLI contract: bad input ends in one line naming the problem and a non-zero exit, never a traceback."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path


REPO = Path(__file__).resolve().parents[2]


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "atomforge.pipeline.cli", *args], capture_output=True, text=True,
                          cwd=cwd or REPO, timeout=300)


def assert_one_line_error(p, *needles):
    assert p.returncode != 0
    err = [ln for ln in p.stderr.splitlines() if ln.startswith("atomforge: error:")]
    assert len(err) == 1, p.stderr
    assert "Traceback" not in p.stderr
    for n in needles:
        assert n in err[0], err[0]


def test_help_lists_every_stage():
    p = run_cli("--help")
    assert p.returncode == 0
    for stage in ("data", "train", "eval", "export", "sweep", "demo"):
        assert f"  {stage}" in p.stdout


def test_unknown_config_entry():
    assert_one_line_error(run_cli("train", "model=no_such_model"), "no_such_model")


def test_unknown_stage():
    p = run_cli("trian")
    assert p.returncode == 2 and "unknown stage 'trian'" in p.stderr


def test_missing_data_path(tmp_path):
    assert_one_line_error(run_cli("train", f"paths.data={tmp_path}/nowhere"), "no built dataset", "nowhere")


def test_shard_folder_without_shards(tmp_path):
    (tmp_path / "emt_demo" / "shards").mkdir(parents=True)
    assert_one_line_error(run_cli("train", f"paths.data={tmp_path}"), "no shards")


def test_missing_source_file(tmp_path):
    p = run_cli("data", "build", "data=mlearn_si", f"paths.data={tmp_path}",
                "data.build.sources.0.path=/nonexistent/training.json")
    assert_one_line_error(p, "/nonexistent/training.json")


def test_export_missing_run(tmp_path):
    assert_one_line_error(run_cli("export", f"run={tmp_path}/absent"), "run directory not found")
