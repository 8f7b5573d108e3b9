"""Received runs and exported folders with planted payloads: loading them never runs code, and the user's
files are never deleted. Each payload would create a marker file if it ran; the commands are the CLI's."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from helpers import train

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


class Payload:
    """Pickles to a call of os.system: unpickling it runs the command."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def plant(path: Path, marker: Path, key: str = "payload"):
    """Add a payload to one of our own (trusted) torch files, as a hostile sender would."""
    obj = torch.load(path, map_location="cpu", weights_only=False)
    if isinstance(obj, dict):
        obj[key] = Payload(marker)
    else:
        obj = {"original": obj, key: Payload(marker)}
    torch.save(obj, path)


def cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "ATOMFORGE_DEBUG"}
    return subprocess.run([sys.executable, "-m", "atomforge.pipeline.cli", *args], cwd=REPO, env=env,
                           capture_output=True,
                          text=True, timeout=timeout)


def one_line_error(p: subprocess.CompletedProcess, *words: str) -> bool:
    errs = [ln for ln in p.stderr.splitlines() if ln.startswith("atomforge: error:")]
    return p.returncode != 0 and len(errs) >= 1 and all(w in errs[-1] for w in words) and "Traceback" not in p.stderr


def digest(folder: Path) -> dict:
    return {str(f.relative_to(folder)): hashlib.sha256(f.read_bytes()).hexdigest()
            for f in sorted(folder.rglob("*")) if f.is_file()}


@pytest.fixture(scope="module")
def runs(emt_dataset, tmp_path_factory):
    """A 1-rank ZeRO-0 run and a 2-rank ZeRO-2 run, each with one checkpoint: what a colleague would send."""
    root = tmp_path_factory.mktemp("received")
    z0 = train(root / "z0", emt_dataset, steps=2, ckpt_every=2)
    z2 = train(root / "z2", emt_dataset, steps=2, ckpt_every=2, world_size=2, deepspeed={"stage": 2})
    return {"z0": z0, "z2": z2}


def received(runs, name: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(runs[name], tmp_path / name))


def ckpt(run: Path) -> Path:
    return sorted((run / "checkpoints").glob("step_*"))[-1]


@pytest.mark.parametrize("name,file", [("z0", "rng_rank0.pt"), ("z0", "ema_rank0.pt"),
                                       ("z0", "mp_rank_00_model_states.pt"),
                                       ("z2", "zero_pp_rank_0_mp_rank_00_optim_states.pt")])
def test_resume_refuses_pickled_code(runs, emt_dataset, tmp_path, tally, ledger, name, file):
    tally.tried()
    ledger["injected"] += 1
    run, marker = received(runs, name, tmp_path), tmp_path / "marker"
    plant(ckpt(run) / file, marker)
    before = digest(run / "checkpoints")
    ws = "2" if name == "z2" else "1"
    p = cli("train", f"run_dir={run}", f"data.root={emt_dataset}", "train.steps=4", "train.wandb=false",
            "train.progress=false", "train.max_atoms=128", f"world_size={ws}",
            f"deepspeed={'zero2' if name == 'z2' else 'zero0'}")
    assert not marker.exists(), "the payload ran"
    assert p.returncode != 0 and "refusing to load" in p.stderr and "pickled code" in p.stderr, p.stderr[-2000:]
    assert digest(run / "checkpoints") == before  # refused, not skipped past and overwritten
    tally.handled()
    ledger["survived"] += 1


@pytest.mark.parametrize("key", ["resume", "init_from"])
def test_training_from_a_received_checkpoint_refuses_pickled_code(runs, emt_dataset, tmp_path, tally, key):
    """A checkpoint of someone else's run given as the start of a new one (resume=<ckpt>, or init_from=<ckpt> as the
    two-stage recipe does) is refused before the new run starts."""
    tally.tried()
    run, marker = received(runs, "z0", tmp_path), tmp_path / "marker"
    plant(ckpt(run) / "ema.pt", marker)
    new = tmp_path / "new"
    p = cli("train", f"run_dir={new}", f"data.root={emt_dataset}", f"train.{key}={ckpt(run)}", "train.steps=4",
            "train.wandb=false", "train.progress=false", "world_size=1", "deepspeed=zero0")
    assert not marker.exists() and one_line_error(p, "refusing to load", "pickled code"), p.stderr[-2000:]
    assert not (new / "checkpoints").exists()
    tally.handled()


