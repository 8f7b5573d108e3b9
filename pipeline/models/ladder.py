"""The size ladder: a name -> fairchem backbone hyper-parameters. Counts are for the default heads."""
from __future__ import annotations

ESCN_MD = "fairchem.core.models.uma.escn_md.eSCNMDBackbone"
ESCN_MOE = "fairchem.core.models.uma.escn_moe.eSCNMDMoeBackbone"

_COMMON = dict(
    max_num_elements=100,
    otf_graph=True,
    max_neighbors=30,
    cutoff=6.0,
    use_dataset_embedding=False,
    always_use_pbc=True,
    norm_type="rms_norm_sh",
    act_type="gate",
    ff_type="grid",
)

# name: (family, overrides). Parameter counts are printed by `atomforge models`.
LADDER: dict[str, tuple[str, dict]] = {
    "esen_xs": ("esen", dict(sphere_channels=32, hidden_channels=32, edge_channels=32, num_distance_basis=32, lmax=2, mmax=2, num_layers=2)),
    "esen_s": ("esen", dict(sphere_channels=64, hidden_channels=64, edge_channels=64, num_distance_basis=64, lmax=2, mmax=2, num_layers=4)),
    "esen_m": ("esen", dict(sphere_channels=128, hidden_channels=128, edge_channels=128, num_distance_basis=128, lmax=4, mmax=2, num_layers=6)),
    "esen_l": ("esen", dict(sphere_channels=256, hidden_channels=256, edge_channels=128, num_distance_basis=256, lmax=4, mmax=2, num_layers=8)),
    "esen_xl": ("esen", dict(sphere_channels=512, hidden_channels=512, edge_channels=256, num_distance_basis=256, lmax=6, mmax=2, num_layers=16)),
    "esen_xxl": ("esen", dict(sphere_channels=1024, hidden_channels=1024, edge_channels=512, num_distance_basis=512, lmax=6, mmax=2, num_layers=16)),
    # Mixture of linear experts (UMA-style): expert SO(2) weights are mixed per structure from its composition,
    # so a structure runs a dense model of the eSEN size (active) while the total holds num_experts copies.
    "mole_s": ("mole", dict(sphere_channels=64, hidden_channels=64, edge_channels=64, num_distance_basis=64, lmax=2, mmax=2, num_layers=4,
                            num_experts=8, use_composition_embedding=True)),
    "mole_m": ("mole", dict(sphere_channels=128, hidden_channels=128, edge_channels=128, num_distance_basis=128, lmax=4, mmax=2, num_layers=6,
                            num_experts=32, use_composition_embedding=True)),
}
BACKBONES = {"esen": ESCN_MD, "mole": ESCN_MOE}
MOE_KEYS = ("num_experts", "use_composition_embedding", "moe_dropout", "composition_dropout", "moe_layer_type", "moe_single", "moe_type")


def dense_equivalent(kw: dict) -> dict:
    """The backbone kwargs a mixture collapses to for one structure (its active parameters)."""
    return {k: v for k, v in kw.items() if k not in MOE_KEYS}


def backbone_kwargs(name: str, overrides: dict | None = None) -> tuple[str, dict]:
    if name not in LADDER:
        raise ValueError(f"unknown ladder size {name!r}; choose from {sorted(LADDER)}")
    family, kw = LADDER[name]
    out = dict(_COMMON)
    out.update(kw)
    out.update(overrides or {})
    return family, out
