"""Build workers that die with the build: a killed build must not leave its pool running (and writing).

Linux: the kernel sends SIGKILL to the worker when its parent dies (prctl PR_SET_PDEATHSIG). Elsewhere, or
if prctl is unavailable, a daemon thread polls the parent and exits the worker once it is gone.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import threading
import time

from atomforge.data_prep.lock import drop_inherited

PR_SET_PDEATHSIG = 1
POLL_S = 0.5


def set_pdeathsig() -> bool:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _watch(parent: int, ppid: int) -> None:
    while os.getppid() == ppid and _alive(parent):
        time.sleep(POLL_S)
    os._exit(1)


def init_worker(parent: int) -> None:
    """ProcessPoolExecutor initializer; `parent` is the build's pid, taken before the pool starts."""
    set_pdeathsig()
    drop_inherited()
    # the watchdog also covers a parent that died before prctl took effect (we were already reparented), and
    # start methods where our direct parent is a fork server rather than the build
    threading.Thread(target=_watch, args=(parent, os.getppid()), daemon=True, name="parent-watchdog").start()
