"""Hostile-input bookkeeping: each case records what it tried; the summary line adds them up.

A case is `handled` when the input was refused with a clear one-line error or quarantined with a reason, no
marker file appeared (no code ran from the input), the input files are unchanged and every good sample was kept.
`lost` counts good samples that did not make it through.
"""
from __future__ import annotations

import pytest

TALLY = {"tried": 0, "handled": 0, "lost": 0}


class Tally:
    def tried(self, n: int = 1):
        TALLY["tried"] += n

    def handled(self, n: int = 1):
        TALLY["handled"] += n

    def lost(self, n: int):
        TALLY["lost"] += n


@pytest.fixture
def tally():
    return Tally()


def pytest_terminal_summary(terminalreporter):
    if TALLY["tried"]:
        terminalreporter.write_line(f"hostile inputs: tried {TALLY['tried']}, handled {TALLY['handled']}, "
                                    f"lost {TALLY['lost']}")
