"""The recipes' run scheduler: after one run fails (or is stopped by a signal) no further run starts."""
from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import pytest

from atomforge.data_prep.errors import UsageError
from atomforge.pipeline.reproduce.runner import Runner


@pytest.mark.parametrize("slots", [1, 2])
def test_a_failed_run_stops_the_queue(slots):
    started, lock = [], threading.Lock()

    def one(x):
        with lock:
            started.append(x)
        if x == 1:
            raise UsageError("training run_1 was stopped by a signal (checkpoint written)")
        time.sleep(0.2)

    with pytest.raises(UsageError, match="run_1 was stopped"):
        Runner.side_by_side(SimpleNamespace(concurrent_runs=slots), one, list(range(8)))
    assert sorted(started) == [0, 1]  # 1 slot: 0 then 1; 2 slots: 0 and 1 side by side; never 2 or later


def test_all_runs_finish_when_none_fails():
    done = []
    Runner.side_by_side(SimpleNamespace(concurrent_runs=2), done.append, list(range(5)))
    assert sorted(done) == list(range(5))


def test_a_recipe_stopped_by_a_signal_stops_and_says_how_to_resume(tmp_path, monkeypatch, capsys):
    """`atomforge reproduce` as users run it, with every training run ending as a signal leaves it (exit 75,
    checkpoint written): the recipe exits 2 with one line naming the stopped run, and starts nothing after it."""
    from atomforge.pipeline.cli import main
    from atomforge.pipeline.reproduce import runner
    from atomforge.pipeline.train.signals import EXIT_REQUEUE

    launched = []
    monkeypatch.setattr(runner, "launch", lambda tc, n: launched.append(tc.run_dir.rstrip("/").rsplit("/", 1)[-1])
                        or EXIT_REQUEUE)
    rc = main(["reproduce", "pretrain-finetune", "smoke=true", f"out={tmp_path / 'o'}", f"work={tmp_path / 'w'}"])
    err = capsys.readouterr().err
    assert rc == 2 and "was stopped by a signal (checkpoint written); run the same command again to resume" in err
    assert launched == ["pretrain_with_si_re"]  # the smoke's one pre-training; no fine-tune started after it
    assert not (tmp_path / "o" / "report.md").exists()
