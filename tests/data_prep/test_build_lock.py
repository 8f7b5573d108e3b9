"""One build per output folder (a second one fails with one line naming the folder and the owner's pid; a
dead owner's lock is taken over with a warning), per-process temp names, and pool workers that die with a
killed build."""
from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from atomforge.data_prep.build import BuildConfig, build
from atomforge.data_prep.lock import LOCK_NAME, FolderLocked
from tests.conftest import REPO
from tests.data_prep.dft_files import frames, rows, write_xyz

HOLD = """
import sys, time
from atomforge.data_prep.lock import OutputLock
OutputLock(sys.argv[1]).acquire()
print("locked", flush=True)
time.sleep(120)
"""


def _source(tmp_path: Path) -> list[dict]:
    src = tmp_path / "in"
    src.mkdir(exist_ok=True)
    write_xyz(src / "a.extxyz", frames(4, seed=1))
    return [{"type": "extxyz", "path": str(src)}]


def _env():
    return dict(os.environ, PYTHONPATH=str(REPO))


def test_second_build_is_refused_then_dead_owner_is_taken_over(tmp_path, caplog):
    out = tmp_path / "out"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(out)], stdout=subprocess.PIPE, text=True, env=_env(),
                              cwd=REPO)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(FolderLocked) as e:
            build(BuildConfig(out=str(out), sources=_source(tmp_path), split={"train": 1.0}), progress=False)
        msg = str(e.value)
        assert "\n" not in msg and str(out) in msg and f"pid {holder.pid}" in msg
        assert not (out / "manifest.parquet").exists()  # it wrote nothing
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with caplog.at_level(logging.WARNING, logger="atomforge.data_prep.lock"):
        build(BuildConfig(out=str(out), sources=_source(tmp_path), split={"train": 1.0}), progress=False)
    assert any(f"pid {holder.pid}" in r.getMessage() and "stale" in r.getMessage() for r in caplog.records)
    assert len(rows(out)) == 4
    assert not (out / LOCK_NAME).exists()  # released


def test_lock_file_of_a_dead_pid_is_taken_over(tmp_path, caplog):
    out = tmp_path / "out"
    out.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (out / LOCK_NAME).write_text(f"{dead.pid}\n")
    with caplog.at_level(logging.WARNING, logger="atomforge.data_prep.lock"):
        build(BuildConfig(out=str(out), sources=_source(tmp_path), split={"train": 1.0}), progress=False)
    assert any(f"pid {dead.pid}" in r.getMessage() and "dead" in r.getMessage() for r in caplog.records)


def test_temp_names_carry_the_pid(tmp_path, monkeypatch):
    import atomforge.data_prep.build as b

    seen = []
    real_tar, real_write = b.wds.TarWriter, b.pq.write_table
    monkeypatch.setattr(b.wds, "TarWriter", lambda path, **kw: (seen.append(path), real_tar(path, **kw))[1])
    monkeypatch.setattr(b.pq, "write_table",
                        lambda t, path, **kw: (seen.append(str(path)), real_write(t, path, **kw))[1])
    build(BuildConfig(out=str(tmp_path / "out"), sources=_source(tmp_path), split={"train": 1.0}), progress=False)
    assert len(seen) == 2 and all(p.endswith(f".{os.getpid()}.tmp") for p in seen), seen


@pytest.mark.slow  # multi-process, through the CLI (~4 s)
def test_killed_build_takes_its_workers_with_it(tmp_path):
    """SIGKILL the real CLI mid-build: the pool's workers must be gone within seconds."""
    cli = Path(sys.executable).with_name("atomforge")
    cmd = [str(cli)] if cli.exists() else [sys.executable, "-m", "atomforge.pipeline.cli"]
    cmd += ["data", "build", "data=emt_demo", f"paths.data={tmp_path}", "data.build.workers=2",
            "data.build.sources=[{type:emt,elements:[Cu,Al],per_kind:{md:4000},structures_per_task:40}]"]
    p = subprocess.Popen(cmd, cwd=REPO, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers = []
    try:
        main = psutil.Process(p.pid)
        deadline = time.time() + 120
        while len(workers) < 2 and time.time() < deadline and p.poll() is None:
            time.sleep(0.2)
            workers = main.children(recursive=True)
        assert len(workers) >= 2, "the build never started its pool"
        time.sleep(1.0)  # let them get busy
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
        gone, alive = psutil.wait_procs(workers, timeout=5)
        assert not alive, f"workers still running after their build was killed: {[w.pid for w in alive]}"
    finally:  # whatever this test started and is still there
        for proc in [*workers, psutil.Process(p.pid) if p.poll() is None else None]:
            try:
                proc and proc.kill()
            except psutil.NoSuchProcess:
                pass


POOL_WITHOUT_PRCTL = """
import os, time
from concurrent.futures import ProcessPoolExecutor
import atomforge.data_prep.workers as w
w.set_pdeathsig = lambda: False  # as where prctl is unavailable: only the watchdog thread is left
with ProcessPoolExecutor(2, initializer=w.init_worker, initargs=(os.getpid(),)) as pool:
    futs = [pool.submit(time.sleep, 60) for _ in range(2)]
    time.sleep(1.0)
    print(" ".join(str(p.pid) for p in pool._processes.values()), flush=True)
    time.sleep(60)
"""


@pytest.mark.slow  # multi-process (~3 s)
def test_watchdog_alone_ends_orphaned_workers(tmp_path):
    p = subprocess.Popen([sys.executable, "-c", POOL_WITHOUT_PRCTL], stdout=subprocess.PIPE, text=True, env=_env(),
                         cwd=REPO)
    workers = []
    try:
        workers = [psutil.Process(int(x)) for x in p.stdout.readline().split()]
        assert len(workers) == 2
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
        gone, alive = psutil.wait_procs(workers, timeout=5)
        assert not alive, [w.pid for w in alive]
    finally:
        for proc in workers:
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                pass
