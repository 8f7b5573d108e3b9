"""Fault-injection bookkeeping: each test records what it injected; the summary line adds them up."""
from __future__ import annotations

import pytest

LEDGER = {"injected": 0, "survived": 0, "samples_lost": 0}


@pytest.fixture
def ledger():
    return LEDGER


def pytest_terminal_summary(terminalreporter):
    if LEDGER["injected"]:
        terminalreporter.write_line(f"faults: injected {LEDGER['injected']}, survived {LEDGER['survived']}, "
                                    f"samples lost {LEDGER['samples_lost']}")
