"""A sweep config (configs/sweep/*.yaml) -> the runs it names: an optional learning-rate scan per size, the grid of
sizes x budgets (at each size's chosen lr), and seed repeats on a few grid points."""
from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path

from atomforge.pipeline.models.ladder import LADDER

UNITS = ("structures", "atoms")


@dataclass(frozen=True)
class Size:
    name: str  # the size's name inside the sweep
    ladder: str  # the ladder entry it starts from
    backbone: dict = field(default_factory=dict, hash=False, compare=False)  # overrides: sweep-only sizes


ROLES = ("scan", "grid", "seed")
LR_CHOICE = "lr_scan.json"  # <out>/lr_scan.json: the scan's losses and the lr chosen per size


@dataclass(frozen=True)
class Run:
    size: Size
    budget: float  # in the sweep's unit
    lr: float
    seed: int = 0  # added to the config's seed; a repeat of a grid point differs from it only here
    role: str = field(default="grid", compare=False)  # scan | grid | seed

    @property
    def name(self) -> str:
        tail = f"-s{self.seed}" if self.seed else ""
        return f"{self.size.name}-D{_num(self.budget)}-lr{_num(self.lr)}{tail}"


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
    # {budget: <one of budgets>, lrs: [...]}: every size is first trained at that budget with each lr, and its grid
    # runs use the lr with the lowest fit_loss there (the scan's winning run is also the grid point, not rerun)
    lr_scan: dict = field(default_factory=dict)
    seeds: dict = field(default_factory=dict)  # {points: [[size, budget], ...], seeds: [1, 2]}: run-to-run noise
    warmup_frac: float = 0.0  # > 0: each run warms up for this fraction of its own steps, then cosine to min_lr
    downstream: dict = field(default_factory=dict)  # {data: <configs/data entry>, split: test}: force MAE per run
    # [{source, quantity, value, definition}]: set beside the fit in summary.md
    published: list = field(default_factory=list)

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
        if not self.sizes or not self.budgets:
            raise ValueError(f"sweep {self.name!r} needs at least one size and one budget")
        if self.unit not in UNITS:
            raise ValueError(f"sweep unit must be one of {UNITS}, got {self.unit!r}")
        for s in self.sizes:
            if s.ladder not in LADDER:
                raise ValueError(f"sweep size {s.name!r}: unknown ladder entry {s.ladder!r}; "
                                 f"choose from {sorted(LADDER)}")
        if len({s.name for s in self.sizes}) != len(self.sizes):
            raise ValueError("sweep size names must be unique")
        if any(b <= 0 for b in self.budgets):
            raise ValueError("sweep budgets must be positive")
        if self.lr_scan:
            if set(self.lr_scan) - {"budget", "lrs"} or not self.lr_scan.get("lrs"):
                raise ValueError(f"sweep.lr_scan takes {{budget, lrs}} with at least one lr, got {self.lr_scan}")
            if float(self.lr_scan.get("budget", 0)) not in self.budgets:
                raise ValueError(f"sweep.lr_scan.budget must be one of the budgets {self.budgets}, "
                                 f"got {self.lr_scan.get('budget')}")
            if self.lrs:
                raise ValueError("sweep.lrs (an lr axis) and sweep.lr_scan (an lr chosen per size) exclude each other")
        if self.seeds:
            if set(self.seeds) - {"points", "seeds"} or not self.seeds.get("seeds"):
                raise ValueError(f"sweep.seeds takes {{points, seeds}} with at least one seed, got {self.seeds}")
            for size, budget in self.seeds.get("points") or []:
                self.size(str(size))
                if float(budget) not in self.budgets:
                    raise ValueError(f"sweep.seeds point [{size}, {budget}]: {budget} is not one of the budgets "
                                     f"{self.budgets}")
            if any(int(x) == 0 for x in self.seeds["seeds"]):
                raise ValueError("sweep.seeds.seeds are offsets added to the config's seed: 0 is the grid run itself")
        if not 0.0 <= self.warmup_frac < 1.0:
            raise ValueError(f"sweep.warmup_frac must be in [0, 1), got {self.warmup_frac}")

    def size(self, name: str) -> Size:
        for s in self.sizes:
            if s.name == name:
                return s
        raise ValueError(f"size {name!r} is not in sweep {self.name!r}")

    def default_lr(self, cfg: dict) -> float:
        """The lr of runs when the sweep has no lr axis: the sweep's train overrides, else the train config's."""
        return float({**cfg["train"], **self.train}["lr"])

    def scan_runs(self) -> list[Run]:
        if not self.lr_scan:
            return []
        b = float(self.lr_scan["budget"])
        return [Run(s, b, float(lr), role="scan") for s in self.sizes for lr in self.lr_scan["lrs"]]

    def chosen_lrs(self) -> dict[str, float] | None:
        """Size name -> lr picked by the scan (read from <out>/lr_scan.json); None while the scan has not been
        decided."""
        f = Path(self.out) / LR_CHOICE
        return {k: float(v) for k, v in json.loads(f.read_text())["chosen"].items()} if f.is_file() else None

    def runs(self, default_lr: float, preview: bool = False) -> list[Run]:
        """Every run of the sweep, each once: the scan, the grid and the seed repeats. With an lr scan that has not been
        decided yet, only the scan runs (the grid's lrs are not known), or with preview=True the grid at default_lr
        (for cost estimates)."""
        scan = self.scan_runs()
        if scan:
            chosen = self.chosen_lrs()
            if chosen is None and preview:
                chosen = {s.name: float(default_lr) for s in self.sizes}
            if chosen is None:
                return scan
            lr_of = {s.name: [chosen[s.name]] for s in self.sizes}
        else:
            lr_of = {s.name: self.lrs or [float(default_lr)] for s in self.sizes}
        grid = [Run(s, b, lr) for s, b in itertools.product(self.sizes, self.budgets) for lr in lr_of[s.name]]
        repeats = [Run(self.size(str(name)), float(b), lr, int(seed), role="seed")
                   for name, b in (self.seeds.get("points") or []) for lr in lr_of[str(name)]
                   for seed in self.seeds.get("seeds") or []]
        out: dict[str, Run] = {r.name: r for r in scan}
        out.update({r.name: r for r in grid + repeats})  # the scan's winner is a grid point
        return list(out.values())

    def run_dir(self, run: Run) -> Path:
        return Path(self.out) / "runs" / run.name


def _num(x: float) -> str:
    """Short, filesystem- and hydra-safe number text: 1e+06 -> 1e6, 0.003 -> 0.003."""
    t = f"{x:g}".replace("e+0", "e").replace("e+", "e").replace("e-0", "e-")
    return t
