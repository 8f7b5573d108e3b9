"""The files of an exported folder, the checks made before any of them is used, and safe replacement.

An exported folder is something users receive. Before a file in it is read: it must be a regular file inside
the folder (a symlink out of it is refused; huggingface_hub's cache, whose snapshot files link into the same
repository's blobs, is the one layout allowed), and its sha256 must match the one config.json records.
Writing one never deletes what is not an export: a non-empty folder that is not one is refused, and an old
export stays in place until the new one is complete.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from data_prep.integrity import file_sha256

CONFIG, WEIGHTS, CARD, FAIRCHEM_CKPT = "config.json", "model.safetensors", "README.md", "inference_ckpt.pt"
EXPORT_FILES = (CONFIG, WEIGHTS, CARD, FAIRCHEM_CKPT, "eval")  # eval/: `atomforge eval` of the folder
HUB_PREFIXES = ("hf://", "hub:")


class UnsafeFolderError(ValueError):
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
        raise FileNotFoundError(f"hub repository {repo_id} is not in the cache and the hub cannot be reached (offline?)") from e
    except Exception as e:  # noqa: BLE001 - network, auth, unknown repo: one clear line
        raise FileNotFoundError(f"hub repository {repo_id} could not be fetched: {e}") from e


def is_export(folder: Path) -> bool:
    try:
        return json.loads((folder / CONFIG).read_text()).get("library") == "atomforge"
    except (OSError, ValueError, AttributeError):
        return False


def check_target(out: Path, run_dir: Path) -> None:
    """Refuse, before any work, an output that would replace the run folder or a folder that is not an export."""
    real, run = out.resolve(), run_dir.resolve()
    if real == run or run.is_relative_to(real):
        raise UnsafeFolderError(f"out={out} would replace the run folder {run_dir} (its checkpoints and metrics); "
                                f"export into a new folder, e.g. out={run_dir}/hub")
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise UnsafeFolderError(f"out={out} exists and is not a folder: refusing to replace it")
    if out.is_dir():
        extra = sorted(p.name for p in out.iterdir() if p.name not in EXPORT_FILES)
        if any(out.iterdir()) and not is_export(out):
            raise UnsafeFolderError(f"out={out} is not empty and is not an atomforge export: refusing to replace it "
                                    "(choose a new or empty folder)")
        if extra:
            raise UnsafeFolderError(f"out={out} is an export but also holds {extra[:3]}: refusing to replace it "
                                    "(move those files or choose another folder)")


def staging(out: Path) -> Path:
    """A fresh folder beside `out`, named for this process, that becomes `out` in `publish`."""
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    if tmp.exists():  # this process's own leftover (a pid is reused only after its owner is gone)
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    return tmp


def publish(tmp: Path, out: Path) -> Path:
    """Move a complete export into place; an old export is kept until the new one is there."""
    for f in tmp.iterdir():
        f.chmod(0o644)  # others on the cluster read shared models
    tmp.chmod(0o755)
    if out.exists():
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        os.rename(out, old)
        os.rename(tmp, out)
        shutil.rmtree(old)  # only export files (check_target): the replaced export
    else:
        os.rename(tmp, out)
    return out
