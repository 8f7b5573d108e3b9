"""The attention entry of the ladder (EScAIP, direct force heads) builds, runs forward+backward and trains."""
from __future__ import annotations

import torch

from atomforge.pipeline.models.config import ModelConfig
from atomforge.pipeline.models.describe import count_parameters, sample_batch
from atomforge.pipeline.models.ladder import LADDER
from atomforge.pipeline.models.potential import build_model


def test_escaip_forward_backward_and_a_few_steps():
    torch.manual_seed(0)
    batch = sample_batch()  # 32-atom periodic Cu cell
    model = build_model(ModelConfig(name="escaip_s"), {29: -3.5}, 0.5)
    out = model(batch)
    assert out["energy"].shape == (1,) and out["forces"].shape == (32, 3)
    assert torch.isfinite(out["energy"]).all() and torch.isfinite(out["forces"]).all()
    before = [p.detach().clone() for p in model.parameters()]
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4)
    for _ in range(3):  # a few optimizer steps through the wrapper, as the trainer takes them
        out = model(batch)
        loss = (out["energy_nn"] / 32 + 0.1).pow(2).mean() + out["forces"].pow(2).mean()
        assert torch.isfinite(loss)
        opt.zero_grad()
        loss.backward()
        assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
        assert sum(p.grad is not None for p in model.parameters()) > 0.9 * len(before)
        opt.step()
    assert sum(not torch.equal(a, p) for a, p in zip(before, model.parameters())) > 0.9 * len(before)


def test_escaip_is_listed_and_refuses_conservative():
    assert LADDER["escaip_s"][0] == "escaip"  # `atomforge models` prints every LADDER entry
    assert 1e5 < count_parameters("escaip_s") < 5e6
    try:
        build_model(ModelConfig(name="escaip_s", force_mode="conservative"))
    except ValueError as e:
        assert "force_mode=direct" in str(e)
    else:
        raise AssertionError("conservative EScAIP should be refused")
