"""Linear warmup then cosine decay to `min_ratio`, as a torch LambdaLR (DeepSpeed checkpoints its state).

Step k (0-based) of the warmup runs at lr * (k + 1) / warmup, so no step is spent at lr = 0.
"""
from __future__ import annotations

import math

from torch.optim.lr_scheduler import LambdaLR


def lr_ratio(step: int, total: int, warmup: int, min_ratio: float) -> float:
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def warmup_cosine(optimizer, total: int, warmup: int, min_ratio: float) -> LambdaLR:
    return LambdaLR(optimizer, lambda s: lr_ratio(s, total, warmup, min_ratio))
