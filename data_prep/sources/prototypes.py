"""Crystal prototypes over many elements: elemental lattices, binary and ternary compounds, and the distortions
(scaled and strained cells, rattles, vacancies, interstitials, surfaces) the teacher source labels.

Lattice constants are guesses from ASE's reference states and covalent radii: the point is variety near and
away from equilibrium, which the teacher labels, not a relaxed structure.
"""
from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.build import bulk
from ase.data import atomic_numbers, covalent_radii, reference_states
from ase.spacegroup import crystal

# Elements of the default corpus (59): alkali and alkaline-earth, transition and post-transition metals,
# metalloids and the common anions.
DEFAULT_ELEMENTS = (
    "Li Be Na Mg Al Si K Ca Sc Ti V Cr Mn Fe Co Ni Cu Zn Ga Ge Rb Sr Y Zr Nb Mo Ru Rh Pd Ag Cd In Sn Sb Cs Ba "
    "La Hf Ta W Re Os Ir Pt Au Pb Bi B C N O F P S Cl Se Br Te I"
).split()
ANIONS = {"N", "O", "F", "P", "S", "Cl", "Se", "Br", "Te", "I"}
COVALENT = {"B", "C", "Si", "Ge"}  # no cations of ionic prototypes: their radii make absurdly dense salts
MIN_VOLUME_PER_ATOM = 6.0  # Å^3 (diamond C: 5.7): denser guesses are scaled up (and cost teachers ~V^-1 edges)
BIG_CATIONS = {"Li", "Na", "K", "Rb", "Cs", "Ca", "Sr", "Ba", "La", "Y", "Pb", "Bi"}  # perovskite A sites

ELEMENTAL = ("fcc", "bcc", "hcp", "sc", "diamond")
BINARY_IONIC = ("rocksalt", "zincblende", "wurtzite", "cesiumchloride", "fluorite")
BINARY_METALLIC = ("B2", "L12")
TERNARY = ("perovskite", "heusler", "alloy3")


def d_nn(el: str) -> float:
    """Nearest-neighbour distance of an element's own ground state (ASE reference), else twice its covalent radius."""
    ref = reference_states[atomic_numbers[el]] or {}
    sym, a = ref.get("symmetry"), ref.get("a")
    factor = {"fcc": 1 / np.sqrt(2), "bcc": np.sqrt(3) / 2, "hcp": 1.0, "sc": 1.0, "diamond": np.sqrt(3) / 4}
    if sym in factor and a:
        return float(a * factor[sym])
    return float(2 * covalent_radii[atomic_numbers[el]])


def _bond(a: str, b: str) -> float:
    return float(covalent_radii[atomic_numbers[a]] + covalent_radii[atomic_numbers[b]])


def elemental(el: str, lattice: str) -> Atoms:
    d = d_nn(el)
    if lattice == "hcp":
        return bulk(el, "hcp", a=d, c=d * np.sqrt(8 / 3))
    a = {"fcc": d * np.sqrt(2), "bcc": 2 * d / np.sqrt(3), "sc": d, "diamond": 4 * d / np.sqrt(3)}[lattice]
    return bulk(el, lattice, a=a, cubic=True)


def binary(a: str, x: str, proto: str) -> Atoms:
    d = _bond(a, x)
    if proto == "rocksalt":
        return bulk(a + x, "rocksalt", a=2 * d, cubic=True)
    if proto == "zincblende":
        return bulk(a + x, "zincblende", a=4 * d / np.sqrt(3), cubic=True)
    if proto == "wurtzite":
        lat = d * np.sqrt(8 / 3)
        return bulk(a + x, "wurtzite", a=lat, c=lat * np.sqrt(8 / 3), u=0.375)
    if proto == "cesiumchloride":
        return bulk(a + x, "cesiumchloride", a=2 * d / np.sqrt(3))
    if proto == "fluorite":  # A X2
        return bulk(a + x + "2", "fluorite", a=4 * d / np.sqrt(3), cubic=True)
    dm = 0.5 * (d_nn(a) + d_nn(x))  # intermetallics: the mean of the metals' own spacing
    if proto == "B2":
        return bulk(a + x, "cesiumchloride", a=2 * dm / np.sqrt(3))
    if proto == "L12":  # A3 X: X on the cube corners of an fcc cell
        at = bulk(a, "fcc", a=dm * np.sqrt(2), cubic=True)
        at.symbols[0] = x
        return at
    raise ValueError(f"unknown binary prototype {proto!r}")


def ternary(a: str, b: str, x: str, proto: str, rng) -> Atoms:
    if proto == "perovskite":  # A B X3, cubic: B-X = a/2
        lat = 2 * _bond(b, x)
        return crystal([a, b, x], basis=[(0, 0, 0), (0.5, 0.5, 0.5), (0.5, 0, 0)], spacegroup=221,
                       cellpar=[lat, lat, lat, 90, 90, 90])
    dm = (d_nn(a) + d_nn(b) + d_nn(x)) / 3
    if proto == "heusler":  # full Heusler A2 B X (L2_1)
        lat = 2 * dm * 2 / np.sqrt(3)
        return crystal([b, x, a], basis=[(0, 0, 0), (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)], spacegroup=225,
                       cellpar=[lat, lat, lat, 90, 90, 90])
    if proto == "alloy3":  # random three-metal fcc or bcc solid solution
        lattice = "fcc" if rng.random() < 0.5 else "bcc"
        lat = dm * np.sqrt(2) if lattice == "fcc" else 2 * dm / np.sqrt(3)
        at = bulk(a, lattice, a=lat, cubic=True).repeat(2)
        at.symbols[:] = [(a, b, x)[i] for i in rng.integers(0, 3, len(at))]
        return at
    raise ValueError(f"unknown ternary prototype {proto!r}")


