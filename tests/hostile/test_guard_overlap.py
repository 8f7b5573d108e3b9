"""The weights-only guard when several threads hold it at once (reproduce recipes load checkpoints side by side)."""
import os
import threading

import torch

from atomforge.pipeline.train.safe_load import weights_only

FORCE = "TORCH_FORCE_WEIGHTS_ONLY_LOAD"


class Record:  # a class a test allows while loading
    pass


def test_interleaved_guards_neither_lift_early_nor_leak():
    """Two threads' guards exit in the order they entered, not nested: the first one out must not lift the second's
    guard, and once both are out the process is exactly as before (no forced mode, no allowed class left)."""
    assert FORCE not in os.environ and Record not in torch.serialization.get_safe_globals()
    a, b = weights_only("a", allow=[Record]), weights_only("b", allow=[Record])
    a.__enter__()
    b.__enter__()
    a.__exit__(None, None, None)
    assert os.environ.get(FORCE) == "1" and Record in torch.serialization.get_safe_globals()  # b still guarded
    b.__exit__(None, None, None)
    assert FORCE not in os.environ and Record not in torch.serialization.get_safe_globals()


def test_guards_from_many_threads_leave_nothing_behind():
    before = list(torch.serialization.get_safe_globals())
    barrier = threading.Barrier(4)

    def hold():
        for _ in range(50):
            with weights_only("x", allow=[Record]):
                barrier.wait(timeout=30) if _ == 0 else None
    threads = [threading.Thread(target=hold) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert FORCE not in os.environ and torch.serialization.get_safe_globals() == before


def test_a_users_own_setting_survives():
    """A user who forces weights-only loads themselves keeps that setting after our guard, and a class they
    allowed stays allowed."""
    os.environ[FORCE] = "1"
    torch.serialization.add_safe_globals([Record])
    try:
        with weights_only("x", allow=[Record]):
            pass
        assert os.environ.get(FORCE) == "1" and Record in torch.serialization.get_safe_globals()
    finally:
        os.environ.pop(FORCE, None)
        torch.serialization.clear_safe_globals()
