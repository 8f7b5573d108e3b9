"""Peer models (universal potentials a user could pick instead of ours) as first-class models in evaluation.

`eval.model=sevennet:7net-0` or `chgnet:0.3.0` wraps the package's own ASE calculator (built through
atomforge.data_prep.teachers, the same code that labels teacher corpora) behind the predict interface evaluation uses,
so a peer is scored by the same standard and rare-event metrics as our exported folders.
"""
from __future__ import annotations

from pathlib import Path

from ase.data import chemical_symbols

PEERS = ("sevennet", "chgnet")


def is_peer(name: str) -> bool:
    """A peer name, not a path: `<package>:<model>` with a known package and no such file or folder."""
    s = str(name)
    return s.split(":", 1)[0] in PEERS and ":" in s and not Path(s).exists()


class Peer:
    def __init__(self, name: str, device: str = "cpu", threads: int | None = None, batch_atoms: int = 0):
        import torch

        from atomforge.data_prep.teachers import get_teacher, provenance

        self.name, self.batch_atoms = name, batch_atoms
        self.teacher = get_teacher(name, device=device, threads=threads or torch.get_num_threads())
        self.provenance = provenance(name)

    def elements(self) -> set[int]:
        return self.teacher.elements()

    def check_elements(self, numbers) -> None:
        """One-line refusal when the data holds an element the peer was not trained on."""
        missing = sorted({int(z) for z in numbers} - self.elements())
        if missing:
            names = ", ".join(chemical_symbols[z] for z in missing)
            raise ValueError(f"peer {self.name} has no parameters for {names} (in the evaluated data); "
                             f"it knows {len(self.elements())} elements")

    def predict(self, structures, chunk: int = 64):
        """(structure, pred dict of numpy arrays) pairs like atomforge.pipeline.models.predict.predict_structures."""
        buf = []

        def flush():
            labels = self.teacher.label([s.to_atoms() for s in buf], [s.stress is not None for s in buf],
                                        self.batch_atoms)
            for s, lab in zip(buf, labels):
                if isinstance(lab, Exception):
                    raise ValueError(f"peer {self.name} failed on {s.info.get('key', s.formula())}: {lab}")
                p = {"energy": lab.energy, "forces": lab.forces}
                if lab.stress is not None:
                    p["stress"] = lab.stress
                yield s, p

        for s in structures:
            buf.append(s)
            if len(buf) >= chunk:
                yield from flush()
                buf = []
        if buf:
            yield from flush()

    def calculator(self):
        """The peer's own ASE calculator (for the property tests)."""
        return self.teacher.calc
