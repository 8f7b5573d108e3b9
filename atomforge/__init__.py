"""Atomforge's public API: load an exported model, use it as an ASE calculator, predict many structures.

    import atomforge
    model = atomforge.from_pretrained("models/<name>")      # a folder, or "hf://org/name"
    atoms.calc = atomforge.calculator(model)                 # or atomforge.fairchem_calculator("models/<name>")
    results = atomforge.predict(model, list_of_atoms)        # energy, forces (and stress) per structure

The stages are subpackages: atomforge.data_prep (datasets), atomforge.pipeline (train, evaluate, export, sweep,
reproduce, cli) and atomforge.configs (the hydra config tree). They live in the repository's root folders of
those names; the install maps them here (setup.py), so site-packages holds only `atomforge`.
"""
from __future__ import annotations

import importlib
from pathlib import Path

# A source checkout used without installing it (PYTHONPATH=<checkout>, a git worktree): its stage folders sit
# beside this one. Installed, the mapping in setup.py finds them and this folder's parent holds no stage folder.
_CHECKOUT = Path(__file__).resolve().parent.parent
if (_CHECKOUT / "pipeline" / "__init__.py").is_file() and (_CHECKOUT / "setup.py").is_file():
    __path__.append(str(_CHECKOUT))  # noqa: F821 (a package's own __path__)

__all__ = ["from_pretrained", "load", "calculator", "fairchem_calculator", "predict", "AtomforgeError", "UsageError"]

# Names resolve on first use: `import atomforge.data_prep.x` must not load torch and the export stack first.
_LAZY = {"from_pretrained": "atomforge.pipeline.export", "load": "atomforge.pipeline.export",
         "calculator": "atomforge.pipeline.export", "fairchem_calculator": "atomforge.pipeline.export",
         "AtomforgeError": "atomforge.data_prep.errors", "UsageError": "atomforge.data_prep.errors"}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'atomforge' has no attribute {name!r}")


def predict(model_or_path, atoms_list, device: str = "cpu") -> list[dict]:
    """Energies, forces (and stress) of many structures in one batch; `model_or_path` as from_pretrained takes."""
    from atomforge.pipeline.export import load
    from atomforge.pipeline.models.predict import predict as _predict

    model = model_or_path if hasattr(model_or_path, "cfg") else load(model_or_path, device)
    return _predict(model, list(atoms_list), device)
