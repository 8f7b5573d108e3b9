"""A real SLURM controller and node daemon on this machine, shared by the tests in this folder."""
from __future__ import annotations

import pytest

from slurm_cluster import Cluster, available


@pytest.fixture(scope="session")
def slurm(tmp_path_factory):
    why = available()
    if why:
        pytest.skip(why)
    c = Cluster(tmp_path_factory.mktemp("slurm")).start()
    try:
        yield c
    finally:
        c.stop()
        assert all(p.poll() is not None for p in c.procs), "a SLURM daemon is still running"
