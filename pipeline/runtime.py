"""Process set-up shared by the CLI, the training launcher, `make install` and the tests.

DeepSpeed JIT-builds its CPU communication op on first use, in torch's extension folder, under a lock file
that a killed build leaves behind; every later run then waits on it forever, silently. So: one extension
folder per environment (the tests use the same one), the op built at install time, one line printed when a
run has to build it, and a lock whose owner is gone removed with a warning. Third-party import noise (warp's
"no CUDA driver" lines on a CPU machine) is silenced here too.
"""
from __future__ import annotations

import logging
import os
import sys
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)
SHM_OP = "deepspeed_shm_comm"


def ops_dir() -> Path:
    """Torch extensions of this environment (a venv's own folder: a build for another torch never collides)."""
    return Path(os.environ.get("TORCH_EXTENSIONS_DIR") or Path(sys.prefix) / "var" / "torch_extensions")


def _held(lock: Path) -> bool:
    """Whether any live process has the lock file open (torch's FileBaton keeps it open while it builds)."""
    target = str(lock.resolve())
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        try:
            for fd in fd_dir.iterdir():
                if os.readlink(fd) == target:
                    return True
        except OSError:  # a process that ended or is not ours to read
            continue
    return False


def clear_stale_locks(root: Path | None = None) -> list[Path]:
    root = root or ops_dir()
    removed = []
    if not Path("/proc/self/fd").is_dir():  # no way to see owners here: leave locks alone
        return removed
    for lock in sorted(Path(root).glob("*/lock")):
        if not _held(lock):
            log.warning("removed a stale build lock %s (its build was killed); the op will be rebuilt", lock)
            lock.unlink(missing_ok=True)
            removed.append(lock)
    return removed


def prepare() -> Path:
    """Call before anything may build an op: pins the extension folder for this process and its children."""
    d = ops_dir()
    os.environ["TORCH_EXTENSIONS_DIR"] = str(d)
    d.mkdir(parents=True, exist_ok=True)
    clear_stale_locks(d)
    return d


def shm_op_built() -> bool:
    return (ops_dir() / SHM_OP / f"{SHM_OP}.so").is_file()


def announce_build(world_size: int, cuda: bool):
    if world_size > 1 and not cuda and not shm_op_built():
        print(f"building DeepSpeed's CPU communication op once for this environment (about 2 minutes) in {ops_dir()}",
              file=sys.stderr, flush=True)


def build_ops() -> Path:
    """`make install`: build the CPU op now, so that no run waits for it."""
    prepare()
    os.environ.setdefault("DS_ACCELERATOR", "cpu")
    with quiet_fds():
        from deepspeed.accelerator import get_accelerator

        builder = get_accelerator().create_op_builder("ShareMemCommBuilder")
    if builder is not None and not shm_op_built():
        builder.load(verbose=False)
    return ops_dir()


def check_world_size(world_size: int, cuda: bool, gpus: int = 0):
    have = gpus if cuda else (os.cpu_count() or 1)
    if world_size > have:
        log.warning("world_size=%d is more ranks than this machine's %d %s: they will share them and run slower",
                    world_size, have, "GPUs" if cuda else "cores")


@contextmanager
def quiet_fds():
    """Mute stdout and stderr at the file-descriptor level (native libraries print past Python's streams)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 1)
        os.dup2(null, 2)
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, null):
            os.close(fd)


def silence_imports():
    """warp (pulled in by fairchem) prints three lines from C when it finds no CUDA driver; DeepSpeed warns that it
    picked the CPU. Neither says anything a user of a CPU machine can act on."""
    if not any(Path("/dev").glob("nvidia[0-9]*")):
        os.environ.setdefault("DS_ACCELERATOR", "cpu")
        try:
            with quiet_fds():
                import warp

                warp.config.quiet = True
                warp.init()
        except ImportError:
            pass