def pick(elements: list[str], rng) -> tuple[str, Atoms]:
    """A random prototype over `elements`: elemental, binary or ternary in equal parts where the elements allow."""
    name, atoms = _pick(elements, rng)
    v = atoms.get_volume() / len(atoms)
    if v < MIN_VOLUME_PER_ATOM:
        atoms.set_cell(atoms.cell.array * (MIN_VOLUME_PER_ATOM / v) ** (1 / 3), scale_atoms=True)
    return name, atoms


def _pick(elements: list[str], rng) -> tuple[str, Atoms]:
    metals = [e for e in elements if e not in ANIONS]
    anions = [e for e in elements if e in ANIONS]
    big = [e for e in metals if e in BIG_CATIONS]
    choices = []
    if metals:
        choices.append("elemental")
    if len(metals) >= 2 or (metals and anions):
        choices.append("binary")
    if len(metals) >= 3 or (big and len(metals) >= 2 and anions):
        choices.append("ternary")
    if not choices:
        raise ValueError(f"no prototype fits the elements {elements}: give at least one non-anion element")
    family = choices[int(rng.integers(len(choices)))]
    if family == "elemental":
        el, lat = metals[int(rng.integers(len(metals)))], ELEMENTAL[int(rng.integers(len(ELEMENTAL)))]
        return f"{el}-{lat}", elemental(el, lat)
    if family == "binary":
        protos = (BINARY_IONIC if anions else ()) + (BINARY_METALLIC if len(metals) >= 2 else ())
        proto = protos[int(rng.integers(len(protos)))]
        if proto in BINARY_IONIC:
            cations = [m for m in metals if m not in COVALENT] or metals
            a, x = cations[int(rng.integers(len(cations)))], anions[int(rng.integers(len(anions)))]
        else:
            a, x = (str(s) for s in rng.choice(metals, 2, replace=False))
        return f"{a}{x}-{proto}", binary(a, x, proto)
    protos = ((("perovskite",) if big and len(metals) >= 2 and anions else ())
              + (("heusler", "alloy3") if len(metals) >= 3 else ()))
    proto = protos[int(rng.integers(len(protos)))]
    if proto == "perovskite":
        a = big[int(rng.integers(len(big)))]
        bs = [m for m in metals if m != a and m not in COVALENT] or [m for m in metals if m != a]
        b = bs[int(rng.integers(len(bs)))]
        x = anions[int(rng.integers(len(anions)))]
    else:
        a, b, x = (str(s) for s in rng.choice(metals, 3, replace=False))
    return f"{a}{b}{x}-{proto}", ternary(a, b, x, proto, rng)


def supercell(atoms: Atoms, min_atoms: int, max_atoms: int) -> Atoms:
    """Repeat the cell isotropically to at least `min_atoms` atoms (never past `max_atoms` when avoidable)."""
    r = 1
    while len(atoms) * (r + 1) ** 3 <= max_atoms and len(atoms) * r**3 < min_atoms:
        r += 1
    return atoms.repeat(r)


def _seed(rng) -> int:
    return int(rng.integers(1 << 30))


def distort(atoms: Atoms, kind: str, rng, elements: list[str]) -> Atoms:
    """One structure of `kind` from a prototype supercell."""
    atoms = atoms.copy()
    if kind == "bulk":  # scaled cell, near the guessed lattice constant and well away from it
        atoms.set_cell(atoms.cell.array * float(rng.uniform(0.9, 1.1)), scale_atoms=True)
        atoms.rattle(0.01, seed=_seed(rng))
    elif kind == "strain":
        eps = rng.uniform(-0.05, 0.05, size=(3, 3))
        atoms.set_cell(atoms.cell.array @ (np.eye(3) + 0.5 * (eps + eps.T)), scale_atoms=True)
        atoms.rattle(0.02, seed=_seed(rng))
    elif kind == "rattle":
        atoms.rattle(float(rng.uniform(0.05, 0.2)), seed=_seed(rng))
    elif kind == "vacancy":
        for _ in range(int(rng.integers(1, 3))):
            del atoms[int(rng.integers(len(atoms)))]
        atoms.rattle(0.05, seed=_seed(rng))
    elif kind == "interstitial":  # one more atom of the structure's own elements, in the emptiest of random spots
        trial = rng.random((64, 3)) @ atoms.cell.array
        probe = atoms.copy()
        probe += Atoms(["X"] * len(trial), positions=trial)  # ghost atoms: only their distances are used
        d = probe.get_all_distances(mic=True)[len(atoms):, : len(atoms)]
        own = sorted(set(atoms.get_chemical_symbols()))
        atoms += Atoms([own[int(rng.integers(len(own)))]], positions=[trial[int(d.min(1).argmax())]])
        atoms.rattle(0.03, seed=_seed(rng))
    elif kind == "surface":  # the cell opened along one axis: two free surfaces, periodic in the plane
        axis = int(rng.integers(3))
        atoms.center(vacuum=6.0, axis=axis)
        atoms.rattle(0.03, seed=_seed(rng))
    else:
        raise ValueError(f"unknown structure kind {kind!r}")
    return atoms
