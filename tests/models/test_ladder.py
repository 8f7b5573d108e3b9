"""The size ladder: parameter counts land on the advertised sizes, mixtures report active < total, FLOPs are counted."""
from __future__ import annotations

import torch

from atomforge.pipeline.models.describe import active_parameters, count_parameters, flops_per_atom, sample_batch
from atomforge.pipeline.models.ladder import LADDER
from atomforge.pipeline.models.potential import build_model


def test_ladder_sizes_land_on_targets():
    n = {name: count_parameters(name) for name in ("esen_s", "esen_m", "esen_l", "esen_xl")}  # meta device: no memory
    assert 0.8e6 <= n["esen_s"] <= 2e6
    assert 25e6 <= n["esen_m"] <= 35e6
    assert 120e6 <= n["esen_l"] <= 180e6
    assert n["esen_xl"] > 1e9


def test_mixture_reports_total_and_active():
    total, active = count_parameters("mole_s"), active_parameters("mole_s")
    assert active == count_parameters("esen_s")  # a structure runs the dense eSEN of the same shape
    assert total > 4 * active


def test_mixture_trains_both_force_modes():
    from atomforge.pipeline.models.config import ModelConfig

    batch = sample_batch()
    for mode in ("direct", "conservative"):
        m = build_model(ModelConfig(name="mole_s", force_mode=mode), {29: -3.5}, 1.0)
        out = m(batch)
        assert out["forces"].shape == (32, 3) and torch.isfinite(out["energy"]).all()
        out["energy_nn"].sum().backward()
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for n, p in m.named_parameters()
                   if "routing" in n or "expert" in n.lower() or "so2" in n)


def test_flops_per_atom_counted_and_grow_with_size():
    f_xs, f_s = flops_per_atom("esen_xs"), flops_per_atom("esen_s")
    assert 0 < f_xs < f_s
    assert set(LADDER) >= {"esen_xs", "esen_s", "esen_m", "esen_l", "esen_xl", "mole_s"}