@pytest.mark.parametrize("name,file", [("z0", "mp_rank_00_model_states.pt"), ("z0", "ema.pt"),
                                       ("z2", "zero_pp_rank_1_mp_rank_00_optim_states.pt")])
def test_export_and_eval_refuse_pickled_code(runs, emt_dataset, tmp_path, tally, name, file):
    tally.tried(2)
    run, marker = received(runs, name, tmp_path), tmp_path / "marker"
    plant(ckpt(run) / file, marker)
    p = cli("export", f"run={run}", f"out={tmp_path / 'hub'}")
    assert not marker.exists() and one_line_error(p, "refusing to load", "pickled code"), p.stderr[-2000:]
    assert not (tmp_path / "hub").exists()
    tally.handled()
    p = cli("eval", f"data.root={emt_dataset}", f"eval.model={run}", f"eval.out={tmp_path / 'eval'}")
    assert not marker.exists() and one_line_error(p, "refusing to load"), p.stderr[-2000:]
    tally.handled()


@pytest.mark.parametrize("file", ["mp_rank_00_model_states.pt", "zero_pp_rank_1_mp_rank_00_optim_states.pt"])
def test_rank_loads_refuse_what_vetting_missed(runs, tmp_path, tally, file):
    """The CLI's static vetting answers first; behind it every torch.load a rank makes (DeepSpeed's own, which ask
    for weights_only=False) still goes through the weights-only unpickler."""
    from atomforge.pipeline.train.safe_load import UnsafeFileError, vet, weights_only

    tally.tried(2)
    run, marker = received(runs, "z2", tmp_path), tmp_path / "marker"
    vet(ckpt(run))  # a clean ZeRO-2 checkpoint passes
    plant(ckpt(run) / file, marker)
    with pytest.raises(UnsafeFileError, match="pickled code"):
        vet(ckpt(run))
    tally.handled()
    with pytest.raises(UnsafeFileError, match="pickled code"), weights_only(file):
        torch.load(ckpt(run) / file, map_location="cpu", weights_only=False)
    assert not marker.exists()
    tally.handled()


@pytest.fixture(scope="module")
def export_dir(runs, tmp_path_factory):
    from atomforge.pipeline.export import export

    return export(str(runs["z0"]), str(tmp_path_factory.mktemp("hub") / "model"))


def _resign(folder: Path, key: str):
    """Rewrite the recorded checksum to match a tampered file: the folder's own record is then no defence."""
    cfg = json.loads((folder / "config.json").read_text())
    if key == "weights":
        cfg["weights_sha256"] = hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()
    else:
        cfg["fairchem_checkpoint"]["sha256"] = hashlib.sha256((folder / "inference_ckpt.pt").read_bytes()).hexdigest()
    (folder / "config.json").write_text(json.dumps(cfg))


def test_fairchem_checkpoint_payload_refused(export_dir, tmp_path, tally):
    from atomforge.pipeline.export import fairchem_calculator
    from atomforge.pipeline.export.files import UnsafeFolderError
    from atomforge.pipeline.train.safe_load import UnsafeFileError

    tally.tried(3)
    marker = tmp_path / "marker"
    d = Path(shutil.copytree(export_dir, tmp_path / "a"))
    plant(d / "inference_ckpt.pt", marker, "extra")  # checksum left as it was
    with pytest.raises(UnsafeFolderError, match="does not match the sha256"):
        fairchem_calculator(d)
    tally.handled()
    _resign(d, "fairchem")  # checksum updated with it: the weights-only read still refuses the payload
    with pytest.raises(UnsafeFileError, match="pickled code"):
        fairchem_calculator(d)
    assert not marker.exists()
    tally.handled()
    # a well-formed checkpoint whose config asks hydra to build something else
    from fairchem.core.units.mlip_unit.api.inference import MLIPInferenceCheckpoint

    d = Path(shutil.copytree(export_dir, tmp_path / "b"))
    with torch.serialization.safe_globals([MLIPInferenceCheckpoint]):
        ck = torch.load(d / "inference_ckpt.pt", weights_only=True)
    ck.model_config = {"_target_": "os.system", "command": f"touch {marker}"}
    torch.save(ck, d / "inference_ckpt.pt")
    _resign(d, "fairchem")
    with pytest.raises(UnsafeFolderError, match="never writes"):
        fairchem_calculator(d)
    assert not marker.exists()
    tally.handled()


