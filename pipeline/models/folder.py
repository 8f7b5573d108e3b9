"""Reading an exported model folder (config.json + model.safetensors), with every check made before a file is used.

An exported folder is something users receive. Before a file in it is read: it must be a regular file inside
the folder (a symlink out of it is refused; huggingface_hub's cache, whose snapshot files link into the same
repository's blobs, is the one layout allowed), and its sha256 must match the one config.json records. No pickle
is read. Writing folders is export's job (atomforge.pipeline.export.files, atomforge.pipeline.export.hub)."""
from __future__ import annotations

import json
from pathlib import Path

from safetensors.torch import load_file

from atomforge.data_prep.errors import AtomforgeError
from atomforge.data_prep.integrity import file_sha256
from atomforge.pipeline.models.config import ModelConfig

CONFIG, WEIGHTS, CARD, FAIRCHEM_CKPT = "config.json", "model.safetensors", "README.md", "inference_ckpt.pt"
HUB_PREFIXES = ("hf://", "hub:")
FORMAT_VERSION = 1


class UnsafeFolderError(AtomforgeError, ValueError):
    pass


def _allowed_root(folder: Path) -> Path:
    """Where the folder's files may really live: the folder itself, or a hub cache repository (snapshots/<rev>/)."""
    real = folder.resolve()
    if real.parent.name == "snapshots" and (real.parent.parent / "blobs").is_dir():
        return real.parent.parent
    return real


def inside(folder: Path, name: str) -> Path:
    """`folder/name`, refused when it is a link that leads out of the folder or is not a regular file."""
    p = Path(folder) / name
    root = _allowed_root(Path(folder))
    real = p.resolve()
    if p.is_symlink() and not real.is_relative_to(root):
        raise UnsafeFolderError(f"{p} is a symlink out of the model folder (to {real}): refusing to read it")
    if p.exists() and not real.is_file():
        raise UnsafeFolderError(f"{p} is not a regular file")
    return p


def check_file(folder: Path, name: str, expected: str | None, what: str) -> Path:
    """The verified path of one recorded file; a missing record is as bad as a wrong one."""
    p = inside(folder, name)
    if not p.is_file():
        raise FileNotFoundError(f"{folder} has no {name}")
    if not expected:
        raise UnsafeFolderError(f"{Path(folder) / CONFIG} records no sha256 for {name}: cannot verify the {what}")
    if file_sha256(p) != expected:
        raise UnsafeFolderError(f"{p} does not match the sha256 in config.json: the {what} was changed or truncated")
    return p


def resolve(name_or_path: str | Path) -> Path:
    """A local folder, or - only when asked for with hf:// or hub: - a hub repository fetched with huggingface_hub.
    A local path that does not exist is an error, never a hub id: that would fetch somebody else's model."""
    s = str(name_or_path)
    for prefix in HUB_PREFIXES:
        if s.startswith(prefix):
            return _download(s[len(prefix):])
    p = Path(s)
    if not p.exists():
        hint = f" (a hub repository is written hf://{s})" if s.count("/") == 1 and not s.startswith((".", "/")) else ""
        raise FileNotFoundError(f"model folder not found: {s}{hint}")
    return p


def _download(repo_id: str) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    if repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise ValueError(f"hub repository ids look like hf://org/name, got {repo_id!r}")
    try:
        return Path(snapshot_download(repo_id=repo_id, allow_patterns=[CONFIG, WEIGHTS, CARD]))
    except LocalEntryNotFoundError as e:
        raise FileNotFoundError(f"hub repository {repo_id} is not in the cache and the hub cannot be reached "
                                "(offline?)") from e
    except Exception as e:  # noqa: BLE001 - network, auth, unknown repo: one clear line
        raise FileNotFoundError(f"hub repository {repo_id} could not be fetched: {e}") from e


def read_config(path: str | Path) -> dict:
    d = Path(path)
    cfg_file = inside(d, CONFIG) if d.is_dir() else d / CONFIG
    if not d.is_dir():
        raise FileNotFoundError(f"model folder not found: {d}")
    if not cfg_file.is_file():
        raise FileNotFoundError(f"{d} has no config.json: not an exported model folder")
    cfg = json.loads(cfg_file.read_text())
    v = cfg.get("format_version")
    if not isinstance(v, int) or v > FORMAT_VERSION:
        raise ValueError(f"{cfg_file} has format_version {v!r}; this atomforge reads up to {FORMAT_VERSION} "
                         "(upgrade atomforge)")
    return cfg


def load_state(path: str | Path, weights_sha256: str | None = None) -> tuple[dict, dict]:
    """(config, weights) of a folder, the weights checked against config.json and, when given, against
    `weights_sha256`: a record kept apart from the folder (a parent's card, a published hash) is the one check that
    a weights file rewritten together with its config cannot pass."""
    d = Path(path)
    cfg = read_config(d)
    w = check_file(d, WEIGHTS, cfg.get("weights_sha256"), "weights file")
    if weights_sha256 and cfg.get("weights_sha256") != weights_sha256:
        raise UnsafeFolderError(f"{w} has sha256 {cfg.get('weights_sha256')}, not the expected {weights_sha256}")
    return cfg, load_file(str(w))


def load(path: str | Path, device: str = "cpu", weights_sha256: str | None = None):
    """The Potential in eval mode from a folder (or an explicit hf://org/name); no pickle is read."""
    cfg, sd = load_state(resolve(path), weights_sha256)
    from atomforge.pipeline.models.potential import build_model  # fairchem: only once a model is built

    model = build_model(ModelConfig(**cfg["architecture"]), cfg["element_references"], cfg["energy_scale"])
    model.load_state_dict(sd, strict=True)
    model.hub_config = cfg
    return model.to(device).eval()


from_pretrained = load
