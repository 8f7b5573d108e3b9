"""`atomforge data build ... cluster=slurm`: the build's tasks as one submitit job array, the merge as a job
that runs once the whole array succeeded (dependency afterok).

The tasks and the merge are the local build's own functions (data_prep.build._run_task, data_prep.finalize),
so the result is byte-identical to a local build. The submitting process holds the folder lock throughout;
array elements write only their own task's files (pid-named temps, atomic renames) and take no lock. An
element that fails leaves no part behind: its task is resubmitted, up to cluster.data.retries times, and the
merge of the failed attempt (whose dependency can never be met) is cancelled.

Job states come from squeue, not sacct: submitit learns of a killed job only through accounting, which a
cluster may not run. Whether a task is done is read from its part, the build's own completion marker.
"""
from __future__ import annotations

import os
import shlex
import subprocess
import time
from pathlib import Path

from atomforge.data_prep.build import BuildConfig, _run_task, plan_tasks, task_done
from atomforge.data_prep.finalize import finalize
from atomforge.data_prep.lock import OutputLock
from atomforge.data_prep.errors import AtomforgeError

REPO = Path(__file__).resolve().parents[2]


class SlurmBuildError(AtomforgeError, RuntimeError):
    pass


def _merge(cfg: BuildConfig, n_tasks: int, todo: list[tuple]) -> dict:
    """The merge job: refuse to merge unless every task's part is there and current."""
    missing = [a[1] for a in todo if not task_done(a)]
    if missing:
        raise SlurmBuildError(f"task parts missing or stale: {', '.join(f'{t:06d}' for t in missing)}")
    return finalize(cfg, n_tasks=n_tasks)


def _executor(folder: Path, cluster: dict, name: str):
    import submitit

    d = cluster.get("data") or {}
    ex = submitit.AutoExecutor(folder=str(folder), cluster="slurm")
    params = {"name": name, "timeout_min": int(d.get("timeout_min") or 60),
              "cpus_per_task": int(d.get("cpus_per_task") or 1),
              "slurm_array_parallelism": int(d.get("array_parallelism") or 64),
              # jobs start where this process runs, with this repository importable and this interpreter
              "slurm_setup": [f"cd {shlex.quote(os.getcwd())}",
                              f"export PYTHONPATH={shlex.quote(str(REPO))}:${{PYTHONPATH:-}}"]}
    for key in ("partition", "account", "qos"):
        if cluster.get(key) not in (None, ""):
            params[f"slurm_{key}"] = cluster[key]
    if d.get("mem_gb"):
        params["mem_gb"] = float(d["mem_gb"])
    if int(d.get("gpus_per_task") or 0) > 0:  # teacher labelling on the node's GPU (the source's device: cuda)
        params["slurm_gres"] = f"gpu:{int(d['gpus_per_task'])}"
    ex.update_parameters(**params)
    return ex


def _squeue(job_ids: list[str]) -> list[str]:
    """The jobs (array elements) of job_ids still queued or running."""
    res = subprocess.run(["squeue", "-h", "-r", "-o", "%i", "-j", ",".join(job_ids)], capture_output=True, text=True)
    if res.returncode != 0:  # a job id SLURM no longer knows of: it ended long ago
        return []
    return res.stdout.split()


def _wait(job_ids: list[str], poll_s: float) -> None:
    while _squeue(job_ids):
        time.sleep(poll_s)


def _cancel(job_id: str) -> None:
    subprocess.run(["scancel", job_id], capture_output=True, text=True)


def _error_of(job) -> str:
    """The last line of what a failed element raised, or that it left nothing (killed, node lost)."""
    if job.paths.result_pickle.exists():
        try:
            job.result()
        except Exception as e:  # noqa: BLE001 - submitit re-raises the element's error with its traceback
            lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
            return lines[-1][:200] if lines else type(e).__name__
    return f"killed without a result (log {job.paths.stderr})"


def _submit(cfg: BuildConfig, cluster: dict, out: Path, pending: list[tuple], n_tasks: int, todo: list[tuple]):
    """One attempt: the pending tasks as an array, then the merge of the whole build after it."""
    ex = _executor(out / ".slurm", cluster, "atomforge-data")
    jobs, array = [], None
    if pending:
        with ex.batch():
            jobs = [ex.submit(_run_task, a) for a in pending]
        array = jobs[0].job_id.split("_")[0]
    ex.update_parameters(name="atomforge-data-merge",
                         slurm_additional_parameters={"dependency": f"afterok:{array}"} if array else {})
    return jobs, array, ex.submit(_merge, cfg, n_tasks, todo)


def slurm_build(cfg: BuildConfig, cluster: dict) -> dict:
    out = Path(cfg.out)  # as given, relative or not: the card records it, and jobs start in this directory
    (out / "shards").mkdir(parents=True, exist_ok=True)
    (out / "parts").mkdir(exist_ok=True)
    d = cluster.get("data") or {}
    retries, poll_s = int(d.get("retries", 2)), float(d.get("poll_s") or 2)
    with OutputLock(out):
        n_tasks, todo = plan_tasks(cfg, out)
        t0, arrays, retried, pending, live = time.time(), [], [], todo, []
        try:
            for attempt in range(retries + 1):
                jobs, array, merge = _submit(cfg, cluster, out, pending, n_tasks, todo)
                live = [j for j in (array, merge.job_id) if j]
                if array:
                    arrays.append(array)
                    print(f"submitted SLURM job array {array} ({len(pending)} tasks), "
                          f"merge job {merge.job_id} after it", flush=True)
                    _wait([array], poll_s)
                failed = [(a, j) for a, j in zip(pending, jobs) if not task_done(a)]
                if not failed:
                    break
                _cancel(merge.job_id)  # its dependency can no longer be met
                names = ", ".join(f"{a[1]:06d} ({_error_of(j)})" for a, j in failed)
                if attempt == retries:
                    raise SlurmBuildError(f"{len(failed)} task(s) still failed after {retries} retries: {names}")
                retried.append([a[1] for a, _ in failed])
                print(f"resubmitting {len(failed)} failed task(s) (retry {attempt + 1} of {retries}): {names}",
                      flush=True)
                pending = [a for a, _ in failed]
            _wait([merge.job_id], poll_s)
        except BaseException:  # interrupted: nothing may go on writing once the folder lock is released
            for j in live:
                _cancel(j)
            raise
        if not merge.paths.result_pickle.exists():
            raise SlurmBuildError(f"merge job {merge.job_id} ended without a result; see {merge.paths.stderr}")
        summary = merge.result()  # raises the merge's own error
    summary["build_seconds"] = time.time() - t0
    summary["tasks_run"] = len(todo)
    summary["slurm"] = {"arrays": arrays, "merge_job": merge.job_id, "retried": retried}
    return summary
