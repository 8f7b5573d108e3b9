"""Group-aware split by hashing the group id: streaming, parallel-safe, and stable when data is added."""
from __future__ import annotations

import hashlib

SPLITS = ("train", "val", "test")


def assign_split(group: str, fractions: dict[str, float], seed: int = 0) -> str:
    total = sum(fractions.values())
    u = int.from_bytes(hashlib.blake2b(f"{seed}:{group}".encode(), digest_size=8).digest(), "big") / 2**64
    acc = 0.0
    for name in SPLITS:
        acc += fractions.get(name, 0.0) / total
        if u < acc:
            return name
    return "train"
