"""Raw data sources. Each source lists small picklable tasks and reads one task into Structures.

Tasks let a build run in parallel and resume: a task's output depends only on the task.
"""
from __future__ import annotations

from typing import Any, Iterator, Protocol

from atomforge.data_prep.structure import Structure


class Source(Protocol):
    name: str

    def tasks(self) -> list[Any]: ...

    def read(self, task: Any) -> Iterator[Structure]: ...


def make_source(spec: dict) -> Source:
    """Build a source from its config dict: {"type": "emt"|"mlearn"|"silicon_re"|"extxyz"|"asedb"|"subset", ...}."""
    spec = dict(spec)
    kind = spec.pop("type", None)
    if kind == "emt":
        from atomforge.data_prep.sources.emt import EMTSource as cls
    elif kind == "teacher":
        # generated structures labelled by a teacher: emt | sevennet:<model> | chgnet:<version> | module:Class
        from atomforge.data_prep.sources.teacher import TeacherSource as cls
    elif kind == "mlearn":
        from atomforge.data_prep.sources.mlearn import MLearnSource as cls
    elif kind == "silicon_re":
        from atomforge.data_prep.sources.silicon_re import SiliconRESource as cls
    elif kind == "extxyz":
        from atomforge.data_prep.sources.extxyz import ExtXYZSource as cls
    elif kind == "asedb":
        from atomforge.data_prep.sources.asedb import AseDBSource as cls
    elif kind == "subset":
        # a deterministic fraction of another source: {"type": "subset", "source": {...}, "fraction": f}
        from atomforge.data_prep.sources.subset import SubsetSource

        return SubsetSource(**spec, make_source=make_source)
    elif kind == "python":  # a reader of one's own: {"type": "python", "target": "module:Class", ...kwargs}
        cls = _import_target(spec.pop("target", None))
    else:
        raise ValueError(f"unknown source type {kind!r}; expected one of emt, teacher, mlearn, silicon_re, extxyz, "
                         "asedb, subset, python")
    return cls(**spec)


def _import_target(target: str | None):
    import importlib

    if not target or ":" not in target:
        raise ValueError(f"a python source needs target='module:Class', got {target!r}")
    mod, attr = target.split(":", 1)
    try:
        return getattr(importlib.import_module(mod), attr)
    except (ImportError, AttributeError) as e:
        raise ValueError(f"cannot import python source {target!r}: {e}") from None
