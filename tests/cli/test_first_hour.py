"""A new user's first hour, through the installed `atomforge` command: help that never starts work, typed
config errors naming the key, hydra's hints kept, no third-party noise, Ctrl-C that checkpoints, and a stale
DeepSpeed build lock that is cleared instead of hanging the run."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from atomforge.pipeline.cli_help import ACTIONS, HELP

REPO = Path(__file__).resolve().parents[2]
ATOMFORGE = str(Path(sys.executable).parent / "atomforge")  # the console script users run


def user_env() -> dict:
    """The environment of a user's shell: none of the variables the test suite sets for itself."""
    return {k: v for k, v in os.environ.items()
            if k not in ("TORCH_EXTENSIONS_DIR", "DS_ACCELERATOR", "ATOMFORGE_DEBUG")}


def run(*args, timeout=300, cwd=None, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([ATOMFORGE, *args], capture_output=True, text=True, cwd=cwd or REPO,
                          env={**user_env(), **(env or {})}, timeout=timeout)


@pytest.mark.parametrize("words", sorted(HELP))
def test_help_for_every_stage_and_action_never_starts_work(words, tmp_path):
    p = run(*words.split(), "--help", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith(f"usage: atomforge {words}") and "example:" in p.stdout
    assert not list(tmp_path.iterdir())  # nothing built, trained or written
    if words.split()[0] in ACTIONS and " " not in words:
        assert "actions:" in p.stdout


def test_every_stage_has_help():
    from atomforge.pipeline.cli import STAGES

    assert set(STAGES) <= set(HELP) and all(f"{s} {a}" in HELP for s, acts in ACTIONS.items() for a in acts)


def test_cfg_job_prints_the_composed_config(tmp_path):
    p = run("train", "--cfg", "job", "train.steps=7", "model=esen_s", cwd=tmp_path)
    assert p.returncode == 0 and "steps: 7" in p.stdout and "name: esen_s" in p.stdout, p.stderr
    assert not list(tmp_path.iterdir())


def test_unknown_flag_and_typed_values_are_one_line(emt_dataset):
    p = run("eval", "--verbose")
    assert p.returncode == 2 and p.stderr.strip() == ("atomforge: error: unknown flag '--verbose'; "
                                                      "see `atomforge eval --help`")
    for override, want in (("train.steps=fifty", "train.steps: expected an integer, got 'fifty'"),
                           ("world_size=two", "world_size: expected an integer, got 'two'"),
                           ("model.stress=maybe", "model.stress: expected true or false, got 'maybe'"),
                           ("train.lr=fast", "train.lr: expected a number, got 'fast'"),
                           ("deepspeed.stage=three", "deepspeed.stage: expected an integer, got 'three'")):
        p = run("train", f"data.root={emt_dataset}", override)
        assert p.returncode == 2 and p.stderr.strip().splitlines() == [f"atomforge: error: {want}"], p.stderr


def test_hydra_hints_survive():
    p = run("train", "model=esen_q")
    lines = p.stderr.strip().splitlines()
    assert p.returncode == 2 and "Could not find 'model/esen_q'" in lines[0]
    assert any("Available options in 'model':" in ln and "esen_xs" in ln for ln in lines) and len(lines) <= 3, p.stderr
    p = run("train", "train.stepz=5")  # the typed schema knows the keys: a near miss is named
    assert p.returncode == 2 and p.stderr.strip().splitlines() == [
        "atomforge: error: train.stepz: no such key in train (did you mean train.steps?); "
        "`atomforge <stage> --cfg job` lists them"], p.stderr


def test_models_lists_the_ladder_without_third_party_noise():
    p = run("models")
    assert p.returncode == 0 and all(f"\n{m} " in p.stdout for m in ("esen_xs", "esen_s", "mole_s", "escaip_s"))
    assert "203,906" in p.stdout  # esen_xs's parameters, counted on the meta device
    assert "Warp" not in p.stderr and "CUDA" not in p.stderr and "Setting accelerator" not in p.stderr, p.stderr


def test_more_ranks_than_cores_is_one_warning(caplog):
    from atomforge.pipeline.runtime import check_world_size

    cores = os.cpu_count() or 1
    with caplog.at_level("WARNING", logger="atomforge.pipeline.runtime"):
        check_world_size(cores, cuda=False)
        assert not caplog.records
        check_world_size(cores + 1, cuda=False)
        check_world_size(3, cuda=True, gpus=2)
    msgs = [r.getMessage() for r in caplog.records]
    assert len(msgs) == 2 and f"world_size={cores + 1} is more ranks than this machine's {cores} cores" in msgs[0]
    assert "2 GPUs" in msgs[1] and all("\n" not in m for m in msgs)


@pytest.mark.slow
def test_ctrl_c_checkpoints_and_exits_130(emt_dataset, tmp_path):
    run_dir = tmp_path / "run"
    proc = subprocess.Popen([ATOMFORGE, "train", f"data.root={emt_dataset}", f"run_dir={run_dir}", "train.steps=400",
                             "train.wandb=false", "train.progress=false", "train.max_atoms=64", "train.ckpt_every=0",
                             "world_size=2", "deepspeed=zero2"], cwd=REPO, env=user_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    t0 = time.time()
    while not (run_dir / "metrics.jsonl").is_file() or '"loss"' not in (run_dir / "metrics.jsonl").read_text():
        assert proc.poll() is None and time.time() - t0 < 300, proc.stderr.read()[-2000:]
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGINT)  # what the terminal sends to the foreground process group on Ctrl-C
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 130, err[-3000:]
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err[-3000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith("atomforge: interrupted: checkpoint written at step"), err[-2000:]
    step = int(last.split("step ")[1].split()[0])
    assert (run_dir / "checkpoints" / f"step_{step:08d}" / "COMPLETE").is_file()


@pytest.mark.slow
def test_stale_deepspeed_build_lock_is_cleared(emt_dataset, tmp_path):
    from atomforge.pipeline.runtime import SHM_OP, ops_dir

    # a copy of this environment's built op in a folder of the test's own: every atomforge process clears the
    # stale locks of the folder it uses, so one planted in the shared folder could be cleared by another worker's
    ops = tmp_path / "torch_extensions"
    shutil.copytree(ops_dir() / SHM_OP, ops / SHM_OP)
    lock = ops / SHM_OP / "lock"
    lock.write_text("")  # what a build killed mid-way leaves behind
    p = run("train", f"data.root={emt_dataset}", f"run_dir={tmp_path / 'run'}", "train.steps=1", "train.wandb=false",
            "train.progress=false", "train.max_atoms=64", "world_size=2", "deepspeed=zero2", timeout=400,
            env={"TORCH_EXTENSIONS_DIR": str(ops)})
    assert p.returncode == 0, p.stderr[-3000:]
    assert "removed a stale build lock" in p.stderr and not lock.exists()
    assert (ops / SHM_OP / f"{SHM_OP}.so").is_file()
