"""Shared fixtures: small real datasets built once per session (helpers live in tests/helpers.py)."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/helpers.py, whatever the test's own folder
from helpers import SMALL_EMT, build_dataset  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("DS_ACCELERATOR", "cpu")


@pytest.fixture(autouse=True)
def _no_forced_loads_left():
    """A test (or the code it runs in-process) must not leave torch.load forced to weights-only: it would break
    whichever later test shares the worker process, far from the cause."""
    before = os.environ.get("TORCH_FORCE_WEIGHTS_ONLY_LOAD")
    yield
    assert os.environ.get("TORCH_FORCE_WEIGHTS_ONLY_LOAD") == before, "TORCH_FORCE_WEIGHTS_ONLY_LOAD leaked"


@pytest.fixture(scope="session")
def emt_dataset(tmp_path_factory) -> Path:
    """~100 EMT Cu/Al structures (bulk, strain, rattle, vacancy, surface, MD) as built shards."""
    return build_dataset(tmp_path_factory.mktemp("data") / "emt_small", [SMALL_EMT], workers=1)


def pytest_sessionfinish(session):
    """Under pytest-xdist each worker counts its own faults and hostile inputs: hand them to the controller."""
    from helpers import FAULTS, HOSTILE

    if hasattr(session.config, "workeroutput"):
        session.config.workeroutput["counts"] = {"faults": FAULTS, "hostile": HOSTILE}


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    from helpers import FAULTS, HOSTILE

    counts = getattr(node, "workeroutput", {}).get("counts", {})
    for mine, theirs in ((FAULTS, counts.get("faults", {})), (HOSTILE, counts.get("hostile", {}))):
        for k, v in theirs.items():
            mine[k] += v


def pytest_terminal_summary(terminalreporter):
    from helpers import FAULTS, HOSTILE

    if FAULTS["injected"]:
        terminalreporter.write_line(f"faults: injected {FAULTS['injected']}, survived {FAULTS['survived']}, "
                                    f"samples lost {FAULTS['samples_lost']}")
    if HOSTILE["tried"]:
        terminalreporter.write_line(f"hostile inputs: tried {HOSTILE['tried']}, handled {HOSTILE['handled']}, "
                                    f"lost {HOSTILE['lost']}")
