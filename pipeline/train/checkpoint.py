"""Checkpoints in DeepSpeed's own format, made atomic by writing to a temporary tag and renaming.

checkpoints/step_00000060/ holds DeepSpeed's files, `ema.pt` (full EMA weights), `ema_rank{r}.pt`,
`rng_rank{r}.pt`, `trainer_state.json` and, written last, `COMPLETE`. Resume picks the newest folder
with COMPLETE that loads; a broken newest one is skipped with a warning.
"""
from __future__ import annotations

import json
import logging
import os
import random
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from atomforge.pipeline.train.run_dir import MARKER, complete_checkpoints, tag_for
from atomforge.pipeline.train.safe_load import UnsafeFileError, load_tensors, weights_only
from atomforge.data_prep.errors import AtomforgeError

log = logging.getLogger(__name__)


def rng_state() -> dict:
    """Tensors and plain numbers only, so the file loads with weights_only=True."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    return {"torch": torch.get_rng_state(),
            "numpy": {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                      "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
            "python": {"version": version, "internal": torch.tensor(internal, dtype=torch.int64),
                       "gauss_next": gauss_next}}


def set_rng_state(state: dict):
    torch.set_rng_state(state["torch"])
    n, p = state["numpy"], state["python"]
    if isinstance(n, dict):
        np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                             n["cached_gaussian"]))
        random.setstate((p["version"], tuple(int(x) for x in p["internal"].tolist()), p["gauss_next"]))
    else:  # written before RNG files held only tensors (numpy's state tuple, python's as a tuple)
        np.random.set_state(n)
        random.setstate(p)


class CheckpointError(AtomforgeError, RuntimeError):
    pass


def save(engine, root: Path, step: int, trainer_state: dict, ema, config: dict, keep_last: int,
         before_commit: Callable[[], None] = lambda: None):
    """`before_commit` runs once this rank's files are written (where the fault tests kill a rank)."""
    rank = dist.get_rank()
    tag = tag_for(step)
    tmp_tag = f"tmp-{tag}"
    if rank == 0:
        for stale in root.glob("tmp-step_*") if root.is_dir() else []:  # left by a kill mid-write
            shutil.rmtree(stale, ignore_errors=True)
    dist.barrier()
    d = root / tmp_tag
    try:
        engine.save_checkpoint(str(root), tag=tmp_tag, client_state={"trainer": trainer_state}, save_latest=False)
        torch.save(rng_state(), d / f"rng_rank{rank}.pt")
        torch.save(ema.state_dict(), d / f"ema_rank{rank}.pt")
        full = ema.full_state_dict()  # collective
        if rank == 0:
            torch.save(full, d / "ema.pt")
            (d / "trainer_state.json").write_text(json.dumps(trainer_state, indent=1))
            (d / "config.json").write_text(json.dumps(config, indent=1))
    except Exception as e:  # a full disk surfaces as OSError or torch's "file write failed" RuntimeError
        shutil.rmtree(d, ignore_errors=True)  # give the space back; the previous checkpoint is untouched
        prev = complete_checkpoints(root)
        free = shutil.disk_usage(root).free if root.is_dir() else 0
        raise CheckpointError(f"checkpoint {tag} not written "
                              f"({type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}; "
                              f"{free / 2**20:.1f} MiB free in {root}); "
                              f"kept {prev[-1].name if prev else 'no earlier checkpoint'}") from e
    before_commit()
    dist.barrier()
    if rank == 0:
        final = root / tag
        if final.exists():
            shutil.rmtree(final)
        os.replace(d, final)
        (final / MARKER).write_text(json.dumps({"step": step}))
        _fsync_dir(root)
        for old in complete_checkpoints(root)[:-keep_last] if keep_last > 0 else []:
            shutil.rmtree(old, ignore_errors=True)
    dist.barrier()


def _fsync_dir(path: Path):
    try:
        fd = os.open(path, os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
    except OSError:
        pass


def load_newest(engine, root: Path, ema, explicit: str | None = None) -> dict | None:
    """Load the newest loadable complete checkpoint; returns its trainer state or None."""
    rank = dist.get_rank()
    candidates = [Path(explicit)] if explicit else list(reversed(complete_checkpoints(root)))
    for ck in candidates:
        error, unsafe = None, False
        try:
            with weights_only(ck):  # DeepSpeed's own torch.load calls included
                path, client = engine.load_checkpoint(str(ck.parent), tag=ck.name, load_module_strict=True)
            if path is None:
                raise RuntimeError("DeepSpeed found nothing to load")
            ema.load_state_dict(load_tensors(ck / f"ema_rank{rank}.pt"))
            set_rng_state(load_tensors(ck / f"rng_rank{rank}.pt"))
        except UnsafeFileError as e:
            error, unsafe = e, True
        except Exception as e:  # noqa: BLE001 - any broken file means: try the previous one
            error = e
        if not _all_ok(not unsafe):  # a file that would run code stops the run: never quietly fall back past it
            raise UnsafeFileError(str(error) if unsafe
                                  else f"refusing to resume from {ck}: another rank found pickled code in it")
        if not _all_ok(error is None):  # every rank resumes from the same step, or none does
            if explicit:
                raise RuntimeError(f"cannot resume from {ck}: {error or 'unreadable on another rank'}") from error
            log.warning("skipping unreadable checkpoint %s: %s", ck, error or "unreadable on another rank")
            continue
        log.info("resumed from %s", ck)
        return client["trainer"]
    return None


def _all_ok(ok: bool) -> bool:
    flag = torch.tensor([1 if ok else 0], dtype=torch.int32)
    if dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(flag, op=dist.ReduceOp.MIN)
    return bool(flag.item())
