"""bench/md_throughput.py in its CPU test mode: the same code paths as the real run, in seconds."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_md_throughput_quick_mode_measures_ours_and_the_peer(tmp_path):
    out = tmp_path / "md.json"
    subprocess.run([sys.executable, str(REPO / "bench/md_throughput.py"), "--quick", "--presets", "traineval", "--out",
                    str(out)], check=True, capture_output=True, text=True, timeout=900)
    res = json.loads(out.read_text())
    assert res["quick"] and res["machine"]["cpus"] >= 1
    cells = res["sizes"]["esen_xs"]["cells"]
    assert set(cells) == {"8"}
    for c in cells.values():
        assert c["ours"]["steps_per_s"] > 0 and c["fairchem"]["traineval"]["steps_per_s"] > 0
        assert c["fairchem_best"] == "traineval" and c["ours_over_fairchem_best"] > 0
        assert abs(c["ours"]["drift_eV_per_atom"]) < 1e-2  # conservative forces: NVE holds its energy
    b = res["sizes"]["esen_xs"]["batched_predict"]
    assert b["batched_structures_per_s"] > 0 and b["one_by_one_structures_per_s"] > 0
