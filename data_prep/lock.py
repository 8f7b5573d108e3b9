"""One build at a time per output folder: `out/.build.lock` holds the owner's pid under a kernel flock.

The flock is released by the kernel when its owner dies, so a lock left by a killed build is never mistaken for
a live one; the pid in the file only names the owner in the error and in the take-over warning.
"""
from __future__ import annotations

import fcntl
import logging
import os
from pathlib import Path
from atomforge.data_prep.errors import AtomforgeError

log = logging.getLogger(__name__)
LOCK_NAME = ".build.lock"
HELD: set[int] = set()  # this process's lock fds: a forked worker closes its copies (drop_inherited)


def drop_inherited() -> None:
    """In a forked child: close the copies of the parent's lock fds, so that the lock dies with the parent alone
    (a flock lives as long as any fd on it is open, and a worker killed a moment later would still hold it)."""
    for fd in list(HELD):
        try:
            os.close(fd)
        except OSError:
            pass
        HELD.discard(fd)


class FolderLocked(AtomforgeError, RuntimeError):
    pass


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def _read_pid(fd: int) -> int | None:
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, 64).decode(errors="replace").strip()
    return int(text) if text.isdigit() else None


class OutputLock:
    """`what` names the kind of owner in messages; `name` is the lock file's (a run folder uses its own)."""

    def __init__(self, out: Path, name: str = LOCK_NAME, what: str = "build"):
        self.out = Path(out)
        self.path = self.out / name
        self.what = what
        self.fd: int | None = None

    def acquire(self) -> "OutputLock":
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                pid = _read_pid(fd)
                os.close(fd)
                owner = f"pid {pid}" if pid is not None else "another process"
                raise FolderLocked(f"{self.out} is in use by another {self.what} ({owner}); wait for it or use another "
                                   "folder") from None
            try:  # the file we locked may have been removed by its previous owner meanwhile: lock the current one
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if not same:
                os.close(fd)
                continue
            break
        old = _read_pid(fd)
        if old is not None and old != os.getpid():
            state = "dead" if not _pid_alive(old) else "alive but not holding it"
            log.warning("taking over the stale %s lock of %s (pid %d, %s)", self.what, self.out, old, state)
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, f"{os.getpid()}\n".encode())
        os.fsync(fd)
        self.fd = fd
        HELD.add(fd)
        return self

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            os.unlink(self.path)  # while still holding it, so nobody else's fresh lock is removed
        except FileNotFoundError:
            pass
        os.close(self.fd)
        HELD.discard(self.fd)
        self.fd = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