def test_fairchem_calculator_matches_ours(export_dir, tally):
    from ase.build import bulk

    from atomforge.pipeline.export import calculator, fairchem_calculator

    tally.tried()
    a = bulk("Cu", "fcc", a=3.61, cubic=True)
    a.symbols[0] = "Al"
    b = a.copy()
    a.calc, b.calc = calculator(export_dir), fairchem_calculator(export_dir)
    assert abs(a.get_potential_energy() - b.get_potential_energy()) < 1e-4 * max(1.0, abs(a.get_potential_energy()))
    tally.handled()


def test_tampered_or_linked_weights_refused(export_dir, tmp_path, tally):
    from atomforge.pipeline.export import load
    from atomforge.pipeline.export.files import UnsafeFolderError

    tally.tried(4)
    d = Path(shutil.copytree(export_dir, tmp_path / "a"))
    w = d / "model.safetensors"
    w.write_bytes(w.read_bytes()[:-8] + b"\0" * 8)
    with pytest.raises(UnsafeFolderError, match="does not match the sha256"):
        load(d)
    tally.handled()
    _resign(d, "weights")  # rewritten together with its checksum: only an independent record catches it
    good = json.loads((export_dir / "config.json").read_text())["weights_sha256"]
    with pytest.raises(UnsafeFolderError, match="not the expected"):
        load(d, weights_sha256=good)
    tally.handled()
    outside = tmp_path / "elsewhere.safetensors"
    shutil.copy(export_dir / "model.safetensors", outside)
    d2 = Path(shutil.copytree(export_dir, tmp_path / "b"))
    (d2 / "model.safetensors").unlink()
    (d2 / "model.safetensors").symlink_to(outside)
    with pytest.raises(UnsafeFolderError, match="symlink out of the model folder"):
        load(d2)
    tally.handled()
    with pytest.raises(FileNotFoundError, match="model folder not found: hub/my-model"):
        load("hub/my-model")  # a mistyped local path, never a hub id
    tally.handled()


def test_export_never_deletes_user_files(runs, export_dir, tmp_path, tally, monkeypatch):
    from atomforge.pipeline.export import export
    from atomforge.pipeline.export.files import UnsafeFolderError

    tally.tried(4)
    run = received(runs, "z0", tmp_path)
    before = digest(run)
    p = cli("export", f"run={run}", f"out={run}")  # the run folder itself
    assert one_line_error(p, "would replace the run folder") and digest(run) == before, p.stderr
    tally.handled()
    mine = tmp_path / "notes"
    mine.mkdir()
    (mine / "thesis.tex").write_text("months of work")
    p = cli("export", f"run={run}", f"out={mine}")
    assert one_line_error(p, "not an atomforge export") and (mine / "thesis.tex").read_text() == "months of work"
    tally.handled()
    # replacing an old export: a failure half-way leaves the old one whole
    old = Path(shutil.copytree(export_dir, tmp_path / "old"))
    want = digest(old)
    import atomforge.pipeline.export.fairchem_ckpt as fc

    monkeypatch.setattr(fc, "write_inference_checkpoint", lambda *a, **k: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError, match="disk full"):
        export(str(run), str(old))
    assert digest(old) == want and not list(tmp_path.glob(".old.tmp-*"))
    tally.handled()
    monkeypatch.undo()
    export(str(run), str(old))  # a complete new export replaces it
    assert (old / "config.json").is_file() and oct((old / "model.safetensors").stat().st_mode & 0o777) == "0o644"
    with pytest.raises(UnsafeFolderError, match="also holds"):
        (old / "my_plot.png").write_text("x")
        export(str(run), str(old))
    assert (old / "my_plot.png").exists()
    tally.handled()
