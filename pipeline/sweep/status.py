"""Per-run status.json: what a relaunch does with each run (skip finished, retry failed up to a limit)."""
from __future__ import annotations

import json
from pathlib import Path

STATUS = "status.json"


def read(run_dir: Path) -> dict:
    f = Path(run_dir) / STATUS
    return json.loads(f.read_text()) if f.is_file() else {"status": "pending", "attempts": 0}


def write(run_dir: Path, **fields) -> dict:
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    st = {**read(run_dir), **fields}
    tmp = run_dir / (STATUS + ".tmp")
    tmp.write_text(json.dumps(st, indent=1))
    tmp.replace(run_dir / STATUS)
    return st


def decide(st: dict, max_retries: int) -> str:
    """'skip' a finished run, 'give_up' on one that failed 1 + max_retries times, else 'run'.

    A run left 'running' by a killed job counts as a failed attempt: its attempt counter was already raised.
    """
    if st.get("status") == "done":
        return "skip"
    if st.get("attempts", 0) >= 1 + max_retries:
        return "give_up"
    return "run"
