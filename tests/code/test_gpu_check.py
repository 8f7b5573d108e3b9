"""bench/gpu_check.sh in its CPU test mode: the same code paths as on the GPU (two sizes x fp32/bf16 x eager/
compiled training cells, FLOP count, memory prediction, MD ours vs fairchem), in seconds."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_gpu_check_quick_mode_writes_every_cell(tmp_path):
    out = tmp_path / "gc.json"
    env = dict(os.environ, PY=sys.executable)
    subprocess.run(["bash", str(REPO / "bench/gpu_check.sh"), "--quick", "--out", str(out)], check=True,
                   capture_output=True, text=True, timeout=600, env=env)
    res = json.loads(out.read_text())
    assert res["complete"] and res["quick"] and not res["cuda"] and res["skipped"] == []
    cells = {(r["size"], r["dtype"], r["compile_requested"]): r for r in res["train"]}
    assert set(cells) == {(s, d, c) for s in ("esen_xs", "esen_s") for d in ("fp32", "bf16") for c in (False, True)}
    for (_, _, c), r in cells.items():
        assert r["atoms_per_s"] > 0 and r["flops_per_step"] > 0 and r["predicted_memory_bytes"] > 0
        assert r["compiled"] == c  # direct forces compile (eager backend here); nothing fell back
    assert set(res["compiled_over_eager"]) == {f"{s} {d}" for s in ("esen_xs", "esen_s") for d in ("fp32", "bf16")}
    (md,) = res["md"]
    assert md["ours"]["steps_per_s"] > 0 and md["ours_compiled"]["steps_per_s"] > 0
    assert md["fairchem"]["traineval"]["steps_per_s"] > 0 and md["ours_best_over_fairchem_best"] > 0
    assert abs(md["ours_compiled"]["drift_eV_per_atom"]) < 1e-2


def test_budget_skips_cells_and_says_so(tmp_path):
    out = tmp_path / "gc.json"
    subprocess.run([sys.executable, str(REPO / "bench/gpu_check.py"), "--quick", "--budget-s", "0", "--out",
                    str(out)], check=True, capture_output=True, text=True, timeout=300)
    res = json.loads(out.read_text())
    assert res["complete"] and res["train"] == [] and res["md"] == []
    assert len(res["skipped"]) == 9 and all("budget" in s for s in res["skipped"])
