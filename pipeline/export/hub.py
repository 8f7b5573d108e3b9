"""Write and read the hub folder. Loading never unpickles: JSON config + safetensors weights."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from safetensors.torch import save_file

from atomforge.data_prep.integrity import file_sha256
from atomforge.data_prep.schema import UNITS
from atomforge.pipeline.data.dataset import BuiltDataset
from atomforge.pipeline.export.card import model_card
from atomforge.pipeline.export.files import CONFIG, FAIRCHEM_CKPT, check_target, inside, publish, staging
from atomforge.pipeline.export.verify import compare
from atomforge.pipeline.models.config import ModelConfig
from atomforge.pipeline.models.folder import FORMAT_VERSION, from_pretrained, load, load_state, read_config  # noqa: F401 (hub's names)
from atomforge.pipeline.models.ladder import backbone_kwargs
from atomforge.pipeline.models.potential import build_model
from atomforge.pipeline.models.tasks import single_task
from atomforge.pipeline.train.consolidate import checkpoint_state, references
from atomforge.pipeline.train.final_predictions import PREDICTIONS
from atomforge.pipeline.train.run_dir import RunDir

ROUND_TRIP_TOL = 1e-6
REPEAT_FACTOR = 4.0  # an export may differ from the record by at most this many times the model's run-to-run spread


def export(run_dir: str, out: str, checkpoint: str = "latest", ema: bool = True, metrics: dict | None = None,
           fairchem: bool = True, recipe: dict | None = None) -> Path:
    """Consolidate a run's checkpoint into a hub folder; with `fairchem`, also `inference_ckpt.pt` for fairchem's
    loaders; `recipe`: how the model was made (data mix, compute, commit), kept in config.json and shown on the
    card."""
    out_p = Path(out)
    check_target(out_p, Path(run_dir))
    ck = RunDir(run_dir).checkpoint(checkpoint)
    rec, sd = checkpoint_state(ck, ema=ema)
    tmp = staging(out_p)
    try:
        _write(tmp, out_p, ck, rec, sd, ema, run_dir, metrics, fairchem, recipe)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # this export's own staging folder; `out` is untouched
        raise
    return publish(tmp, out_p)


def _write(tmp: Path, out_p: Path, ck: Path, rec: dict, sd: dict, ema: bool, run_dir: str, metrics: dict | None,
           fairchem: bool, recipe: dict | None = None) -> None:
    # sorted names: safetensors keeps insertion order among equal-sized tensors, and the checksum must not depend on it
    # one metadata key: a Rust HashMap orders several at random, changing the checksum
    save_file(dict(sorted(sd.items())), str(tmp / "model.safetensors"), metadata={"format": "pt"})
    train, card = rec["train"], rec["card"]
    refs, energy_scale = references(rec)
    mcfg = ModelConfig(**train["model"])
    _, bb = backbone_kwargs(mcfg.name, mcfg.backbone)
    state = json.loads((ck / "trainer_state.json").read_text())
    parent = None
    if train.get("init_from"):
        pc = Path(train["init_from"]) / "config.json"
        if pc.is_file():
            p = json.loads(pc.read_text())
            parent = {"path": str(train["init_from"]), "weights_sha256": p.get("weights_sha256"), "name": p.get("name")}
    config = {
        "format_version": FORMAT_VERSION,
        "library": "atomforge",
        "name": out_p.name,
        # compile is a runtime choice, not architecture
        "architecture": {k: v for k, v in mcfg.to_dict().items() if k not in ("compile", "compile_backend")},
        "ladder_name": mcfg.name,
        "backbone": {k: v for k, v in bb.items() if isinstance(v, (int, float, str, bool))},
        "cutoff": bb["cutoff"],
        "max_neighbors": bb["max_neighbors"],
        "elements": sorted({int(z) for z in refs} | {int(z) for r in mcfg.task_references.values() for z in r}),
        "element_references": refs,
        "energy_scale": energy_scale,
        "units": UNITS,
        "dataset": {**{k: card.get(k) for k in ("name", "content_hash", "counts", "units")},
                    "sources": _sources(train)},
        "training": {"steps": state["step"], "checkpoint": ck.name, "ema": ema, "world_size": rec.get("world_size"),
                     "zero_stage": train["deepspeed"]["stage"], "bf16": train["deepspeed"]["bf16"]},
        "metrics": metrics or _eval_metrics(run_dir),
        "parent": parent,
        "weights_sha256": file_sha256(tmp / "model.safetensors"),
    }
    if recipe:
        config["recipe"] = recipe
    model = build_model(mcfg, config["element_references"], config["energy_scale"])
    model.load_state_dict(sd, strict=True)
    config["round_trip"] = _round_trip(model.eval(), run_dir, state["step"], ema)
    if fairchem:
        from atomforge.pipeline.export.fairchem_ckpt import write_inference_checkpoint  # imports fairchem

        # one head for fairchem's one-task calculator (and LAMMPS): the default head, exactly
        write_inference_checkpoint(single_task(model), tmp / FAIRCHEM_CKPT)
        config["fairchem_checkpoint"] = {"file": FAIRCHEM_CKPT, "sha256": file_sha256(tmp / FAIRCHEM_CKPT),
                                         "task_name": "omat", "head": model.default_task or None}
    (tmp / CONFIG).write_text(json.dumps(config, indent=1))
    (tmp / "README.md").write_text(model_card(config))


def _sources(train: dict) -> list[dict]:
    """The raw sources behind the training data (their types pick the card's licences and citations)."""
    roots = [m["root"] for m in train.get("mix") or []] or [train["data_root"]]
    out = []
    for r in roots:
        try:
            out += [{"type": s.get("type"), "dataset": Path(r).name} for s in BuiltDataset(r).card["sources"]]
        except (OSError, ValueError, KeyError, TypeError):  # the data may not travel with the run
            out.append({"type": "unknown", "dataset": Path(r).name})
    return out


def flat_metrics(report: dict) -> dict:
    """Headline numbers of an `atomforge eval` report: all-atom errors and the rare-event ones."""
    flat = {}
    for group in ("all", "rare_events"):
        vals = report.get(group) or {}
        flat.update({(k if group == "all" or k.startswith("re_") else f"re_{k}"): v for k, v in vals.items()
                     if isinstance(v, (int, float)) and not isinstance(v, bool)})
    return flat


def _eval_metrics(run_dir: str) -> dict:
    """The run's newest evaluation report, when it has one (export after eval)."""
    reps = sorted(Path(run_dir).glob("eval*/report.json"), key=lambda p: p.stat().st_mtime)
    return flat_metrics(json.loads(reps[-1].read_text())) if reps else {}


def attach_metrics(folder: str | Path, report: dict, dataset: str) -> None:
    """Eval after export: the folder's config.json and card get the numbers just measured (weights untouched)."""
    d = Path(folder)
    cfg = read_config(d)
    cfg["metrics"] = flat_metrics(report)
    cfg["metrics_dataset"] = {"name": dataset, "split": report.get("split")}
    for name, text in ((CONFIG, json.dumps(cfg, indent=1)), ("README.md", model_card(cfg))):
        tmp = inside(d, name).with_name(f".{name}.tmp-{os.getpid()}")
        tmp.write_text(text)
        tmp.chmod(0o644)
        os.replace(tmp, d / name)


def _round_trip(model, run_dir: str, step: int, ema: bool) -> dict | None:
    """Compare with the EMA predictions recorded at the end of training; refuse an export that does not match."""
    rec = Path(run_dir) / PREDICTIONS
    if not (ema and rec.is_file() and json.loads(rec.read_text()).get("step") == step):
        return None
    rel, noise = compare(model, run_dir)
    if rel > ROUND_TRIP_TOL:  # beyond 1e-6 only where the model itself does not repeat to better than that
        rel, noise = compare(model, run_dir, repeats=2)
    tol = max(ROUND_TRIP_TOL, REPEAT_FACTOR * noise)
    if rel > tol:
        raise RuntimeError(f"exported weights do not reproduce the trained EMA model (relative difference {rel:.2e}; "
                           f"tolerance {tol:.2e}, the model's own repeatability {noise:.2e})")
    return {"max_relative_difference": rel, "tolerance": tol, "self_repeat_difference": noise}


def push(folder: str | Path, repo_id: str, private: bool = False, token: str | None = None) -> str:
    """Publish an exported folder with huggingface_hub; needs network and a token (HF_TOKEN or `hf auth login`)."""
    from huggingface_hub import HfApi, get_token

    cfg, _ = load_state(folder)  # refuse to publish a broken folder
    token = token or get_token()
    if not token:
        raise PermissionError("no Hugging Face token: set HF_TOKEN or run `hf auth login` before "
                              "`atomforge export push`")
    if _offline():
        raise ConnectionError("the hub is unreachable (HF_HUB_OFFLINE is set): cannot push")
    api = HfApi(token=token)
    try:
        api.create_repo(repo_id, private=private, exist_ok=True)
        info = api.upload_folder(folder_path=str(folder), repo_id=repo_id,
                                 commit_message=f"atomforge export {cfg['name']}")
    except Exception as e:  # noqa: BLE001 - network/auth errors become one line
        raise ConnectionError(f"push to {repo_id} failed: {e}") from e
    return str(getattr(info, "commit_url", info))


def _offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)
