"""Data pipeline throughput: build rate, loader rate (1 and 2 workers) against fairchem's AseDBDataset on the
same structures, how fast a demo-size training step consumes data, and peak build memory as the dataset grows.

    python bench/data_throughput.py --structures 2000 [--memory-sizes 10000 100000]
        [--merge-sizes 10000 100000 1000000] [--contended]

Prints one JSON object and writes it to bench/results/data_throughput.json (memory runs already recorded there
are kept unless measured again).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402
from atomforge.pipeline.models.potential import build_model  # noqa: E402

KINDS = ("bulk", "strain", "rattle", "vacancy", "surface", "md")


def emt_spec(n: int) -> dict:
    """About n EMT Cu/Al structures over all kinds, in tasks of a few hundred (realistic shard sizes)."""
    per = max(1, n // (2 * len(KINDS)))
    return {"type": "emt", "elements": ["Cu", "Al"], "per_kind": {k: per for k in KINDS}, "structures_per_task": 250}


def machine(contended: bool) -> dict:
    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")),
               platform.processor())
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
            "platform": platform.platform(), "contended": contended,
            "note": "shared machine, other jobs running" if contended else "machine otherwise idle"}


def build_rate(out: Path, n: int, workers: int) -> dict:
    from atomforge.data_prep.build import BuildConfig, build

    t0 = time.perf_counter()
    s = build(BuildConfig(out=str(out), sources=[emt_spec(n)], workers=workers), progress=False)
    dt = time.perf_counter() - t0
    total = sum(s["counts"].values()) + s["quarantined"]
    return {"workers": workers, "structures": total, "seconds": round(dt, 2),
            "structures_per_s": round(total / dt, 1), "structures_per_s_per_process": round(total / dt / workers, 1)}


def our_loader(root: Path, workers: int, max_atoms: int, epochs: int) -> dict:
    from atomforge.pipeline.data.loader import LoaderConfig, make_loader

    n = atoms = batches = 0
    t0 = time.perf_counter()
    for ep in range(epochs):
        for b in make_loader(LoaderConfig(root=str(root), max_atoms=max_atoms, num_workers=workers), epoch=ep):
            n += len(b.natoms)
            atoms += int(b.natoms.sum())
            batches += 1
    dt = time.perf_counter() - t0
    return {"workers": workers, "structures_per_s": round(n / dt, 1), "atoms_per_s": round(atoms / dt, 1),
            "batches": batches, "mean_structures_per_batch": n / batches, "seconds": round(dt, 2)}


def write_aselmdb(root: Path, path: Path) -> int:
    """The same training structures, as fairchem expects them: an aselmdb with energy/forces on a calculator."""
    import ase.db
    from ase.calculators.singlepoint import SinglePointCalculator

    from atomforge.pipeline.data.dataset import read_split

    n = 0
    with ase.db.connect(str(path)) as db:
        for s in read_split(str(root), "train"):
            a = s.to_atoms()
            a.calc = SinglePointCalculator(a, energy=s.energy, forces=s.forces)
            db.write(a, data={"sid": s.info["key"]})
            n += 1
    return n


def fairchem_loader(db: Path, workers: int, batch_size: int, epochs: int) -> dict:
    from fairchem.core.datasets.ase_datasets import AseDBDataset
    from fairchem.core.datasets.atomic_data import atomicdata_list_to_batch

    ds = AseDBDataset({"src": str(db), "a2g_args": {"r_energy": True, "r_forces": True}})
    n = atoms = 0
    t0 = time.perf_counter()
    for ep in range(epochs):
        g = torch.Generator().manual_seed(ep)
        dl = torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=True, num_workers=workers, generator=g,
                                         collate_fn=atomicdata_list_to_batch, prefetch_factor=4 if workers else None)
        for b in dl:
            n += len(b.natoms)
            atoms += int(b.natoms.sum())
    dt = time.perf_counter() - t0
    return {"workers": workers, "structures_per_s": round(n / dt, 1), "atoms_per_s": round(atoms / dt, 1),
            "batch_size": batch_size, "seconds": round(dt, 2)}


def train_consumption(root: Path, max_atoms: int, steps: int) -> dict:
    """Structures/s one rank's forward+backward+step of the demo model (esen_xs, direct forces) consumes."""
    from atomforge.pipeline.data.loader import LoaderConfig, make_loader
    from atomforge.pipeline.data.dataset import BuiltDataset
    from atomforge.pipeline.models.config import ModelConfig

    card = BuiltDataset(root).card
    model = build_model(ModelConfig(name="esen_xs"), card["element_references"], card["force_rms"] or 1.0)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    it = iter(make_loader(LoaderConfig(root=str(root), max_atoms=max_atoms)))
    batches = [next(it) for _ in range(steps + 1)]
    n = 0
    for i, b in enumerate(batches):
        if i == 1:
            t0 = time.perf_counter()
        out = model(b)
        loss = (out["energy"] - b.energy).pow(2).mean() + (out["forces"] - b.forces).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i >= 1:
            n += len(b.natoms)
    dt = time.perf_counter() - t0
    return {"model": "esen_xs", "max_atoms": max_atoms, "steps": steps, "structures_per_s_per_rank": round(n / dt, 2),
            "seconds_per_step": round(dt / steps, 3), "torch_threads": torch.get_num_threads()}


