"""Property tests with a ground truth: the model as an ASE calculator against a teacher (EMT) run the same way.

Every function takes `make_calc`, a zero-argument callable returning a fresh ASE calculator, so the same
code path computes the model's figure and the teacher's; `compare` runs both and reports the error.
Cells are fixed (no cell relaxation) so both sides see the same geometry.
"""
from __future__ import annotations

import numpy as np
from ase import units
from ase.build import bulk
from ase.geometry.rdf import get_rdf
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary
from ase.md.verlet import VelocityVerlet
from ase.mep import NEB
from ase.optimize import BFGS, FIRE

DEFINITIONS = {
    "vacancy_formation_energy": ("E(N-1, relaxed) - (N-1)/N * E(N, perfect), fixed cell", "eV"),
    "vacancy_migration_barrier": ("CI-NEB max image energy - initial energy for a nearest-neighbour vacancy hop", "eV"),
    "nve_energy_drift": ("slope of total energy per atom vs time in velocity-Verlet NVE", "meV/atom/ps"),
    "md_time_to_failure": ("time under a linear Langevin temperature ramp until a pair gets closer than 0.5 d_nn "
                           "or the energy is not finite; null = survived the whole ramp", "ps"),
    "rdf_l1_error": ("integral over r of |g_model(r) - g_ref(r)| from NVT MD at the same conditions", "Å"),
    "vacancy_diffusivity": ("sum over atoms of the mean square displacement / (6 t) in NVT MD with one vacancy",
                            "Å^2/ps"),
}


def crystal_cell(element: str, repeat: int = 2, a: float | None = None):
    """Cubic cell of the element's ground-state structure as ASE knows it (fcc for the EMT metals, diamond for
    Si); `a` overrides the lattice constant (e.g. the DFT one, so the model sees the cell its data came from)."""
    return bulk(element, cubic=True, a=a).repeat(repeat)


def _relax(atoms, make_calc, fmax: float, steps: int):
    atoms.calc = make_calc()
    BFGS(atoms, logfile=None).run(fmax=fmax, steps=steps)
    return atoms


def vacancy_formation_energy(make_calc, element: str, repeat: int = 2, fmax: float = 0.02, steps: int = 200,
                             a: float | None = None) -> dict:
    perfect = crystal_cell(element, repeat, a)
    perfect.calc = make_calc()
    e_perfect = perfect.get_potential_energy()
    n = len(perfect)
    vac = perfect.copy()
    del vac[0]
    _relax(vac, make_calc, fmax, steps)
    return {"value": float(vac.get_potential_energy() - (n - 1) / n * e_perfect), "n_atoms": n}


def vacancy_hop_endpoints(element: str, repeat: int = 2, a: float | None = None):
    """Unrelaxed initial and final cells of a nearest-neighbour vacancy hop (vacancy at atom 0's site)."""
    cell = crystal_cell(element, repeat, a)
    j = 1 + int(np.argmin(cell.get_distances(0, list(range(1, len(cell))), mic=True)))
    site0 = cell.positions[0].copy()
    init = cell.copy()
    del init[0]
    final = init.copy()
    final.positions[j - 1] = site0  # the neighbour jumps into the vacancy
    return init, final


def neb_barrier(make_calc, element: str, repeat: int = 2, n_images: int = 5, fmax: float = 0.03,
                steps: int = 300, climb: bool = True, a: float | None = None, relax_steps: int | None = None) -> dict:
    """CI-NEB barrier of a vacancy hop; images interpolated with IDPP between relaxed end points."""
    init, final = vacancy_hop_endpoints(element, repeat, a)
    relax_steps = steps if relax_steps is None else relax_steps
    _relax(init, make_calc, fmax, relax_steps)
    _relax(final, make_calc, fmax, relax_steps)
    images = [init] + [init.copy() for _ in range(n_images)] + [final]
    for im in images[1:-1]:
        im.calc = make_calc()
    neb = NEB(images, climb=climb, method="improvedtangent")
    neb.interpolate(method="idpp", mic=True)
    converged = bool(FIRE(neb, logfile=None).run(fmax=fmax, steps=steps))
    e = np.array([im.get_potential_energy() for im in images])
    path = np.concatenate([[0.0], np.cumsum([np.linalg.norm(_mic(b.positions - a.positions, a))
                                             for a, b in zip(images, images[1:])])])
    return {"value": float(e.max() - e[0]), "energies": (e - e[0]).tolist(), "path": path.tolist(),
            "converged": converged, "n_atoms": len(init)}


