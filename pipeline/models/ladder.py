"""The size ladder: a name -> fairchem backbone hyper-parameters. Counts are for the default heads."""
from __future__ import annotations

ESCN_MD = "fairchem.core.models.uma.escn_md.eSCNMDBackbone"
ESCN_MOE = "fairchem.core.models.uma.escn_moe.eSCNMDMoeBackbone"
ESCAIP = "fairchem.core.models.escaip.EScAIP.EScAIPBackbone"

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

# EScAIP (attention over a k-nearest-neighbour radius graph, no tensor products): eager on CPU (no torch.compile),
# no padding (fairchem pads to fixed max_atoms/max_batch_size only for compiled graphs), "math" attention.
_ESCAIP_COMMON = dict(
    use_pbc=True,
    max_num_elements=100,
    max_atoms=1024,
    max_batch_size=64,
    max_radius=6.0,
    knn_k=30,
    knn_soft=True,
    knn_sigmoid_scale=0.2,
    knn_lse_scale=0.1,
    knn_use_low_mem=True,
    knn_pad_size=80,  # >= neighbours the soft k-NN keeps (can exceed knn_k); 30 overflowed on EMT vacancy/MD cells
    distance_function="gaussian",
    use_compile=False,
    use_padding=False,
    atten_name="math",
    activation="gelu",
    normalization="rmsnorm",
)

# name: (family, overrides). Parameter counts are printed by `atomforge models`.
LADDER: dict[str, tuple[str, dict]] = {
    "esen_xs": ("esen", dict(sphere_channels=32, hidden_channels=32, edge_channels=32, num_distance_basis=32,
                             lmax=2, mmax=2, num_layers=2)),
    "esen_s": ("esen", dict(sphere_channels=64, hidden_channels=64, edge_channels=64, num_distance_basis=64,
                            lmax=2, mmax=2, num_layers=4)),
    "esen_m": ("esen", dict(sphere_channels=128, hidden_channels=128, edge_channels=128, num_distance_basis=128,
                            lmax=4, mmax=2, num_layers=6)),
    "esen_l": ("esen", dict(sphere_channels=256, hidden_channels=256, edge_channels=128, num_distance_basis=256,
                            lmax=4, mmax=2, num_layers=8)),
    "esen_xl": ("esen", dict(sphere_channels=512, hidden_channels=512, edge_channels=256, num_distance_basis=256,
                             lmax=6, mmax=2, num_layers=16)),
    "esen_xxl": ("esen", dict(sphere_channels=1024, hidden_channels=1024, edge_channels=512, num_distance_basis=512,
                              lmax=6, mmax=2, num_layers=16)),
    # Mixture of linear experts (UMA-style): expert SO(2) weights are mixed per structure from its composition,
    # so a structure runs a dense model of the eSEN size (active) while the total holds num_experts copies.
    "mole_s": ("mole", dict(sphere_channels=64, hidden_channels=64, edge_channels=64, num_distance_basis=64,
                            lmax=2, mmax=2, num_layers=4,
                            num_experts=8, use_composition_embedding=True)),
    "mole_m": ("mole", dict(sphere_channels=128, hidden_channels=128, edge_channels=128, num_distance_basis=128,
                            lmax=4, mmax=2, num_layers=6,
                            num_experts=32, use_composition_embedding=True)),
    # attention (EScAIP): head_dim = hidden_size / atten_num_heads must equal sum(freequency_list) (fairchem's
    # spelling)
    "escaip_s": ("escaip", dict(hidden_size=64, num_layers=2, atten_num_heads=4, freequency_list=[4, 4, 4, 4],
                                atom_embedding_size=64, node_direction_embedding_size=32,
                                node_direction_expansion_size=10, edge_distance_expansion_size=64,
                                edge_distance_embedding_size=64)),
}
BACKBONES = {"esen": ESCN_MD, "mole": ESCN_MOE, "escaip": ESCAIP}
MOE_KEYS = ("num_experts", "use_composition_embedding", "moe_dropout", "composition_dropout", "moe_layer_type",
            "moe_single", "moe_type")


def dense_equivalent(kw: dict) -> dict:
    """The backbone kwargs a mixture collapses to for one structure (its active parameters)."""
    return {k: v for k, v in kw.items() if k not in MOE_KEYS}


def backbone_kwargs(name: str, overrides: dict | None = None) -> tuple[str, dict]:
    if name not in LADDER:
        raise ValueError(f"unknown ladder size {name!r}; choose from {sorted(LADDER)}")
    family, kw = LADDER[name]
    out = dict(_ESCAIP_COMMON if family == "escaip" else _COMMON)
    out.update(kw)
    out.update(overrides or {})
    return family, out
