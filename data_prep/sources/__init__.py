"""Raw data sources. Each source lists small picklable tasks and reads one task into Structures.

Tasks let a build run in parallel and resume: a task's output depends only on the task.
"""
from __future__ import annotations

from typing import Any, Iterator, Protocol

from data_prep.structure import Structure


class Source(Protocol):
    name: str

    def tasks(self) -> list[Any]: ...

    def read(self, task: Any) -> Iterator[Structure]: ...


def make_source(spec: dict) -> Source:
    """Build a source from its config dict: {"type": "emt"|"mlearn"|"silicon_re"|"extxyz"|"asedb", ...}."""
    spec = dict(spec)
    kind = spec.pop("type", None)
    if kind == "emt":
        from data_prep.sources.emt import EMTSource as cls
    elif kind == "mlearn":
        from data_prep.sources.mlearn import MLearnSource as cls
    elif kind == "silicon_re":
        from data_prep.sources.silicon_re import SiliconRESource as cls
    elif kind == "extxyz":
        from data_prep.sources.extxyz import ExtXYZSource as cls
    elif kind == "asedb":
        from data_prep.sources.asedb import AseDBSource as cls
    else:
        raise ValueError(f"unknown source type {kind!r}; expected one of emt, mlearn, silicon_re, extxyz, asedb")
    return cls(**spec)
