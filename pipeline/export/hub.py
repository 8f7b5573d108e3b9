"""Write and read the hub folder. Loading never unpickles: JSON config + safetensors weights."""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from pipeline.export.card import model_card
from pipeline.export.consolidate import consolidated_state_dict, find_checkpoint
from pipeline.models.config import ModelConfig

FORMAT_VERSION = 1
UNITS = {"energy": "eV", "length": "Å", "forces": "eV/Å", "stress": "eV/Å^3 (ASE sign convention)"}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def export(run_dir: str, out: str, checkpoint: str = "latest", ema: bool = True, metrics: dict | None = None) -> Path:
    ck = find_checkpoint(run_dir, checkpoint)
    rec = json.loads((ck / "config.json").read_text())
    sd = consolidated_state_dict(ck, ema=ema)
    out_p = Path(out)
    tmp = out_p.with_name(out_p.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    save_file(sd, str(tmp / "model.safetensors"), metadata={"format": "pt", "atomforge_format_version": str(FORMAT_VERSION)})
    train, card = rec["train"], rec["card"]
    mcfg = ModelConfig(**train["model"])
    from pipeline.models.ladder import backbone_kwargs

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
        "architecture": mcfg.to_dict(),
        "ladder_name": mcfg.name,
        "backbone": {k: v for k, v in bb.items() if isinstance(v, (int, float, str, bool))},
        "cutoff": bb["cutoff"],
        "max_neighbors": bb["max_neighbors"],
        "elements": sorted(int(z) for z, v in card["element_references"].items()),
        "element_references": card["element_references"],
        "energy_scale": card.get("force_rms") or 1.0,
        "units": UNITS,
        "dataset": {k: card.get(k) for k in ("name", "content_hash", "counts", "units")},
        "training": {"steps": state["step"], "checkpoint": ck.name, "ema": ema, "world_size": rec.get("world_size"),
                     "zero_stage": train["deepspeed"]["stage"], "bf16": train["deepspeed"]["bf16"]},
        "metrics": metrics or {},
        "parent": parent,
        "weights_sha256": _sha256(tmp / "model.safetensors"),
    }
    (tmp / "config.json").write_text(json.dumps(config, indent=1))
    (tmp / "README.md").write_text(model_card(config))
    if out_p.exists():
        shutil.rmtree(out_p)
    tmp.rename(out_p)
    return out_p


def read_config(path: str | Path) -> dict:
    d = Path(path)
    cfg_file = d / "config.json"
    if not d.is_dir():
        raise FileNotFoundError(f"model folder not found: {d}")
    if not cfg_file.is_file():
        raise FileNotFoundError(f"{d} has no config.json: not an exported model folder")
    cfg = json.loads(cfg_file.read_text())
    v = cfg.get("format_version")
    if not isinstance(v, int) or v > FORMAT_VERSION:
        raise ValueError(f"{cfg_file} has format_version {v!r}; this atomforge reads up to {FORMAT_VERSION} (upgrade atomforge)")
    return cfg


def load_state(path: str | Path, verify: bool = True) -> tuple[dict, dict]:
    d = Path(path)
    cfg = read_config(d)
    w = d / "model.safetensors"
    if not w.is_file():
        raise FileNotFoundError(f"{d} has no model.safetensors")
    if verify and _sha256(w) != cfg.get("weights_sha256"):
        raise ValueError(f"{w} does not match the checksum in config.json: the weights were changed or truncated")
    return cfg, load_file(str(w))


def load(path: str | Path, device: str = "cpu"):
    """The Potential in eval mode, offline; no pickle is read."""
    cfg, sd = load_state(path)
    model = ModelConfig(**cfg["architecture"]).build(cfg["element_references"], cfg["energy_scale"])
    model.load_state_dict(sd, strict=True)
    model.hub_config = cfg
    return model.to(device).eval()


from_pretrained = load


def load_weights_into(model: torch.nn.Module, path: str | Path):
    """Start a training model from an exported folder (fine-tuning); shapes must match."""
    _, sd = load_state(path)
    missing, unexpected = model.load_state_dict(sd, strict=False)
    if unexpected:
        raise ValueError(f"exported weights do not fit this model: unexpected {unexpected[:3]}")
    return missing
