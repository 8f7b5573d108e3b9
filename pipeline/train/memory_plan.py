"""`atomforge plan`: per-rank memory of a training run for each ZeRO stage, and which ladder sizes fit a GPU.

Weights, gradients and AdamW's two moments are fp32 (bf16 here is autocast over fp32 weights), so per rank:
  ZeRO-0: 4P + 4P + 8P;  ZeRO-1: optimizer / N;  ZeRO-2: gradients and optimizer / N;  ZeRO-3: all three / N
(optimizer offload moves the moments to host memory). Activations are the bytes autograd saves for backward,
measured with saved_tensors_hooks on a real 32-atom cell and scaled linearly to max_atoms (edges per atom are
fixed by the cutoff); sizes too big to run are measured at 1 and 2 layers and extrapolated per layer.
"""
from __future__ import annotations

import torch

from atomforge.pipeline.models.config import ModelConfig
from atomforge.pipeline.models.describe import DIRECT_FLOPS_MAX_PARAMS, count_parameters, sample_batch
from atomforge.pipeline.models.ladder import LADDER
from atomforge.pipeline.models.potential import build_model

GIB = 2**30


def saved_activation_bytes(name: str, force_mode: str = "direct", backbone: dict | None = None,
                           n_rep: int = 2) -> tuple[float, int]:
    """Bytes autograd keeps for backward in one forward of `name` on fcc Cu (4*n_rep^3 atoms), and the atom count."""
    batch = sample_batch(n_rep)
    torch.manual_seed(0)
    model = build_model(ModelConfig(name=name, force_mode=force_mode, backbone=backbone or {}))
    seen: dict[int, int] = {}

    def pack(t):
        if t.device.type != "meta":  # count each storage once: views share memory
            st = t.untyped_storage()
            seen[st.data_ptr()] = st.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = model(batch)
        out["energy_nn"].sum().backward()
    return float(sum(seen.values())), int(batch["natoms"].sum())


def activation_bytes_per_atom(name: str, force_mode: str = "direct") -> float:
    if count_parameters(name) <= DIRECT_FLOPS_MAX_PARAMS:
        b, n = saved_activation_bytes(name, force_mode)
        return b / n
    layers = LADDER[name][1]["num_layers"]
    b1, n = saved_activation_bytes(name, force_mode, {"num_layers": 1})
    b2, _ = saved_activation_bytes(name, force_mode, {"num_layers": 2})
    return (b1 + (layers - 1) * (b2 - b1)) / n


def state_bytes(params: int, stage: int, world: int, offload_optimizer: bool = False) -> dict[str, float]:
    p, g, o = 4.0 * params, 4.0 * params, 8.0 * params
    if stage >= 1:
        o /= world
    if stage >= 2:
        g /= world
    if stage >= 3:
        p /= world
    if offload_optimizer:
        o = 0.0
    return {"params": p, "grads": g, "optimizer": o}


def plan(name: str, world: int, max_atoms: int, force_mode: str = "direct", offload_optimizer: bool = False,
         act_per_atom: float | None = None) -> list[dict]:
    params = count_parameters(name)
    act = (act_per_atom if act_per_atom is not None else activation_bytes_per_atom(name, force_mode)) * max_atoms
    rows = []
    for stage in (0, 1, 2, 3):
        s = state_bytes(params, stage, world, offload_optimizer)
        rows.append({"stage": stage, **s, "activations": act, "total": sum(s.values()) + act})
    return rows


def _width(name: str) -> float:
    """Saved bytes per atom scale with channels x (lmax+1)^2 x layers (the per-edge SO(2) tensors dominate)."""
    kw = LADDER[name][1]
    return kw["sphere_channels"] * (kw["lmax"] + 1) ** 2 * kw["num_layers"]


def print_plan(name: str, world: int, max_atoms: int, gpu_gib: float, force_mode: str = "direct",
               offload_optimizer: bool = False):
    print(f"{name}: {count_parameters(name):,} parameters, {world} ranks, {max_atoms} atoms per micro-batch, "
          f"{force_mode} forces")
    print(f"{'ZeRO':>4s} {'params':>10s} {'grads':>10s} {'optim':>10s} {'activ':>10s} {'total GiB':>10s}")
    for r in plan(name, world, max_atoms, force_mode, offload_optimizer):
        print(f"{r['stage']:>4d} "
              + " ".join(f"{r[k] / GIB:>10.3f}" for k in ("params", "grads", "optimizer", "activations", "total")))
    print(f"\nladder sizes that fit {gpu_gib:g} GiB per rank (ZeRO stage needed; activations at {max_atoms} atoms):")
    base = activation_bytes_per_atom("esen_xs", force_mode)
    for other in LADDER:
        if LADDER[other][0] == "escaip":  # not an SO(2) width: measure it (small), direct forces only
            if force_mode != "direct":
                continue
            act = activation_bytes_per_atom(other, force_mode)
        else:
            act = base * _width(other) / _width("esen_xs")
        rows = plan(other, world, max_atoms, force_mode, offload_optimizer, act)
        fits = [r["stage"] for r in rows if r["total"] <= gpu_gib * GIB]
        print(f"  {other:10s} " + (f"ZeRO-{fits[0]} or higher" if fits else "does not fit"))
