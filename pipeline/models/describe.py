"""`atomforge models`: the ladder with parameter counts (built on the meta device: nothing is allocated)."""
from __future__ import annotations

from contextlib import contextmanager

import torch

from pipeline.models.config import ModelConfig
from pipeline.models.ladder import LADDER


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
        yield
    finally:
        handle.remove()


def count_parameters(name: str, **kw) -> int:
    with empty_weights():
        model = ModelConfig(name=name, **kw).build()
    return sum(p.numel() for p in model.parameters())


def ladder_table() -> list[dict]:
    rows = []
    for name, (family, kw) in LADDER.items():
        rows.append({"name": name, "family": family, "params": count_parameters(name),
                     "channels": kw["sphere_channels"], "layers": kw["num_layers"], "lmax": kw["lmax"]})
    return rows


def print_ladder():
    print(f"{'name':10s} {'family':8s} {'params':>14s} {'channels':>9s} {'layers':>7s} {'lmax':>5s}")
    for r in ladder_table():
        print(f"{r['name']:10s} {r['family']:8s} {r['params']:>14,d} {r['channels']:>9d} {r['layers']:>7d} {r['lmax']:>5d}")