def _mic(d, atoms):
    from ase.geometry import find_mic

    return find_mic(d, atoms.cell, atoms.pbc)[0]


def nve_energy_drift(make_calc, atoms, temperature_K: float = 300.0, dt_fs: float = 2.0, steps: int = 200,
                     seed: int = 0) -> dict:
    atoms = atoms.copy()
    atoms.calc = make_calc()
    # equipartition: start at 2T so the run settles near T
    MaxwellBoltzmannDistribution(atoms, temperature_K=2 * temperature_K, rng=np.random.default_rng(seed))
    Stationary(atoms)
    dyn = VelocityVerlet(atoms, dt_fs * units.fs)
    t, e = [], []

    def record():
        t.append(len(t) * dt_fs / 1000.0)
        e.append(atoms.get_total_energy() / len(atoms))

    dyn.attach(record, interval=1)
    dyn.run(steps)
    slope = np.polyfit(t, e, 1)[0] if np.all(np.isfinite(e)) else float("nan")
    return {"value": float(slope * 1000.0), "time_ps": t, "energy_per_atom": [x - e[0] for x in e],
            "fluctuation_meV_atom": float(np.std(e) * 1000.0)}


def md_time_to_failure(make_calc, atoms, t_start: float = 300.0, t_end: float = 2500.0, dt_fs: float = 2.0,
                       steps: int = 500, check_every: int = 10, seed: int = 0) -> dict:
    atoms = atoms.copy()
    atoms.calc = make_calc()
    d0 = atoms.get_all_distances(mic=True)
    d_nn = float(d0[d0 > 1e-6].min())
    MaxwellBoltzmannDistribution(atoms, temperature_K=t_start, rng=np.random.default_rng(seed))
    dyn = Langevin(atoms, dt_fs * units.fs, temperature_K=t_start, friction=0.02, fixcm=False,
                   rng=np.random.default_rng(seed + 1))
    for done in range(0, steps, check_every):
        dyn.set_temperature(temperature_K=t_start + (t_end - t_start) * done / steps)
        dyn.run(check_every)
        d = atoms.get_all_distances(mic=True)
        bad = not np.isfinite(atoms.get_potential_energy()) or d[np.triu_indices(len(atoms), 1)].min() < 0.5 * d_nn
        if bad:
            t = (done + check_every) * dt_fs / 1000.0
            return {"value": t, "temperature_K": t_start + (t_end - t_start) * (done + check_every) / steps,
                    "ramp_ps": steps * dt_fs / 1000.0}
    return {"value": None, "ramp_ps": steps * dt_fs / 1000.0, "temperature_K": t_end}


def _nvt(make_calc, atoms, temperature_K, dt_fs, steps, seed):
    atoms = atoms.copy()
    atoms.calc = make_calc()
    MaxwellBoltzmannDistribution(atoms, temperature_K=temperature_K, rng=np.random.default_rng(seed))
    dyn = Langevin(atoms, dt_fs * units.fs, temperature_K=temperature_K, friction=0.02, fixcm=False,
                   rng=np.random.default_rng(seed + 1))
    return atoms, dyn


