"""Teachers: calculators that label generated structures, named in config, and the peers evaluation measures.

  emt                  ASE's EMT (Al Cu Ag Au Ni Pd Pt, and H C N O), one structure at a time
  sevennet:<model>     SevenNet (e.g. 7net-0), weights from the sevenn wheel; batched through its graph batch path
  chgnet:<version>     CHGNet (e.g. 0.3.0), weights from the chgnet wheel; batched through predict_graph
  <module>:<Class>     any importable ASE calculator class (kwargs from `kwargs`), one structure at a time

A teacher is built once per process (`get_teacher` caches it): loading a model costs seconds, labelling a
structure milliseconds. Torch runs on a fixed number of threads while it labels, so a rerun on other cores
(or in the build's own process instead of a worker) computes the same bits.
"""
from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.metadata
import importlib.util
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

BUILTIN = ("emt", "sevennet", "chgnet")


@dataclass
class Label:
    energy: float
    forces: np.ndarray
    stress: np.ndarray | None  # 3x3 eV/Å^3, ASE sign convention


def parse(name: str) -> tuple[str, str]:
    """'sevennet:7net-0' -> ('sevennet', '7net-0'); 'emt' -> ('emt', ''); 'pkg.mod:Cls' -> ('class', 'pkg.mod:Cls')."""
    name = str(name).strip()
    kind, _, arg = name.partition(":")
    if kind in BUILTIN:
        if kind != "emt" and not arg:
            raise ValueError(f"teacher {name!r} needs a model name, e.g. sevennet:7net-0 or chgnet:0.3.0")
        return kind, arg
    if arg and kind:
        return "class", name
    raise ValueError(f"unknown teacher {name!r}; expected emt, sevennet:<model>, chgnet:<version> or module:Class")


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _version(pkg: str) -> str:
    try:
        return importlib.metadata.version(pkg)
    except importlib.metadata.PackageNotFoundError:
        raise ValueError(f"teacher package {pkg!r} is not installed: pip install -e '.[teachers]'") from None


def weights_file(name: str) -> str | None:
    """The weights file a named teacher loads (inside its installed wheel), without loading the model."""
    kind, arg = parse(name)
    if kind == "sevennet":
        _version("sevenn")
        from sevenn.util import pretrained_name_to_path

        try:
            return str(pretrained_name_to_path(arg))
        except ValueError:
            raise ValueError(f"sevenn has no pretrained model {arg!r} (e.g. 7net-0)") from None
    if kind == "chgnet":
        _version("chgnet")
        spec = importlib.util.find_spec("chgnet")
        found = sorted((Path(spec.submodule_search_locations[0]) / "pretrained" / arg).glob("*.pth.tar"))
        if not found:
            raise ValueError(f"chgnet ships no pretrained model {arg!r} (e.g. 0.3.0)")
        return str(found[0])
    return None


@lru_cache(maxsize=None)
def provenance(name: str, kwargs_json: str = "{}") -> dict:
    """What a card records of a teacher: name, package and version, weights file and its sha256."""
    kind, arg = parse(name)
    pkg = {"emt": "ase", "sevennet": "sevenn", "chgnet": "chgnet", "class": arg.split(":")[0].split(".")[0]}[kind]
    try:
        version = _version(pkg)
    except ValueError:
        if kind != "class":
            raise
        version = None  # a class of one's own, not an installed distribution
    w = weights_file(name)
    out = {"name": name, "package": pkg, "version": version, "weights_file": Path(w).name if w else None,
           "weights_sha256": _sha256(w) if w else None}
    if kwargs_json != "{}":
        out["kwargs"] = json.loads(kwargs_json)
    return out


@contextlib.contextmanager
def torch_threads(n: int):
    try:
        import torch
    except ImportError:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class Teacher:
    """Labels lists of ase.Atoms. `label` returns a Label or the exception for each structure, in order."""

    batched = False

    def __init__(self, name: str, kwargs: dict | None = None, device: str = "cpu", threads: int = 1):
        self.name, self.kwargs, self.device, self.threads = name, dict(kwargs or {}), device, threads
        self.calc = self._make_calculator()

    def _make_calculator(self):
        kind, arg = parse(self.name)
        if kind == "emt":
            from ase.calculators.emt import EMT

            return EMT(**self.kwargs)
        mod, cls = arg.split(":", 1)
        try:
            return getattr(importlib.import_module(mod), cls)(**self.kwargs)
        except (ImportError, AttributeError) as e:
            raise ValueError(f"cannot import teacher {arg!r}: {e}") from None

    def elements(self) -> set[int] | None:
        """Atomic numbers the teacher knows; None when it does not say."""
        params = getattr(self.calc, "parameters", None)
        if parse(self.name)[0] == "emt":
            from ase.calculators.emt import parameters
            from ase.data import atomic_numbers

            return {atomic_numbers[s] for s in parameters}
        return None if not isinstance(params, dict) or "elements" not in params else set(params["elements"])

    def one(self, atoms, stress: bool) -> Label:
        a = atoms.copy()
        a.calc = self.calc
        e = float(a.get_potential_energy())
        f = np.array(a.get_forces(), dtype=np.float64)
        s = np.array(a.get_stress(voigt=False), dtype=np.float64) if stress else None
        return Label(e, f, s)

    def _many(self, batch: list, stress: list[bool]) -> list[Label]:
        return [self.one(a, s) for a, s in zip(batch, stress)]

    def label(self, atoms_list: list, stress: list[bool] | None = None, batch_atoms: int = 256) -> list:
        """Batches of at most `batch_atoms` atoms (0: one structure at a time); a batch that fails is redone one
        structure at a time, so an error belongs to the structure that caused it."""
        stress = stress if stress is not None else [bool(a.pbc.all()) for a in atoms_list]
        out, i = [], 0
        with torch_threads(self.threads):
            while i < len(atoms_list):
                j, n = i + 1, len(atoms_list[i])
                while self.batched and batch_atoms and j < len(atoms_list) and n + len(atoms_list[j]) <= batch_atoms:
                    n += len(atoms_list[j])
                    j += 1
                chunk, chunk_s = atoms_list[i:j], stress[i:j]
                try:
                    out.extend(self._many(chunk, chunk_s) if (self.batched and batch_atoms)
                               else [self.one(chunk[0], chunk_s[0])])
                except Exception:  # noqa: BLE001 - find the structure to blame
                    for a, s in zip(chunk, chunk_s):
                        try:
                            out.append(self.one(a, s))
                        except Exception as e:  # noqa: BLE001
                            out.append(e)
                i = j
        return out


