"""`atomforge plan`: ZeRO partitioning arithmetic and the activation estimate's linear scaling in atoms."""
from __future__ import annotations

import pytest

from atomforge.pipeline.train.memory_plan import plan, saved_activation_bytes, state_bytes


def test_zero_stages_partition_what_they_should():
    p, n = 1_000_000, 8
    s = {k: state_bytes(p, k, n) for k in range(4)}
    assert s[0] == {"params": 4e6, "grads": 4e6, "optimizer": 8e6}
    assert s[1]["optimizer"] == 1e6 and s[1]["grads"] == 4e6
    assert s[2]["grads"] == 0.5e6 and s[2]["params"] == 4e6
    assert s[3]["params"] == 0.5e6
    assert state_bytes(p, 2, n, offload_optimizer=True)["optimizer"] == 0.0
    rows = plan("esen_xs", n, 128, act_per_atom=1000.0)
    assert [r["stage"] for r in rows] == [0, 1, 2, 3]
    assert all(r["activations"] == 128_000.0 for r in rows)
    assert rows[0]["total"] > rows[1]["total"] > rows[2]["total"] > rows[3]["total"]


def test_activation_estimate_scales_to_a_bigger_batch_within_25_percent():
    small, n_small = saved_activation_bytes("esen_xs", n_rep=2)  # 32 atoms
    big, n_big = saved_activation_bytes("esen_xs", n_rep=3)  # 108 atoms, measured
    assert n_big == 108
    predicted = small / n_small * n_big
    assert predicted == pytest.approx(big, rel=0.25)
