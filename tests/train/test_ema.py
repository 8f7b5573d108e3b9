"""The EMA's warm-up: a short run's average must not keep a large share of its initial weights."""
from __future__ import annotations

import pytest
import torch

from atomforge.pipeline.train.ema import EMA


def _run(warmup: bool, steps: int, decay: float = 0.995) -> float:
    """Weights start at 0 and sit at 1 after the first optimizer step: the EMA's distance from 1 is the initial
    weights' share in the average."""
    m = torch.nn.Linear(1, 1, bias=False)
    torch.nn.init.zeros_(m.weight)
    ema = EMA(m, decay, warmup)
    with torch.no_grad():
        m.weight.fill_(1.0)
    for t in range(1, steps + 1):
        ema.update(t)
    return 1.0 - ema.shadow[0].item()


def test_plain_decay_keeps_the_initial_weights_of_a_short_run():
    assert _run(False, 600) == pytest.approx(0.995 ** 600, rel=1e-4)  # ~5%


def test_warmup_ramps_the_decay_and_forgets_the_initial_weights():
    share = _run(True, 600)
    assert share < 1e-3 * 0.995 ** 600  # product over t of (1 + t) / (10 + t), capped at 0.995
    ema = EMA(torch.nn.Linear(1, 1), 0.995)
    assert ema.decay_at(1) == pytest.approx(2 / 11) and ema.decay_at(10_000) == 0.995
    assert EMA(torch.nn.Linear(1, 1), 0.0).decay_at(1) == 0.0  # decay 0 (no averaging) stays 0


def test_the_ramp_continues_from_the_step_after_a_resume():
    """The ramp reads the trainer's step, not a count of its own, so a resumed run gets the same weights."""
    a, b = torch.nn.Linear(2, 1), torch.nn.Linear(2, 1)
    b.load_state_dict(a.state_dict())
    whole, first = EMA(a, 0.99), EMA(b, 0.99)
    def step(t, *emas):
        with torch.no_grad():
            for m in (a, b):
                m.weight.fill_(float(t))
        for e in emas:
            e.update(t)

    for t in range(1, 6):
        step(t, whole, first)
    resumed = EMA(b, 0.99)
    resumed.load_state_dict(first.state_dict())
    for t in range(6, 20):
        step(t, whole, resumed)
    assert all(torch.equal(x, y) for x, y in zip(whole.shadow, resumed.shadow))
