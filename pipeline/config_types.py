"""Type checks for the stage dataclasses: a wrong value is one line naming the key and what it expects.

Hydra hands over whatever the override said (`train.steps=fifty` arrives as the string "fifty"); without this
the mistake surfaces much later, inside a rank, as a TypeError that names no key.
"""
from __future__ import annotations

from dataclasses import fields

_EXPECT = {"int": ("an integer", (int,)), "float": ("a number", (int, float)), "bool": ("true or false", (bool,)),
           "str": ("a string", (str,)), "dict": ("a mapping", (dict,)), "list": ("a list", (list, tuple))}


def check_types(obj, prefix: str = "", names: dict[str, str] | None = None):
    """Raise ValueError for the first field whose value does not have its annotated type (`X | None` allowed)."""
    for f in fields(obj):
        kinds = [k.strip() for k in str(f.type).split("|")]
        v = getattr(obj, f.name)
        if v is None and "None" in kinds:
            continue
        known = [k for k in kinds if k in _EXPECT]
        if not known:
            continue
        ok = any(isinstance(v, _EXPECT[k][1]) and not (k in ("int", "float") and isinstance(v, bool)) for k in known)
        if not ok:
            key = (names or {}).get(f.name, f"{prefix}{f.name}")
            want = " or ".join(_EXPECT[k][0] for k in known) + (" or null" if "None" in kinds else "")
            raise ValueError(f"{key}: expected {want}, got {v!r}")
