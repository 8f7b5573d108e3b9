"""Energy (per atom), force (L2 norm per atom) and stress losses, in units of the dataset's scale.

Each term is a sum over the micro-batch divided by a count over the whole optimizer step (`step_counts`),
so k accumulated micro-batches give the same gradient as one batch holding all of them.
"""
from __future__ import annotations

import torch


def counts(batch) -> torch.Tensor:
    """[structures, atoms with forces, stress components with labels] of one micro-batch."""
    n_s = len(batch["natoms"])
    n_f = int(torch.isfinite(batch["forces"]).all(-1).sum())
    n_st = int(torch.isfinite(batch["stress"]).view(n_s, -1).all(-1).sum()) * 9
    return torch.tensor([n_s, n_f, n_st], dtype=torch.float64)


def loss_terms(pred: dict, batch, ref_energy: torch.Tensor, scale: float,
               step_counts: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    c = counts(batch) if step_counts is None else step_counts
    n = batch["natoms"].double()
    target_nn = batch["energy"].double() - ref_energy  # the residual the network predicts
    e = ((pred["energy_nn"].double() - target_nn) / n).abs().sum() / c[0] / scale
    f_ok = torch.isfinite(batch["forces"]).all(-1)
    df = (pred["forces"] - batch["forces"])[f_ok]
    f = torch.linalg.vector_norm(df, dim=-1).sum() / max(c[1].item(), 1.0) / scale if df.numel() else e.new_zeros(())
    out = {"energy": e.float(), "forces": f.float()}
    if "stress" in pred:
        s_ok = torch.isfinite(batch["stress"]).view(len(n), -1).all(-1)
        ds = (pred["stress"] - batch["stress"])[s_ok]
        out["stress"] = (ds.abs().sum() / max(c[2].item(), 1.0) / scale * 100.0  # eV/Å^3 is tiny
                         if ds.numel() else e.new_zeros(()).float())
    return out
