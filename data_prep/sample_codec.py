"""How a Structure is stored in a webdataset sample: `<key>.npz` (arrays) + `<key>.json` (scalars, metadata)."""
from __future__ import annotations

import io
import json
import math
import re
import struct
import zipfile
import zlib

import numpy as np

from atomforge.data_prep.structure import Structure

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


_HEADER = re.compile(r"'descr':\s*'([^']+)',\s*'fortran_order':\s*(True|False),\s*'shape':\s*\(([^)]*)\)")


def read_npz(data: bytes) -> dict[str, np.ndarray]:
    """np.load for the npz members `npz_bytes` writes, the loader's hot path: walks the stored (uncompressed)
    zip entries directly and parses each .npy header with one regex instead of zipfile + numpy's `ast` parse.
    Each member's stored CRC-32 is checked (as zipfile would): a changed byte raises instead of training on it.

    Anything else (compressed members, object arrays) goes through numpy's own reader."""
    out, pos = {}, 0
    while data[pos:pos + 4] == b"PK\x03\x04":
        flags, method = struct.unpack_from("<HH", data, pos + 6)
        nlen, xlen = struct.unpack_from("<HH", data, pos + 26)
        start = pos + 30 + nlen + xlen
        name = data[pos + 30:pos + 30 + nlen].decode()
        parsed = _npy(data, start) if method == 0 and not flags & 0x08 else None
        if parsed is None:
            return _read_npz_slow(data)
        arr, end = parsed
        if zlib.crc32(memoryview(data)[start:end]) != struct.unpack_from("<I", data, pos + 14)[0]:
            raise ValueError(f"npz member {name} fails its CRC-32 check (bytes changed since it was written)")
        out[name[:-4] if name.endswith(".npy") else name] = arr
        pos = end
    return out if out else _read_npz_slow(data)


def _npy(data: bytes, start: int):
    if data[start:start + 6] != b"\x93NUMPY" or data[start + 6] not in (1, 2):
        return None
    off = start + (10 if data[start + 6] == 1 else 12)
    hlen = int.from_bytes(data[start + 8:off], "little")
    m = _HEADER.search(data[off:off + hlen].decode("latin1"))
    if m is None:
        return None
    shape = tuple(int(x) for x in m.group(3).split(",") if x.strip())
    dtype = np.dtype(m.group(1))
    if dtype.hasobject:
        return None
    count = math.prod(shape)
    arr = np.frombuffer(data, dtype, count=count, offset=off + hlen)
    arr = arr.reshape(shape[::-1]).T.copy() if m.group(2) == "True" else arr.reshape(shape).copy()
    return arr, off + hlen + count * dtype.itemsize


def _read_npz_slow(data: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def decode(sample: dict) -> Structure:
    """Inverse of `encode` for a raw webdataset sample (bytes values)."""
    key = sample.get("__key__", "?")
    url = sample.get("__url__", "?")
    try:
        meta = json.loads(sample["json"])
        arrays = read_npz(sample["npz"])
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
