"""Energy / force / stress errors of a model on a built dataset split, overall and per element and source."""
from __future__ import annotations

from collections import defaultdict

import numpy as np
import torch
from pathlib import Path

from data_prep.integrity import (CorruptShard, ShardHashMismatch, ShardReader, expected_hash, reason, recorded_hashes,
                                 sample_digest)
from data_prep.sample_codec import decode
from pipeline.data.convert import structures_to_batch
from pipeline.data.plan import load_index


def read_split(root: str, split: str):
    """Yield the split's Structures shard by shard (evaluation reads everything once, unshuffled).

    A shard's structures are yielded only once the whole shard has passed its checks (npz CRCs, its sha256
    against the card, each sample's sha256 against the manifest's digest): an evaluation never scores part of a
    damaged shard. A shard failing its sha256 whose samples all match their digests is read (the damage is
    outside them); in a dataset built before digests it is refused. Any damage is a one-line CorruptShard (a
    ValueError) naming the shard, and the sample where one is to blame."""
    root = Path(root)
    index = load_index(str(root / "manifest.parquet"), split)
    hashes = recorded_hashes(root)
    for shard, samples in index.items():
        path = root / "shards" / shard
        want, got, last = {s.key: s.digest for s in samples}, {}, None
        digests = all(want.values())
        try:
            reader = ShardReader(path, expected_hash(hashes, path))
            mismatched = set()  # a shard can hold a sample quarantined after it was written under a kept key
            for raw in reader:
                last = raw["__key__"]
                if last in want and last not in got:
                    raw["__url__"] = str(path)
                    try:  # decoded first: a CRC failure names the member
                        sample = decode(raw)
                    except ValueError as e:  # names key, shard and the failing member
                        raise CorruptShard(str(e)) from None
                    if digests and sample_digest(raw) != want[last]:
                        mismatched.add(last)  # unless a later sample of this key is the recorded one
                        continue
                    got[last] = sample
            bad = sorted(mismatched - set(got))
            if bad:
                raise CorruptShard(f"sample {bad[0]} in {path} does not match its recorded sha256 digest: its "
                                   f"bytes changed since the build")
            try:
                reader.verify()
            except ShardHashMismatch:
                if not digests or len(got) < len(want):
                    raise
        except CorruptShard:
            raise
        except Exception as e:  # truncated tar, bad header
            raise CorruptShard(f"shard {path} is unreadable after key {last}: {reason(e)}") from None
        if len(got) < len(want):
            raise CorruptShard(f"shard {path} lacks {len(want) - len(got)} sample(s) of the manifest, e.g. key "
                               f"{sorted(set(want) - set(got))[0]}")
        yield from got.values()


def predict_structures(model, structures, batch_atoms: int = 512, device: str = "cpu", task: str | None = None):
    """(structure, pred dict of numpy arrays) pairs, batched by atom budget; `task`: the energy head of a model
    with per-task heads (default: its default head)."""
    grad = model.cfg.force_mode == "conservative"
    buf, n = [], 0

    def flush():
        batch = (structures_to_batch(buf, task) if task else structures_to_batch(buf)).to(device)
        with torch.set_grad_enabled(grad):
            out = model(batch)
        forces = torch.split(out["forces"].detach().cpu().double(), batch["natoms"].tolist())
        for i, s in enumerate(buf):
            p = {"energy": float(out["energy"][i]), "forces": forces[i].numpy()}
            if "stress" in out:
                p["stress"] = out["stress"][i].detach().cpu().double().numpy()
            yield s, p

    for s in structures:
        if buf and n + s.n_atoms > batch_atoms:
            yield from flush()
            buf, n = [], 0
        buf.append(s)
        n += s.n_atoms
    if buf:
        yield from flush()


class ErrorAccumulator:
    """Streaming sums for MAE/RMSE/cosine; one per slice (all, per element, per group)."""

    def __init__(self):
        self.e_abs = self.e_sq = self.n_s = 0.0
        self.f_abs = self.f_sq = self.n_fc = 0.0
        self.cos = self.n_fa = 0.0
        self.s_abs = self.n_sc = 0.0

    def add_structure(self, de_per_atom: float):
        self.e_abs += abs(de_per_atom)
        self.e_sq += de_per_atom**2
        self.n_s += 1

    def add_forces(self, fp: np.ndarray, fr: np.ndarray):
        d = fp - fr
        self.f_abs += np.abs(d).sum()
        self.f_sq += (d**2).sum()
        self.n_fc += d.size
        norm = np.linalg.norm(fp, axis=1) * np.linalg.norm(fr, axis=1)
        ok = norm > 1e-8
        self.cos += float(((fp * fr).sum(1)[ok] / norm[ok]).sum())
        self.n_fa += int(ok.sum())

    def add_stress(self, sp, sr):
        self.s_abs += np.abs(sp - sr).sum()
        self.n_sc += sp.size

    def result(self) -> dict:
        r = {}
        if self.n_s:
            r.update(energy_mae_per_atom=self.e_abs / self.n_s, energy_rmse_per_atom=np.sqrt(self.e_sq / self.n_s), n_structures=int(self.n_s))
        if self.n_fc:
            r.update(force_mae=self.f_abs / self.n_fc, force_rmse=np.sqrt(self.f_sq / self.n_fc), n_force_components=int(self.n_fc))
        if self.n_fa:
            r["force_cosine"] = self.cos / self.n_fa
        if self.n_sc:
            r["stress_mae"] = self.s_abs / self.n_sc
        return {k: float(v) for k, v in r.items()}


def standard_metrics(pairs) -> dict:
    from ase.data import chemical_symbols

    acc = {"all": ErrorAccumulator()}
    per_el: dict = defaultdict(ErrorAccumulator)
    per_group: dict = defaultdict(ErrorAccumulator)
    for s, p in pairs:
        de = (p["energy"] - s.energy) / s.n_atoms
        group = s.info.get("group") or s.info.get("set") or s.info.get("kind") or s.source
        slices = [acc["all"], per_group[f"{s.source}/{group}"]]
        for a in slices:
            a.add_structure(de)
        if s.forces is not None:
            for a in slices:
                a.add_forces(p["forces"], s.forces)
            for z in np.unique(s.numbers):
                m = s.numbers == z
                per_el[chemical_symbols[int(z)]].add_forces(p["forces"][m], s.forces[m])
        for z in np.unique(s.numbers):
            if len(np.unique(s.numbers)) == 1:
                per_el[chemical_symbols[int(z)]].add_structure(de)
        if s.stress is not None and "stress" in p:
            for a in slices:
                a.add_stress(p["stress"], s.stress)
    return {
        "all": acc["all"].result(),
        "per_element": {k: v.result() for k, v in sorted(per_el.items())},
        "per_group": {k: v.result() for k, v in sorted(per_group.items())},
    }
