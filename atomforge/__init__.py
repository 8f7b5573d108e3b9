"""Atomforge's public API: load an exported model, use it as an ASE calculator, predict many structures.

    import atomforge
    model = atomforge.from_pretrained("models/<name>")      # a folder, or "hf://org/name"
    atoms.calc = atomforge.calculator(model)                 # or atomforge.fairchem_calculator("models/<name>")
    results = atomforge.predict(model, list_of_atoms)        # energy, forces (and stress) per structure
"""
from __future__ import annotations

from data_prep.errors import AtomforgeError, UsageError
from pipeline.export import calculator, fairchem_calculator, from_pretrained, load
from pipeline.models.predict import predict as _predict

__all__ = ["from_pretrained", "load", "calculator", "fairchem_calculator", "predict", "AtomforgeError", "UsageError"]


def predict(model_or_path, atoms_list, device: str = "cpu") -> list[dict]:
    """Energies, forces (and stress) of many structures in one batch; `model_or_path` as from_pretrained takes."""
    model = model_or_path if hasattr(model_or_path, "cfg") else load(model_or_path, device)
    return _predict(model, list(atoms_list), device)
