"""Energy (per atom), force (L2 norm per atom) and stress losses, in units of the dataset's scale."""
from __future__ import annotations

import torch


def loss_terms(pred: dict, batch, ref_energy: torch.Tensor, scale: float) -> dict[str, torch.Tensor]:
    n = batch["natoms"].double()
    target_nn = batch["energy"].double() - ref_energy  # the residual the network predicts
    e = ((pred["energy_nn"].double() - target_nn) / n).abs().mean() / scale
    f_ok = torch.isfinite(batch["forces"]).all(-1)
    df = (pred["forces"] - batch["forces"])[f_ok]
    f = torch.linalg.vector_norm(df, dim=-1).mean() / scale if df.numel() else e.new_zeros(())
    out = {"energy": e.float(), "forces": f.float()}
    if "stress" in pred:
        s_ok = torch.isfinite(batch["stress"]).view(len(n), -1).all(-1)
        ds = (pred["stress"] - batch["stress"])[s_ok]
        out["stress"] = ds.abs().mean() / scale * 100.0 if ds.numel() else e.new_zeros(()).float()  # eV/Å^3 is tiny
    return out