def rdf(make_calc, atoms, temperature_K: float = 900.0, dt_fs: float = 2.0, steps: int = 200, every: int = 10,
        rmax: float | None = None, nbins: int = 80, seed: int = 0) -> dict:
    atoms, dyn = _nvt(make_calc, atoms, temperature_K, dt_fs, steps, seed)
    if rmax is None:  # ASE needs rmax below half the smallest cell height
        rmax = 0.49 * float(min(atoms.cell.volume / np.linalg.norm(np.cross(*np.delete(atoms.cell.array, i, 0)))
                                for i in range(3)))
    gs = []
    dyn.attach(lambda: gs.append(get_rdf(atoms, rmax, nbins)[0]), interval=every)
    dyn.run(steps)
    r = get_rdf(atoms, rmax, nbins)[1]
    return {"r": r.tolist(), "g": np.mean(gs, 0).tolist()}


def diffusivity(make_calc, atoms, temperature_K: float = 1200.0, dt_fs: float = 4.0, steps: int = 500,
                seed: int = 0) -> dict:
    atoms, dyn = _nvt(make_calc, atoms, temperature_K, dt_fs, steps, seed)
    start = atoms.positions.copy()  # ASE MD does not wrap positions, so displacements are continuous
    dyn.run(steps)
    t = steps * dt_fs / 1000.0
    msd_sum = float(((atoms.positions - start) ** 2).sum())
    return {"value": msd_sum / (6 * t), "time_ps": t}


def compare(name: str, model: dict, ref: dict) -> dict:
    """Model figure, reference figure and the error (model - reference), with the raw curves kept for plots."""
    out = {"model": model.get("value"), "reference": ref.get("value")}
    if out["model"] is not None and out["reference"] is not None:
        out["error"] = out["model"] - out["reference"]
    out["curves"] = {"model": {k: v for k, v in model.items() if k != "value"},
                     "reference": {k: v for k, v in ref.items() if k != "value"}}
    return out


def property_suite(make_calc, teacher, elements=("Cu",), repeat: int = 2, md_steps: int = 200, neb_steps: int = 300,
                   which=("vacancy_formation_energy", "vacancy_migration_barrier", "nve_energy_drift",
                          "md_time_to_failure", "rdf_l1_error", "vacancy_diffusivity")) -> dict:
    """All property tests for each element: model vs teacher at identical conditions."""
    out = {}
    for el in elements:
        res = {}
        cell = crystal_cell(el, repeat)
        vac = cell.copy()
        del vac[0]
        if "vacancy_formation_energy" in which:
            res["vacancy_formation_energy"] = compare("vf", vacancy_formation_energy(make_calc, el, repeat),
                                                      vacancy_formation_energy(teacher, el, repeat))
        if "vacancy_migration_barrier" in which:
            res["vacancy_migration_barrier"] = compare("neb", neb_barrier(make_calc, el, repeat, steps=neb_steps),
                                                       neb_barrier(teacher, el, repeat, steps=neb_steps))
        if "nve_energy_drift" in which:
            res["nve_energy_drift"] = compare("nve", nve_energy_drift(make_calc, cell, steps=md_steps),
                                              nve_energy_drift(teacher, cell, steps=md_steps))
        if "md_time_to_failure" in which:
            res["md_time_to_failure"] = compare("stab", md_time_to_failure(make_calc, cell, steps=md_steps),
                                                md_time_to_failure(teacher, cell, steps=md_steps))
        if "rdf_l1_error" in which:
            m, r = rdf(make_calc, cell, steps=md_steps), rdf(teacher, cell, steps=md_steps)
            dr = m["r"][1] - m["r"][0]
            l1 = float(np.abs(np.array(m["g"]) - np.array(r["g"])).sum() * dr)
            res["rdf_l1_error"] = {"model": l1, "reference": 0.0, "error": l1, "curves": {"model": m, "reference": r}}
        if "vacancy_diffusivity" in which:
            res["vacancy_diffusivity"] = compare("diff", diffusivity(make_calc, vac, steps=md_steps),
                                                 diffusivity(teacher, vac, steps=md_steps))
        out[el] = res
    return out
