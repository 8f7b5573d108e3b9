"""What a built dataset stores: the manifest row schema and the units of every field."""
from __future__ import annotations

import pyarrow as pa

UNITS = {"energy": "eV", "length": "Å", "forces": "eV/Å", "stress": "eV/Å^3 (ASE sign convention)"}

MANIFEST_SCHEMA = pa.schema(
    [
        ("key", pa.string()),
        ("shard", pa.string()),
        ("index", pa.int64()),
        ("n_atoms", pa.int64()),
        ("formula", pa.string()),
        ("elements", pa.list_(pa.string())),
        ("z", pa.list_(pa.int64())),
        ("counts", pa.list_(pa.int64())),
        ("source", pa.string()),
        ("group", pa.string()),
        ("split", pa.string()),
        ("energy", pa.float64()),
        ("energy_per_atom", pa.float64()),
        ("max_force", pa.float64()),
        ("f_sq_sum", pa.float64()),
        ("n_force_comp", pa.int64()),
        ("has_stress", pa.bool_()),
        ("n_re", pa.int64()),
        ("avg_neighbors", pa.float64()),
        ("hash", pa.string()),
        ("digest", pa.string()),  # sha256 of the sample's stored bytes (npz then json); "" for quarantine rows
        ("flags", pa.list_(pa.string())),
        ("reason", pa.string()),
    ]
)