MEM_CHILD = """
import json, resource, sys, time
sys.path.insert(0, sys.argv[1])
from atomforge.data_prep.build import BuildConfig, build
sys.path.insert(0, sys.argv[1] + "/bench")
from data_throughput import emt_spec
t0 = time.perf_counter()
s = build(BuildConfig(out=sys.argv[2], sources=[emt_spec(int(sys.argv[3]))], workers=int(sys.argv[4])), progress=False)
dt = time.perf_counter() - t0
n = sum(s["counts"].values()) + s["quarantined"]
print(json.dumps({"structures": n, "seconds": round(dt, 1), "structures_per_s": round(n / dt, 1),
                  "peak_rss_mib_main": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "peak_rss_mib_worker": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
"""


MERGE_CHILD = """
import json, resource, shutil, sys, time
from pathlib import Path
import numpy as np, pyarrow as pa, pyarrow.compute as pc, pyarrow.parquet as pq
sys.path.insert(0, sys.argv[1])
from atomforge.data_prep.build import BuildConfig
from atomforge.data_prep.finalize import finalize
template, out, n = Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4])
rows = pa.concat_tables([pq.read_table(p) for p in sorted((template / "parts").glob("*.parquet"))])
rows = rows.filter(pc.is_null(rows.column("reason")))
(out / "parts").mkdir(parents=True)
(out / "shards").mkdir()
rng = np.random.default_rng(0)
per = 250
for t in range(n // per):  # real manifest rows, fresh structure hashes: n distinct structures
    part = rows.take(rng.integers(0, rows.num_rows, per))
    part = part.set_column(part.schema.get_field_index("hash"), "hash",
                           pa.array([f"{x:024x}" for x in rng.integers(0, 2**62, per)]))
    pq.write_table(part, out / "parts" / f"{t:06d}.parquet")
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
t0 = time.perf_counter()
s = finalize(BuildConfig(out=str(out), sources=[], split={"train": 1.0}), n // per)
print(json.dumps({"rows": n, "seconds": round(time.perf_counter() - t0, 1), "peak_rss_mib_before_merge": before,
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def merge_memory(template: Path, n: int) -> dict:
    """Peak RSS of the merge step alone (data_prep.finalize) over n manifest rows in parts of 250: the one step
    of a build that sees every structure, measured to sizes a full build here could not reach in minutes."""
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run([sys.executable, "-c", MERGE_CHILD, str(REPO), str(template), str(Path(tmp) / "ds"),
                              str(n)],
                             capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def build_memory(n: int, workers: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run([sys.executable, "-c", MEM_CHILD, str(REPO), str(Path(tmp) / "ds"), str(n), str(workers)],
                             capture_output=True, text=True, check=True)
    return {"workers": workers, **json.loads(out.stdout.strip().splitlines()[-1])}


def teacher_rates(a) -> dict:
    """atoms/s per worker (one torch thread) of each teacher, per structure kind, unbatched and batched."""
    from teacher_labelling import rate

    out = {"machine": machine(a.contended), "threads_per_worker": 1, "per_kind": 4,
           "note": "static: single-point kinds; md: stored frames, each costing md_steps_between teacher steps"}
    for t in a.teachers:
        out[t] = {f"batch_atoms={b}": rate(t, 4, b, 0) for b in (0, 256)}
    return out


def teachers_section(a) -> dict:
    res = json.loads(Path(a.out).read_text()) if Path(a.out).is_file() else {"benchmark": "data_throughput"}
    res["teacher_labelling"] = teacher_rates(a)
    Path(a.out).write_text(json.dumps(res, indent=1))
    print(json.dumps(res["teacher_labelling"]))
    return res


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--structures", type=int, default=2000, help="EMT structures built for the rate measurements")
    p.add_argument("--max-atoms", type=int, default=192, help="atom budget per batch (the demo's)")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--train-steps", type=int, default=5)
    p.add_argument("--memory-sizes", type=int, nargs="*", default=[], help="build sizes for the peak-memory runs")
    p.add_argument("--merge-sizes", type=int, nargs="*", default=[],
                   help="row counts for the merge-only peak-memory runs")
    p.add_argument("--contended", action="store_true", help="say the machine was shared while measuring")
    p.add_argument("--teachers", nargs="*", default=[], help="teachers whose labelling rate to measure "
                   "(emt sevennet:7net-0 chgnet:0.3.0), one structure per call and batched")
    p.add_argument("--teachers-only", action="store_true", help="measure only the teachers; keep the rest of --out")
    p.add_argument("--out", default=str(REPO / "bench" / "results" / "data_throughput.json"))
    a = p.parse_args(argv)
    if a.teachers_only:
        return teachers_section(a)
    res = {"benchmark": "data_throughput", "machine": machine(a.contended), "params": vars(a)}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        res["build"] = [build_rate(tmp / "b1", a.structures, 1), build_rate(tmp / "b2", a.structures, 2)]
        root = tmp / "b1"
        ours = [our_loader(root, w, a.max_atoms, a.epochs) for w in (1, 2)]
        bs = max(1, round(ours[0]["mean_structures_per_batch"]))
        n_db = write_aselmdb(root, tmp / "train.aselmdb")
        peer = [fairchem_loader(tmp / "train.aselmdb", w, bs, a.epochs) for w in (1, 2)]
        res["loader"] = {"ours": ours, "fairchem_AseDBDataset": peer, "train_structures": n_db,
                         "note": "same training structures; ours packs by atom budget, the peer uses the same mean "
                                 "batch size; both yield fairchem AtomicData batches without edges"}
        res["loader_vs_fairchem_ratio_by_workers"] = {
            str(o["workers"]): round(o["structures_per_s"] / q["structures_per_s"], 2) for o, q in zip(ours, peer)}
        res["loader_vs_fairchem_ratio"] = res["loader_vs_fairchem_ratio_by_workers"]["2"]
        res["train_step"] = train_consumption(root, a.max_atoms, a.train_steps)
        merged = {n: {**merge_memory(root, n), "machine": res["machine"]} for n in a.merge_sizes}
        ranks = 2  # the demo trains on 2 ranks, each with its own loader
        res["loader_vs_demo_training_ratio"] = round(
            ours[0]["structures_per_s"] / res["train_step"]["structures_per_s_per_rank"], 1)
        res["loader_vs_demo_training_note"] = (f"one 1-worker loader per rank vs one rank's step rate; the demo runs "
                                               f"{ranks} ranks, each with its own loader")
    prev = json.loads(Path(a.out).read_text()) if Path(a.out).is_file() else {}
    mem = {r["structures_requested"]: r for r in prev.get("build_memory", [])}
    for n in a.memory_sizes:
        mem[n] = {"structures_requested": n, **build_memory(n, 2), "machine": res["machine"]}
    res["build_memory"] = [mem[k] for k in sorted(mem)]
    merged = {r["rows"]: r for r in prev.get("merge_memory", [])} | merged
    res["merge_memory"] = [merged[k] for k in sorted(merged)]
    res["teacher_labelling"] = teacher_rates(a) if a.teachers else prev.get("teacher_labelling")
    res["merge_memory_note"] = ("data_prep.finalize alone over n rows (real EMT manifest rows, fresh hashes) in parts "
                                "of 250, a fresh subprocess each; peak RSS includes the ~300 MiB the imports take")
    res["build_memory_note"] = ("EMT Cu/Al, all kinds, 250 structures per task, workers=2; peak RSS of the build's "
                                "main process and of its largest worker, each run in a fresh subprocess")
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(res, indent=1))
    print(json.dumps(res))
    return res


if __name__ == "__main__":
    main()
