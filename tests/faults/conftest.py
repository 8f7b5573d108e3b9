"""Fault-injection bookkeeping: each test records what it injected; tests/conftest.py prints the sum."""
from __future__ import annotations

import pytest

from helpers import FAULTS as LEDGER


@pytest.fixture
def ledger():
    return LEDGER
