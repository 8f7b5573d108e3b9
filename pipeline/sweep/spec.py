"""A sweep config (configs/sweep/*.yaml) -> the grid of runs it names."""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path

UNITS = ("structures", "atoms")


@dataclass(frozen=True)
class Size:
    name: str  # the size's name inside the sweep
    ladder: str  # the ladder entry it starts from
    backbone: dict = field(default_factory=dict, hash=False, compare=False)  # overrides: sweep-only sizes


@dataclass(frozen=True)
class Run:
    size: Size
    budget: float  # in the sweep's unit
    lr: float

    @property
    def name(self) -> str:
        return f"{self.size.name}-D{_num(self.budget)}-lr{_num(self.lr)}"


@dataclass
class SweepSpec:
    name: str
    out: str
    sizes: list[Size]
    budgets: list[float]
    unit: str = "structures"
    lrs: list[float] = field(default_factory=list)  # empty: the train config's lr
    max_retries: int = 2  # a failed run is tried again on relaunch until it has failed 1 + max_retries times
    mean_atoms: float = 0.0  # atoms per structure when no built dataset says so (cluster-scale plans)
    world_size: int = 1
    fit_loss: str = "final_val_force_mae"  # a results.parquet column
    report_dir: str = ""  # fit.json, summary.md, plots; default <out>/fit
    overwrite: bool = False  # a report_dir holding committed (git-tracked) results is replaced only when true
    heldout: int = 1  # how many of the largest-compute runs the held-out check leaves out
    bootstrap: int = 200
    evaluate_re: bool = True  # score RE force error on the val split after training (when the data has RE atoms)
    flops_max_params: float = 5e7  # above this many parameters FLOPs/atom are extrapolated, not measured on CPU
    train: dict = field(default_factory=dict)  # train overrides for every run

    @classmethod
    def from_cfg(cls, cfg: dict) -> "SweepSpec":
        s = cfg.get("sweep")
        if not s:
            raise ValueError("no sweep chosen: pass sweep=<entry> (configs/sweep/*.yaml)")
        s = dict(s)
        sizes = []
        for entry in s.pop("sizes", []) or []:
            if isinstance(entry, str):
                entry = {"name": entry}
            sizes.append(Size(entry["name"], entry.get("ladder", entry["name"]), dict(entry.get("backbone") or {})))
        budgets = [float(b) for b in s.pop("budgets", []) or []]
        lrs = [float(x) for x in s.pop("lrs", []) or []]
        known = set(cls.__dataclass_fields__) - {"sizes", "budgets", "lrs"}
        unknown = set(s) - known
        if unknown:
            raise ValueError(f"unknown sweep keys: {sorted(unknown)}")
        spec = cls(sizes=sizes, budgets=budgets, lrs=lrs, **s)
        spec.check()
        return spec

    def check(self):
        from pipeline.models.ladder import LADDER

        if not self.sizes or not self.budgets:
            raise ValueError(f"sweep {self.name!r} needs at least one size and one budget")
        if self.unit not in UNITS:
            raise ValueError(f"sweep unit must be one of {UNITS}, got {self.unit!r}")
        for s in self.sizes:
            if s.ladder not in LADDER:
                raise ValueError(f"sweep size {s.name!r}: unknown ladder entry {s.ladder!r}; choose from {sorted(LADDER)}")
        if len({s.name for s in self.sizes}) != len(self.sizes):
            raise ValueError("sweep size names must be unique")
        if any(b <= 0 for b in self.budgets):
            raise ValueError("sweep budgets must be positive")

    def size(self, name: str) -> Size:
        for s in self.sizes:
            if s.name == name:
                return s
        raise ValueError(f"size {name!r} is not in sweep {self.name!r}")

    def default_lr(self, cfg: dict) -> float:
        """The lr of runs when the sweep has no lr axis: the sweep's train overrides, else the train config's."""
        return float({**cfg["train"], **self.train}["lr"])

    def runs(self, default_lr: float) -> list[Run]:
        lrs = self.lrs or [float(default_lr)]
        return [Run(s, b, lr) for s, b, lr in itertools.product(self.sizes, self.budgets, lrs)]

    def run_dir(self, run: Run) -> Path:
        return Path(self.out) / "runs" / run.name


def _num(x: float) -> str:
    """Short, filesystem- and hydra-safe number text: 1e+06 -> 1e6, 0.003 -> 0.003."""
    t = f"{x:g}".replace("e+0", "e").replace("e+", "e").replace("e-0", "e-")
    return t
