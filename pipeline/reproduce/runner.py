"""The steps every result shares: settings (full or smoke), dataset builds, training through
atomforge.pipeline.train.launch, checkpoint selection on validation data, export, test evaluation, provenance,
and writing report.md / metrics.json / config.yaml into the result folder."""
from __future__ import annotations

import copy
import json
import math
import os
import platform
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from atomforge.data_prep.build import BuildConfig, build
from atomforge.data_prep.errors import UsageError
from atomforge.pipeline.compose import assemble_train_config
from atomforge.pipeline.evaluate.after_training import select_after_training
from atomforge.pipeline.evaluate.run import evaluate
from atomforge.pipeline.evaluate.select import select_checkpoints
from atomforge.pipeline.export.files import copy_export
from atomforge.pipeline.export.hub import export
from atomforge.pipeline.train.launch import launch
from atomforge.pipeline.train.node import forwarding_signals
from atomforge.pipeline.train.run_dir import RunDir
from atomforge.pipeline.train.signals import EXIT_REQUEUE

REPO = Path(__file__).resolve().parent.parent.parent


def merge(base: dict, over: dict | None) -> dict:
    """Deep merge: dicts merge key by key, everything else (lists included) is replaced."""
    out = copy.deepcopy(base)
    for k, v in (over or {}).items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


def _given(cfg: dict, r: dict, overlay: dict) -> dict:
    """The overlay's keys the user set on the command line (`reproduce.<path>=...`), with the values they gave."""
    out: dict = {}
    for o in cfg.get("_overrides") or []:
        path = o.split("=", 1)[0].lstrip("+~").split(".")
        if path[0] != "reproduce" or len(path) < 2:
            continue
        src, ovl, dst = r, overlay, out
        for i, k in enumerate(path[1:], 1):
            if not isinstance(ovl, dict) or k not in ovl or not isinstance(src, dict) or k not in src:
                break
            if i == len(path) - 1:
                dst[k] = src[k]
            else:
                src, ovl, dst = src[k], ovl[k], dst.setdefault(k, {})
    return out


def settings(cfg: dict) -> dict:
    """The reproduce section with the smoke overlay applied when `reproduce.smoke=true` (a key the user set on the
    command line wins over the overlay's); `model` and `train` are complete (the composed `model`/`train` groups
    with the recipe's values on top)."""
    r = dict(cfg["reproduce"])
    smoke = bool(r.get("smoke"))
    overlay = r.pop("smoke_settings", {}) or {}
    s = merge(merge(r, overlay), _given(cfg, r, overlay)) if smoke else r
    s["model"] = merge(cfg["model"], s.get("model"))
    s["train"] = merge(cfg["train"], s.get("train"))
    s["deepspeed"] = merge(cfg["deepspeed"], s.get("deepspeed"))
    s["world_size"] = int(s.get("world_size") or cfg["world_size"])
    s["seed"] = int(cfg["seed"])
    s["variant"] = "smoke" if smoke else "full"
    return s


