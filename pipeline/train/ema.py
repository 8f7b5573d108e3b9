"""EMA of the parameters each rank holds: full tensors under ZeRO 0-2, the local partition under ZeRO-3."""
from __future__ import annotations

import torch
import torch.distributed as dist


def _local(p: torch.nn.Parameter) -> torch.Tensor:
    return p.ds_tensor if hasattr(p, "ds_tensor") else p.data


class EMA:
    def __init__(self, module: torch.nn.Module, decay: float, warmup: bool = True):
        self.decay, self.warmup = decay, warmup
        self.params = [(n, p) for n, p in module.named_parameters()]
        self.shadow = [_local(p).detach().float().clone() for _, p in self.params]

    def decay_at(self, step: int) -> float:
        """With warm-up, min(decay, (1 + step) / (10 + step)) as fairchem's `use_num_updates`: at a plain 0.995 a
        600-step run's average still holds 0.995**600 = 5% of its initial weights (random, or the parent's)."""
        return min(self.decay, (1 + step) / (10 + step)) if self.warmup else self.decay

    @torch.no_grad()
    def update(self, step: int):
        """`step`: optimizer steps done, this one included (the trainer's, so a resumed run continues the ramp)."""
        w = 1.0 - self.decay_at(step)
        for s, (_, p) in zip(self.shadow, self.params):
            s.lerp_(_local(p).float(), w)

    def state_dict(self) -> dict:  # this rank's shadow (partitions under ZeRO-3)
        return {n: s.clone() for s, (n, _) in zip(self.shadow, self.params)}

    def load_state_dict(self, state: dict):
        for s, (n, _) in zip(self.shadow, self.params):
            s.copy_(state[n])

    @torch.no_grad()
    def full_state_dict(self) -> dict[str, torch.Tensor]:
        """Full EMA weights on every rank (collective under ZeRO-3: call on all ranks)."""
        out = {}
        for s, (n, p) in zip(self.shadow, self.params):
            if hasattr(p, "ds_tensor"):
                parts = [torch.empty_like(s) for _ in range(dist.get_world_size())]
                dist.all_gather(parts, s)
                out[n] = torch.cat(parts)[: p.ds_numel].view(p.ds_shape).clone()
            else:
                out[n] = s.clone()
        return out
