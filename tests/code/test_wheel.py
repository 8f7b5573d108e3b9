"""The built wheel is what an installed user gets: one import name (atomforge), slurm/ in it, and cluster=slurm
finding it outside a checkout."""
from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from atomforge.pipeline.train import submit

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_wheel_ships_slurm_scripts_and_configs(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path), str(REPO)], check=True, capture_output=True, timeout=600)
    (whl,) = tmp_path.glob("atomforge-*.whl")
    names = zipfile.ZipFile(whl).namelist()
    for f in ("train.sbatch", "sweep_array.sbatch"):
        assert any(n.endswith(f"/data/share/atomforge/slurm/{f}") for n in names), f
    assert "atomforge/configs/train/default.yaml" in names and "atomforge/__init__.py" in names
    assert "atomforge/pipeline/cli.py" in names and "atomforge/data_prep/build.py" in names
    # one import name: nothing but atomforge and its metadata at the top of site-packages
    tops = {n.split("/")[0] for n in names}
    assert tops == {"atomforge", *(t for t in tops if t.startswith("atomforge-0."))}, tops


def test_slurm_scripts_found_in_an_installed_prefix(tmp_path, monkeypatch):
    # a checkout: its own slurm/ and the checkout as the jobs' directory
    assert submit.slurm_script("train.sbatch") == REPO / "slurm" / "train.sbatch" and submit.job_dir() == REPO
    # installed: no checkout around the package, the scripts under <prefix>/share/atomforge/slurm, jobs start in cwd
    site, prefix = tmp_path / "site", tmp_path / "prefix"
    (prefix / submit.WHEEL_SLURM).mkdir(parents=True)
    (prefix / submit.WHEEL_SLURM / "train.sbatch").write_text("#!/bin/bash\n")
    monkeypatch.setattr(submit.sysconfig, "get_path", lambda name: str(prefix))
    monkeypatch.chdir(tmp_path)
    assert submit.slurm_script("train.sbatch", repo=site) == prefix / submit.WHEEL_SLURM / "train.sbatch"
    assert submit.job_dir(repo=site) == tmp_path
    with pytest.raises(FileNotFoundError, match="reinstall atomforge"):
        submit.slurm_script("sweep_array.sbatch", repo=site)
