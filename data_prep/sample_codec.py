"""How a Structure is stored in a webdataset sample: `<key>.npz` (arrays) + `<key>.json` (scalars, metadata)."""
from __future__ import annotations

import io
import json
import zipfile

import numpy as np

from data_prep.structure import Structure

_ARRAYS = ("numbers", "positions", "cell", "pbc", "forces", "stress")


def encode(s: Structure, key: str, split: str) -> dict:
    arrays = {k: getattr(s, k) for k in _ARRAYS if getattr(s, k) is not None}
    arrays.update({f"atom_{k}": v for k, v in s.atom_fields.items()})
    meta = {
        "energy": s.energy,
        "source": s.source,
        "group": s.group,
        "split": split,
        "n_atoms": s.n_atoms,
        "info": s.info,
    }
    return {"__key__": key, "npz": npz_bytes(arrays), "json": json.dumps(meta, sort_keys=True).encode()}


def npz_bytes(arrays: dict) -> bytes:
    """An `.npz` readable by np.load, with fixed zip timestamps so a rebuild gives byte-identical shards
    (np.savez stamps every member with the current time)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for k, v in arrays.items():
            info = zipfile.ZipInfo(k + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            with zf.open(info, "w", force_zip64=True) as fh:
                np.lib.format.write_array(fh, np.asanyarray(v), allow_pickle=False)
    return buf.getvalue()


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
