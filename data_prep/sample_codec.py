"""How a Structure is stored in a webdataset sample: `<key>.npz` (arrays) + `<key>.json` (scalars, metadata)."""
from __future__ import annotations

import io
import json

import numpy as np

from data_prep.structure import Structure

_ARRAYS = ("numbers", "positions", "cell", "pbc", "forces", "stress")


def encode(s: Structure, key: str, split: str) -> dict:
    arrays = {k: getattr(s, k) for k in _ARRAYS if getattr(s, k) is not None}
    arrays.update({f"atom_{k}": v for k, v in s.atom_fields.items()})
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    meta = {
        "energy": s.energy,
        "source": s.source,
        "group": s.group,
        "split": split,
        "n_atoms": s.n_atoms,
        "info": s.info,
    }
    return {"__key__": key, "npz": buf.getvalue(), "json": json.dumps(meta, sort_keys=True).encode()}


def decode(sample: dict) -> Structure:
    """Inverse of `encode` for a raw webdataset sample (bytes values)."""
    key = sample.get("__key__", "?")
    url = sample.get("__url__", "?")
    try:
        meta = json.loads(sample["json"])
        with np.load(io.BytesIO(sample["npz"])) as z:
            arrays = {k: z[k] for k in z.files}
    except KeyError as e:
        raise ValueError(f"sample {key} in {url} is missing field {e}") from None
    except Exception as e:  # truncated/corrupt member
        raise ValueError(f"sample {key} in {url} is corrupt: {e}") from None
    return Structure(
        numbers=arrays["numbers"],
        positions=arrays["positions"],
        cell=arrays["cell"],
        pbc=arrays["pbc"],
        energy=float(meta["energy"]),
        forces=arrays.get("forces"),
        stress=arrays.get("stress"),
        source=meta["source"],
        group=meta["group"],
        atom_fields={k[5:]: v for k, v in arrays.items() if k.startswith("atom_")},
        info=dict(meta.get("info", {}), key=key, split=meta.get("split")),
    )
