"""Non-finite loss guard: a NaN/inf batch is skipped on every rank (no backward, no update) and counted;
`limit` in a row stop the run with a clear message instead of training on garbage."""
from __future__ import annotations

import torch
import torch.distributed as dist
from atomforge.data_prep.errors import AtomforgeError


class NonFiniteLoss(AtomforgeError, RuntimeError):
    pass


class LossGuard:
    def __init__(self, limit: int, skipped: int = 0):
        self.limit, self.skipped, self.in_a_row = limit, skipped, 0

    def ok(self, loss: torch.Tensor, step: int) -> bool:
        """Collective: all ranks skip together when any rank's loss is not finite."""
        bad = torch.tensor([0 if bool(torch.isfinite(loss.detach()).all()) else 1], dtype=torch.int32)
        if dist.is_initialized() and dist.get_world_size() > 1:
            dist.all_reduce(bad, op=dist.ReduceOp.MAX)
        if not bad.item():
            self.in_a_row = 0
            return True
        self.skipped += 1
        self.in_a_row += 1
        if self.limit and self.in_a_row >= self.limit:
            raise NonFiniteLoss(f"loss was NaN/inf on {self.in_a_row} batches in a row (at step {step + 1}, "
                                f"{self.skipped} skipped in total): stopping; lower train.lr or check the data")
        return False

    def state(self) -> dict:
        return {"nonfinite_skipped": self.skipped}