class SevenNetTeacher(Teacher):
    batched = True

    def _make_calculator(self):
        from sevenn.calculator import SevenNetCalculator

        calc = SevenNetCalculator(parse(self.name)[1], device=self.device, **self.kwargs)
        self.cutoff = float(calc.cutoff)
        return calc

    def elements(self) -> set[int]:
        return {int(z) for z in self.calc.type_map}

    def _many(self, batch, stress):
        import sevenn._keys as KEY
        from sevenn.atom_graph_data import AtomGraphData
        from sevenn.train.dataload import unlabeled_atoms_to_graph
        from torch_geometric.data import Batch

        self.elements_ok(batch)
        graphs = [AtomGraphData.from_numpy_dict(unlabeled_atoms_to_graph(a, self.cutoff, with_shift=False))
                  for a in batch]
        model = self.calc.model
        model.set_is_batch_data(True)
        try:
            out = model(Batch.from_data_list(graphs).to(self.calc.device))
        finally:
            model.set_is_batch_data(False)  # the calculator's own (single-structure) path
        n = out[KEY.NUM_ATOMS].tolist()
        forces = out[KEY.PRED_FORCE].detach().cpu().double().split(n)
        energies = out[KEY.PRED_TOTAL_ENERGY].detach().cpu().double().reshape(-1)
        virial = -out[KEY.PRED_STRESS].detach().cpu().double().reshape(len(batch), 6).numpy()
        labels = []
        for k, s in enumerate(stress):
            xx, yy, zz, xy, yz, zx = virial[k]  # sevenn's order
            st = np.array([[xx, xy, zx], [xy, yy, yz], [zx, yz, zz]]) if s else None
            labels.append(Label(float(energies[k]), forces[k].numpy().copy(), st))
        return labels

    def elements_ok(self, batch):
        for a in batch:
            self.calc.set_atoms(a)  # raises on an element the model does not know


class CHGNetTeacher(Teacher):
    batched = True

    def _make_calculator(self):
        from chgnet.model import CHGNet
        from chgnet.model.dynamics import CHGNetCalculator

        model = CHGNet.load(model_name=parse(self.name)[1], use_device=self.device, verbose=False)
        model.graph_converter.set_isolated_atom_response("error")
        return CHGNetCalculator(model=model, use_device=self.device, **self.kwargs)

    def elements(self) -> set[int]:
        return set(range(1, int(self.calc.model.atom_embedding.embedding.num_embeddings) + 1))

    def _many(self, batch, stress):
        from ase import units
        from pymatgen.io.ase import AseAtomsAdaptor

        model = self.calc.model
        graphs = [model.graph_converter(AseAtomsAdaptor.get_structure(a)) for a in batch]
        preds = model.predict_graph(graphs, task="efs", batch_size=len(graphs))
        preds = preds if isinstance(preds, list) else [preds]
        labels = []
        for a, p, s in zip(batch, preds, stress):
            e = float(p["e"]) * (len(a) if model.is_intensive else 1)  # as CHGNetCalculator converts
            st = np.asarray(p["s"], dtype=np.float64) * units.GPa if s else None
            labels.append(Label(e, np.asarray(p["f"], dtype=np.float64), st))
        return labels


_CACHE: dict = {}


def get_teacher(name: str, kwargs: dict | None = None, device: str = "cpu", threads: int = 1) -> Teacher:
    """The process's teacher of that name and settings, built on first use."""
    key = (name, json.dumps(kwargs or {}, sort_keys=True), device, threads)
    if key not in _CACHE:
        cls = {"sevennet": SevenNetTeacher, "chgnet": CHGNetTeacher}.get(parse(name)[0], Teacher)
        if cls is not Teacher:
            _version("sevenn" if cls is SevenNetTeacher else "chgnet")
        _CACHE[key] = cls(name, kwargs, device, threads)
    return _CACHE[key]
