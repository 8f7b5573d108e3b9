"""Direct pre-training -> conservative fine-tuning: the conservative model starts with the same energy."""
from __future__ import annotations

import torch

from atomforge.pipeline.models.config import ModelConfig
from atomforge.pipeline.models.describe import sample_batch
from atomforge.pipeline.models.transfer import convert_force_mode, load_checkpoint_weights
from atomforge.pipeline.models.potential import build_model


def test_direct_weights_give_the_same_energy_in_conservative_mode(tmp_path):
    batch = sample_batch()
    torch.manual_seed(1)
    direct = build_model(ModelConfig(name="esen_xs"), {29: -3.5}, 2.0)
    torch.save(direct.state_dict(), tmp_path / "ema.pt")
    cons = build_model(ModelConfig(name="esen_xs", force_mode="conservative"), {29: -3.5}, 2.0)
    e_before = cons(batch)["energy"].detach()
    missing = load_checkpoint_weights(cons, tmp_path)
    assert missing == []
    e_direct, out = direct(batch)["energy"].detach(), cons(batch)
    assert not torch.allclose(e_before, e_direct)
    torch.testing.assert_close(out["energy"].detach(), e_direct, rtol=1e-5, atol=1e-5)
    assert torch.isfinite(out["forces"]).all() and out["forces"].abs().sum() > 0


def test_conversion_drops_only_the_direct_force_head():
    sd = build_model(ModelConfig(name="esen_xs")).state_dict()
    conv = convert_force_mode(sd, "conservative")
    assert not [k for k in conv if "output_heads.forces" in k]
    assert set(conv) == set(build_model(ModelConfig(name="esen_xs", force_mode="conservative")).state_dict())
