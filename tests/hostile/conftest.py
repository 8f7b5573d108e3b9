"""Hostile-input bookkeeping: each case records what it tried; tests/conftest.py prints the sum.

A case is `handled` when the input was refused with a clear one-line error or quarantined with a reason, no
marker file appeared (no code ran from the input), the input files are unchanged and every good sample was kept.
`lost` counts good samples that did not make it through. Cases that are faults of a training run (a killed
launcher, a busy run folder, a poisoned checkpoint, a corrupt shard) also count in the fault line.
"""
from __future__ import annotations

import pytest

from helpers import FAULTS, HOSTILE


class Tally:
    def tried(self, n: int = 1):
        HOSTILE["tried"] += n

    def handled(self, n: int = 1):
        HOSTILE["handled"] += n

    def lost(self, n: int):
        HOSTILE["lost"] += n


@pytest.fixture
def tally():
    return Tally()


@pytest.fixture
def ledger():
    return FAULTS
