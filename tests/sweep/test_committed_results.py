"""`sweep run`/`fit` never replaces committed results (results/scaling-emt) unless told to."""
from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
COMMITTED = REPO / "results" / "scaling-emt"


def digest() -> dict:
    return {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in sorted(COMMITTED.iterdir()) if f.is_file()}


def test_fit_into_committed_results_is_refused():
    from atomforge.pipeline.sweep.cli import committed_files

    assert "fit.json" in committed_files(COMMITTED)
    before = digest()
    p = subprocess.run([sys.executable, "-m", "atomforge.pipeline.cli", "sweep", "fit", "sweep=emt_demo"], cwd=REPO,
                       capture_output=True, text=True, timeout=120)
    err = p.stderr.strip().splitlines()
    assert p.returncode == 2 and err and "holds committed results" in err[-1] and "sweep.overwrite=true" in err[-1]
    assert digest() == before


def test_untracked_report_dir_is_written(tmp_path):
    from atomforge.pipeline.sweep.cli import committed_files

    assert committed_files(tmp_path) == []