class Runner:
    """One result's working state: where data and runs go, the settings, a log of timings."""

    def __init__(self, cfg: dict):
        self.s = settings(cfg)
        self.out = Path(self.s["out"])
        self.work = Path(self.s["work"])
        self.device = self.s.get("device") or ("cuda" if _has_cuda() else "cpu")
        self.timings: dict[str, float] = {}
        self.concurrent_runs = 1  # trainings this recipe runs side by side (they split the cores)
        self.t0 = time.perf_counter()
        if self.out.resolve() == REPO.resolve() or self.work.resolve() == REPO.resolve():
            raise UsageError("reproduce.out and reproduce.work must be folders of their own, not the repository root")
        self.out.mkdir(parents=True, exist_ok=True)
        self.work.mkdir(parents=True, exist_ok=True)

    def log(self, msg: str):
        print(f"[reproduce {self.s['name']} {time.perf_counter() - self.t0:7.1f}s] {msg}", flush=True)

    # -- data -------------------------------------------------------------------------------------------
    def thin(self, sources: list[dict], split: dict) -> list[dict]:
        """Apply `data.fraction` ({split: fraction}, the smoke subsets) to every source."""
        fr = self.s.get("data", {}).get("fraction") or {}
        out = []
        for spec in sources:
            f = float(fr.get(spec.get("split", "train"), 1.0))
            out.append(spec if f >= 1.0 else subset(spec, f, self.s["seed"]))
        return out

    def build(self, name: str, sources: list[dict], split: dict, **kw) -> Path:
        """Build one dataset; the recipe's `build:` section (dedup, outlier cut, ...) applies to every build."""
        kw = {**(self.s.get("build") or {}), **kw}
        root = self.work / "data" / name
        t = time.perf_counter()
        self.log(f"build dataset {name} -> {root}")
        build(BuildConfig(out=str(root), sources=sources, split=dict(split), seed=self.s["seed"],
                          workers=int(self.s.get("workers", 1)), cutoff=float(self.s.get("cutoff", 6.0)), **kw),
              progress=False)
        self.timings[f"build {name}"] = time.perf_counter() - t
        return root

    # -- training -----------------------------------------------------------------------------------------
    def train(self, name: str, data_root: Path, train: dict | None = None, model: dict | None = None, **extra) -> Path:
        """Real training via pipeline.train.launch (torchrun + DeepSpeed); resumes an unfinished run of the same
        name."""
        run_dir = self.work / "runs" / name
        tr = merge(self.s["train"], train)
        tc = assemble_train_config(run_dir, data_root, merge(self.s["model"], model), tr, self.s["deepspeed"],
                                   self.s["world_size"], self.s["seed"], **extra)
        t = time.perf_counter()
        self.log(f"train {name}: {tc.model.name}, {tc.steps} steps, init_from={tc.init_from or 'scratch'} -> {run_dir}")
        rc = launch(tc, self.concurrent_runs)
        if rc == EXIT_REQUEUE:
            raise UsageError(f"training {name} was stopped by a signal (checkpoint written); run the same command "
                             "again to resume it")
        if rc != 0:
            raise UsageError(f"training {name} failed (exit code {rc}); see {run_dir}")
        select_after_training(tc)
        self.timings[f"train {name}"] = time.perf_counter() - t
        return run_dir

    def side_by_side(self, fn, items: list) -> None:
        """fn over items, `concurrent_runs` at a time (two one-thread runs on two cores take about as long as one);
        the main thread forwards preemption signals to every run's ranks. After the first failure (a stopped run
        included) no further item starts, and that failure is raised: a stopped recipe stops, it does not go on to
        the next runs."""
        stop = threading.Event()

        def guarded(x):
            if stop.is_set():
                return
            try:
                fn(x)
            except BaseException:
                stop.set()
                raise

        with forwarding_signals(), ThreadPoolExecutor(max(1, self.concurrent_runs)) as pool:
            futs = [pool.submit(guarded, x) for x in items]
        for f in futs:
            f.result()

    def select_export(self, run_dir: Path, data_root: Path, split: str | None = None,
                      re_weight: float | None = None) -> tuple[Path, dict]:
        """Rank the run's checkpoints on validation data (atomforge.pipeline.evaluate.select), export the best one."""
        sel = self.s.get("select", {})
        split = split or sel.get("split", "val")
        re_weight = float(sel.get("re_weight", 1.0) if re_weight is None else re_weight)
        t = time.perf_counter()
        res = select_checkpoints(str(run_dir), str(data_root), split, re_weight, self.device, progress=False)
        hub = export(str(run_dir), str(RunDir(run_dir).hub), checkpoint="best", fairchem=False)
        self.timings[f"select+export {run_dir.name}"] = time.perf_counter() - t
        self.log(f"selected {res['best']} of {len(res['checkpoints'])} checkpoints on {split} -> {hub}")
        return hub, res

    def ship(self, hub: Path) -> Path:
        """The result's final exported model beside its report (`model/`), so anyone can re-evaluate its numbers;
        replaces only this recipe's earlier copy, never another folder."""
        return copy_export(Path(hub), self.out / "model")

    def evaluate(self, hub: Path, data_root: Path, out: Path, split: str = "test", plots: bool = True) -> dict:
        t = time.perf_counter()
        rep = evaluate(str(hub), str(data_root), split, str(out), self.device, make_plots=plots)
        self.timings[f"evaluate {out.name}"] = time.perf_counter() - t
        return rep

    # -- output -------------------------------------------------------------------------------------------
    def finish(self, title: str, body: list[str], metrics: dict, cfg: dict) -> Path:
        """report.md (title, body, provenance, exact config), metrics.json, config.yaml."""
        from omegaconf import OmegaConf

        self.timings["total"] = time.perf_counter() - self.t0
        prov = provenance(self.device, exclude=self.out)
        metrics = {"result": self.s["name"], "variant": self.s["variant"], **metrics, "provenance": prov,
                   "timings_s": {k: round(v, 2) for k, v in self.timings.items()}}
        (self.out / "metrics.json").write_text(json.dumps(_finite_or_null(metrics), indent=1, sort_keys=False))
        yaml = OmegaConf.to_yaml(OmegaConf.create(cfg))
        (self.out / "config.yaml").write_text(yaml)
        smoke_note = (["> **Smoke variant** (`reproduce.smoke=true`): tiny data and step counts that check the chain, "
                       "not the numbers. Do not quote these figures.", ""] if self.s["variant"] == "smoke" else [])
        lines = [f"# {title}", "", *smoke_note, *body, "", "## Provenance", "",
                 "| item | value |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in prov.items()]
        lines += [f"| wall time | {self.timings['total']:.0f} s |", "",
                  "Timings (s): " + ", ".join(f"{k} {v:.0f}" for k, v in self.timings.items() if k != "total"), "",
                  "## Exact config", "", f"Composed with `atomforge reproduce {self.s['name']}`"
                  f"{' reproduce.smoke=true' if self.s['variant'] == 'smoke' else ''}; also in `config.yaml`.", "",
                  "```yaml", yaml.rstrip(), "```", ""]
        (self.out / "report.md").write_text("\n".join(lines))
        self.log(f"report: {self.out / 'report.md'}, {self.out / 'metrics.json'}")
        return self.out


def subset(spec: dict, fraction: float, seed: int, split: dict | None = None, split_seed: int = 0) -> dict:
    """Wrap a source spec in a deterministic subset (data_prep.sources.subset); a fixed split stays outside."""
    spec = dict(spec)
    fixed = spec.pop("split", None)
    out = {"type": "subset", "source": spec, "fraction": float(fraction), "seed": int(seed)}
    if split is not None:  # thin only what the build puts in train; val/test groups stay whole
        out.update(split_fractions=dict(split), split_seed=int(split_seed))
    if fixed is not None:
        out["split"] = fixed
    return out


def provenance(device: str, exclude: Path | None = None) -> dict:
    """Commit, device and versions; `exclude`: the result's own folder, whose files this run is rewriting (a
    committed result being reproduced is not an uncommitted change to the code)."""
    import torch

    def git(*args):
        try:
            return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10).stdout.strip()
        except Exception:  # noqa: BLE001 - not a git checkout: say so
            return ""

    commit = git("rev-parse", "HEAD") or "unknown (not a git checkout)"
    skip = []
    if exclude is not None:
        try:
            skip = [f":(exclude){Path(exclude).resolve().relative_to(REPO.resolve())}"]
        except ValueError:  # outside the repository: nothing of it is tracked
            pass
    dirty = bool(git("status", "--porcelain", "--untracked-files=no", "--", ".", *skip))
    if device.startswith("cuda") and torch.cuda.is_available():
        dev = f"GPU: {torch.cuda.get_device_name(0)}"
    else:
        dev = (f"CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} cores visible, "
               f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
    return {"git_commit": commit + (" (working tree had uncommitted changes)" if dirty else ""), "device": dev,
            "host": platform.node(), "python": platform.python_version(), "torch": torch.__version__,
            "date_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())}


def fmt(v, digits: int = 4) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "—"
    return f"{v:.{digits}g}" if isinstance(v, float) else str(v)


def table(header: list[str], rows: list[list]) -> list[str]:
    return (["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            + ["| " + " | ".join(fmt(c) for c in r) + " |" for r in rows])


def _finite_or_null(x):
    if isinstance(x, dict):
        return {k: _finite_or_null(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite_or_null(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()
