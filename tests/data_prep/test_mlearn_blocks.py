"""mlearn's split groups: whole AIMD runs (the default) or contiguous blocks of a run, so that a hashed val split
holds the kinds of structure the test set holds (whole runs left Si, Mo and Li with near-equilibrium-only vals)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from atomforge.data_prep.sources import make_source
from atomforge.data_prep.split import assign_split
from tests.conftest import SHARED_DATA

FRACTIONS = {"train": 0.9, "val": 0.1, "test": 0.0}


def _val(element: str, block: int):
    src = make_source({"type": "mlearn", "path": str(SHARED_DATA / "mlearn" / element / "training.json"),
                       "block": block})
    structures = [s for t in src.tasks() for s in src.read(t)]
    return structures, [s for s in structures if assign_split(s.group, FRACTIONS, 0) == "val"]


def _mean_abs_force(structures) -> float:
    return float(np.mean(np.concatenate([np.abs(s.forces).ravel() for s in structures])))


@pytest.mark.parametrize("element", ["Si", "Mo", "Li"])
def test_blocks_put_aimd_snapshots_in_val(element):
    every, whole_runs = _val(element, 0)
    assert {s.info["group"] for s in whole_runs} <= {"Elastic", "Surface"}  # the defect blocks fix
    _, blocked = _val(element, 2)
    assert "AIMD-NVT" in {s.info["group"] for s in blocked}
    assert len(blocked) >= 0.05 * len(every)
    assert _mean_abs_force(blocked) > 0.5 * _mean_abs_force(every)


def test_block_groups_are_contiguous_snapshots_of_one_run(tmp_path):
    entries = json.loads((SHARED_DATA / "mlearn" / "Si" / "training.json").read_text())
    aimd = [e for e in entries if e["group"] == "AIMD-NVT"][:6]
    path = tmp_path / "training.json"
    path.write_text(json.dumps(aimd))
    src = make_source({"type": "mlearn", "path": str(path), "block": 2})
    groups = [s.group for t in src.tasks() for s in src.read(t)]
    run = aimd[0]["description"].split(" of ", 2)[-1]
    assert all(d["description"].endswith(run) for d in aimd)
    assert groups == [f"AIMD-NVT:{run}:block{i // 2}" for i in range(6)]
    src0 = make_source({"type": "mlearn", "path": str(path)})
    assert {s.group for t in src0.tasks() for s in src0.read(t)} == {f"AIMD-NVT:{run}"}
