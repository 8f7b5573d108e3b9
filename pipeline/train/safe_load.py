"""Reading torch files that may come from someone else without running code from them.

A `.pt` file is a pickle, and a pickle can call any function while it loads. Our own side files hold only
tensors and plain values (loaded with `weights_only=True`), but DeepSpeed's loaders and converters call
`torch.load(weights_only=False)` themselves. Inside `weights_only()` every `torch.load` in the process,
theirs included, goes through torch's weights-only unpickler, which builds tensors, containers and an
explicit list of DeepSpeed's plain record types and refuses everything else before calling it.
"""
from __future__ import annotations

import os
import pickle
import threading
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

import torch
from atomforge.data_prep.errors import AtomforgeError

_FORCE = "TORCH_FORCE_WEIGHTS_ONLY_LOAD"


class UnsafeFileError(AtomforgeError, RuntimeError):
    """A file that would run code when loaded; never retried with a laxer loader."""


# Plain records DeepSpeed writes into its optimizer states (an enum, a scaler's numbers, a dataclass), by name so
# that vetting a folder need not import DeepSpeed.
_DEEPSPEED = ("deepspeed.runtime.zero.config.ZeroStageEnum",
              "deepspeed.runtime.fp16.loss_scaler.LossScaler",
              "deepspeed.runtime.fp16.loss_scaler.DynamicLossScaler",
              "deepspeed.utils.tensor_fragment.fragment_address")


def _allowed() -> list:
    """DeepSpeed's plain records and the numpy pieces of RNG files written before they were stored as tensors."""
    import importlib

    allowed = _numpy_allowed()
    try:
        allowed += [getattr(importlib.import_module(m), n) for m, _, n in (d.rpartition(".") for d in _DEEPSPEED)]
    except ImportError:  # deepspeed is only needed where its checkpoints are read
        pass
    return allowed


def _numpy_allowed() -> list:
    import numpy as np
    from numpy._core.multiarray import _reconstruct

    return [np.ndarray, np.dtype, _reconstruct, *(type(np.dtype(t)) for t in (np.uint32, np.int64, np.float64))]


def vet(folder: str | Path) -> None:
    """Refuse, before anything is loaded or started, a folder whose torch files name code to call.

    Reads only each file's pickle opcodes (no tensors), so a received run is turned down in a second rather than
    after ranks have started. The weights-only load stays the defence: a static read cannot see every global."""
    with _allowing(_numpy_allowed()):
        for f in sorted(Path(folder).rglob("*.pt")):  # none where the folder does not exist
            try:
                bad = sorted(set(torch.serialization.get_unsafe_globals_in_checkpoint(f)) - set(_DEEPSPEED))
            except Exception:  # not a (whole) zip torch file: the real load decides what it is
                continue
            if bad:
                raise UnsafeFileError(f"refusing to load {f}: it holds pickled code, not only tensors "
                                      f"(it names {', '.join(bad[:3])})")


# os.environ and torch's allow-list are process-wide, and reproduce recipes load checkpoints from several threads at
# once: entries are reference-counted so that one thread leaving never lifts another's guard, and the last one out
# restores exactly what was there before (a plain save/restore pair, interleaved, leaks the forced mode for good).
_lock = threading.Lock()
_forced = 0
_env_before: str | None = None
_added: Counter = Counter()


@contextmanager
def _allowing(globals_: list, force: bool = False):
    """torch's weights-only unpickler may build `globals_` inside; with `force`, every torch.load is weights-only."""
    global _forced, _env_before
    with _lock:
        if force:
            if _forced == 0:
                _env_before = os.environ.get(_FORCE)
                os.environ[_FORCE] = "1"
            _forced += 1
        present = torch.serialization.get_safe_globals()
        ours = [g for g in globals_ if _added[g] > 0 or g not in present]  # never count (or remove) a user's own
        torch.serialization.add_safe_globals(ours)
        _added.update(ours)
    try:
        yield
    finally:
        with _lock:
            gone = []
            for g in globals_:
                if _added[g] > 0:
                    _added[g] -= 1
                    if _added[g] == 0:
                        del _added[g]
                        gone.append(g)
            if gone:
                keep = [g for g in torch.serialization.get_safe_globals() if g not in gone]
                torch.serialization.clear_safe_globals()
                torch.serialization.add_safe_globals(keep)
            if force:
                _forced -= 1
                if _forced == 0:
                    if _env_before is None:
                        os.environ.pop(_FORCE, None)
                    else:
                        os.environ[_FORCE] = _env_before


@contextmanager
def weights_only(what: str | Path = "checkpoint", allow: list | None = None):
    """Every torch.load inside refuses pickled code (beyond DeepSpeed's plain records and `allow`); a refusal
    surfaces as UnsafeFileError naming `what`."""
    try:
        with _allowing(_allowed() + list(allow or []), force=True):
            yield
    except Exception as e:  # DeepSpeed wraps some load errors: find the unpickler's refusal underneath
        cause = e
        while cause is not None and not _refused(cause):
            cause = cause.__cause__ or cause.__context__
        if cause is None:
            raise  # a damaged file, not a hostile one: the caller may fall back to an older checkpoint
        raise UnsafeFileError(f"refusing to load {what}: {_culprit(cause)}") from None


def _refused(e: BaseException) -> bool:
    """The weights-only unpickler turned down something the file asked to build or call (not mere garbage)."""
    return isinstance(e, pickle.UnpicklingError) and any(w in str(e) for w in ("GLOBAL", "allowlisted", "Can only"))


def _culprit(e: BaseException) -> str:
    """The one line of torch's long message that says what the file asked to call."""
    for line in str(e).splitlines():
        line = line.strip()
        if "GLOBAL" in line or "allowlisted" in line or "Can only" in line:
            return f"it holds pickled code, not only tensors ({line})"
    first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return f"it is not a plain tensor file ({first})"


def load_tensors(path: str | Path, map_location="cpu"):
    """torch.load of one of our own side files: tensors and plain values only."""
    with weights_only(path):
        return torch.load(path, map_location=map_location, weights_only=True)
