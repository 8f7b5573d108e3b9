"""EMT vacancy migration barriers in 107-atom fcc cells (3x3x3 cubic, one vacancy) computed by the
evaluation code with EMT itself as the model: the ground truth that trained models are compared with.
Writes results/eval-emt/neb_107.json."""
from __future__ import annotations

import json
import platform
import time
from pathlib import Path

from ase.calculators.emt import EMT

from atomforge.pipeline.evaluate.properties import neb_barrier, vacancy_formation_energy

out = {"machine": platform.platform(), "contended": True}
for el in ("Cu", "Al"):
    t = time.time()
    neb = neb_barrier(EMT, el, repeat=3, n_images=5, fmax=0.02, steps=500)
    vf = vacancy_formation_energy(EMT, el, repeat=3)
    out[el] = {"n_atoms": neb["n_atoms"], "vacancy_migration_barrier_eV": round(neb["value"], 4), "converged": neb["converged"],
               "vacancy_formation_energy_eV": round(vf["value"], 4), "seconds": round(time.time() - t, 1)}
print(json.dumps(out))
Path(__file__).with_suffix(".json").write_text(json.dumps(out, indent=1) + "\n")
