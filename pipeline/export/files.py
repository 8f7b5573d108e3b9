"""Writing an exported folder: the target checks and safe replacement (reading and its checks: pipeline.models.folder).

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

from atomforge.pipeline.models.folder import (  # noqa: F401 (check_file, resolve: re-exported for export's callers)
    CARD, CONFIG, FAIRCHEM_CKPT, WEIGHTS, UnsafeFolderError, check_file, inside, resolve)

EXPORT_FILES = (CONFIG, WEIGHTS, CARD, FAIRCHEM_CKPT, "eval")  # eval/: `atomforge eval` of the folder


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
        f.chmod(0o644 if f.is_file() else 0o755)  # others on the cluster read shared models
    tmp.chmod(0o755)
    if out.exists():
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        os.rename(out, old)
        os.rename(tmp, out)
        shutil.rmtree(old)  # only export files (check_target): the replaced export
    else:
        os.rename(tmp, out)
    return out


def copy_export(src: Path, dst: Path) -> Path:
    """A copy of the export `src` at `dst`, replacing only an earlier export there (any other folder is refused)."""
    check_target(dst, src)
    tmp = staging(dst)
    shutil.copytree(src, tmp, dirs_exist_ok=True)
    return publish(tmp, dst)
