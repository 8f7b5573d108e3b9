"""`atomforge models`: the ladder with parameter counts (total and active) and forward FLOPs per atom.

Counts come from models built on the meta device (nothing allocated, so >1B sizes are fine). FLOPs are
counted by torch.utils.flop_counter on a real 32-atom Cu cell; for the big sizes a 1- and a 2-layer model of
the same width are run and the per-layer FLOPs extrapolated to the full depth (layers are identical).
"""
from __future__ import annotations

import math
from contextlib import contextmanager

import torch

from atomforge.pipeline.models.config import ModelConfig
from atomforge.pipeline.models.ladder import LADDER, dense_equivalent
from atomforge.pipeline.models.potential import build_model

DIRECT_FLOPS_MAX_PARAMS = 40_000_000  # above this, extrapolate from 1- and 2-layer models


@contextmanager
def empty_weights():
    """Parameters move to the meta device as they are registered: a >1B model is built without its memory.

    (fairchem's constructors read small tensors, so a plain `torch.device("meta")` context cannot be used.)
    """

    def hook(module, name, param):
        if param is None or param.device.type == "meta":
            return None
        return torch.nn.Parameter(param.to("meta"), requires_grad=param.requires_grad)

    handle = torch.nn.modules.module.register_module_parameter_registration_hook(hook)
    try:
        with _LargeOnMeta():
            yield
    finally:
        handle.remove()


class _LargeOnMeta(torch.overrides.TorchFunctionMode):
    """Large random or empty tensors are made on the meta device: they only become parameters (a mixture's expert
    weights, 800M numbers for mole_m, would otherwise be drawn on the CPU just to be dropped)."""

    FACTORIES = {torch.rand, torch.randn, torch.empty, torch.zeros}
    LARGE = 1 << 20

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in self.FACTORIES and "device" not in kwargs:
            shape = args[0] if len(args) == 1 and isinstance(args[0], (tuple, list, torch.Size)) else args
            if all(isinstance(d, int) for d in shape) and math.prod(shape) >= self.LARGE:
                kwargs["device"] = "meta"
        return func(*args, **kwargs)


def count_parameters(name: str, **kw) -> int:
    with empty_weights():
        model = build_model(ModelConfig(name=name, **kw))
    return sum(p.numel() for p in model.parameters())


def active_parameters(name: str) -> int:
    """Parameters one structure runs through: the dense equivalent of a mixture, the model itself otherwise."""
    family, kw = LADDER[name]
    if family != "mole":
        return count_parameters(name)
    dense = dense_equivalent(kw)
    with empty_weights():
        model = build_model(ModelConfig(name="esen_xs", backbone=dense))
    return sum(p.numel() for p in model.parameters())


def sample_batch(n_rep: int = 2):
    """A real periodic cell (fcc Cu, 4*n_rep^3 atoms) as a fairchem batch."""
    from ase.build import bulk
    from fairchem.core.datasets.atomic_data import AtomicData, atomicdata_list_to_batch

    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(n_rep)
    atoms.rattle(0.05, seed=0)
    return atomicdata_list_to_batch([AtomicData.from_ase(atoms, task_name="omat")])


def forward_flops(name: str, backbone: dict | None = None, batch=None) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    batch = batch if batch is not None else sample_batch()
    torch.manual_seed(0)
    model = build_model(ModelConfig(name=name, backbone=backbone or {})).eval()
    with FlopCounterMode(display=False) as fc:
        model(batch)
    return float(fc.get_total_flops())


def flops_per_atom(name: str) -> float:
    """Forward FLOPs per atom (direct-force heads) on a 32-atom Cu cell with the ladder's cutoff."""
    batch = sample_batch()
    n = int(batch["natoms"].sum())
    layers = LADDER[name][1]["num_layers"]
    if count_parameters(name) <= DIRECT_FLOPS_MAX_PARAMS:
        return forward_flops(name, batch=batch) / n
    f1 = forward_flops(name, {"num_layers": 1}, batch)
    f2 = forward_flops(name, {"num_layers": 2}, batch)
    return (f1 + (layers - 1) * (f2 - f1)) / n


def ladder_table(flops: bool = True) -> list[dict]:
    rows = []
    for name, (family, kw) in LADDER.items():
        rows.append({"name": name, "family": family, "params": count_parameters(name),
                     "active_params": active_parameters(name),
                     "channels": kw.get("sphere_channels", kw.get("hidden_size")), "layers": kw["num_layers"],
                     "lmax": kw.get("lmax", len(kw.get("freequency_list", [0])) - 1),
                     "experts": kw.get("num_experts", 0),
                     "gflops_per_atom": flops_per_atom(name) / 1e9 if flops else None})
    return rows


def print_ladder(flops: bool = True):
    print(f"{'name':10s} {'family':7s} {'params':>15s} {'active':>15s} {'ch':>5s} {'layers':>6s} {'lmax':>4s} "
          f"{'experts':>7s} {'GFLOP/atom':>10s}")
    for r in ladder_table(flops):
        g = f"{r['gflops_per_atom']:10.3f}" if r["gflops_per_atom"] is not None else f"{'-':>10s}"
        print(f"{r['name']:10s} {r['family']:7s} {r['params']:>15,d} {r['active_params']:>15,d} {r['channels']:>5d} "
              f"{r['layers']:>6d} {r['lmax']:>4d} {r['experts']:>7d} {g}")
