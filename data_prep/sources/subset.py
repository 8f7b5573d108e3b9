"""A deterministic fraction of another source: `{"type": "subset", "source": {...}, "fraction": 0.25}`.

A structure is kept when a hash of (seed, structure hash) falls below `fraction`, so the subsets of one
source are nested (5% is inside 10% is inside 25%) and do not depend on task order or workers.
With `split_fractions` (the build's split fractions) and `split_seed`, only structures the build will put in
`only_split` are thinned; the others (e.g. the validation groups) are kept whole, so every fraction is
selected against the same validation set.
"""
from __future__ import annotations

import hashlib
from typing import Iterator

from atomforge.data_prep.fingerprint import task_inputs
from atomforge.data_prep.split import assign_split
from atomforge.data_prep.structure import Structure


def keep(structure: Structure, fraction: float, seed: int) -> bool:
    h = hashlib.blake2b(f"{seed}:{structure.structure_hash()}".encode(), digest_size=8).digest()
    return int.from_bytes(h, "big") / 2**64 < fraction


class SubsetSource:
    def __init__(self, source: dict, fraction: float, seed: int = 0, split_fractions: dict | None = None,
                 split_seed: int = 0, only_split: str = "train", make_source=None):
        # the registry passes itself in (make_source), so the wrapper needs no import of the package it belongs to
        if not 0.0 < float(fraction) <= 1.0:
            raise ValueError(f"subset fraction must be in (0, 1], got {fraction}")
        spec = dict(source)
        if "split" in spec:
            raise ValueError("put a fixed `split` on the subset entry, not on its inner source")
        self.inner, self.inner_spec = make_source(spec), spec
        self.name = self.inner.name
        self.fraction, self.seed = float(fraction), int(seed)
        self.split_fractions, self.split_seed, self.only_split = split_fractions, int(split_seed), only_split

    def tasks(self):
        return self.inner.tasks()

    def inputs(self, task) -> list[str]:
        return task_inputs(self.inner, self.inner_spec, task)

    def read(self, task) -> Iterator[Structure]:
        for s in self.inner.read(task):
            if not isinstance(s, Structure):  # an unreadable record: passed on to be quarantined
                yield s
            elif (self.split_fractions is not None
                  and assign_split(s.group, self.split_fractions, self.split_seed) != self.only_split):
                yield s
            elif self.fraction >= 1.0 or keep(s, self.fraction, self.seed):
                yield s
