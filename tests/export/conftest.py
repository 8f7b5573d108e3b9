"""Trained runs and their exports, shared by the export tests: a 2-rank ZeRO-3 direct-force run and a conservative
one."""
from __future__ import annotations

import pytest

from helpers import train


@pytest.fixture(scope="session")
def zero3_run(emt_dataset, tmp_path_factory):
    """Real 2-rank ZeRO-3 training (gloo); ends with final_predictions.json from the EMA model."""
    return train(tmp_path_factory.mktemp("runs") / "z3", emt_dataset, world_size=2, steps=4,
                 deepspeed={"stage": 3}, ema_decay=0.5)


@pytest.fixture(scope="session")
def exported(zero3_run, tmp_path_factory):
    from atomforge.pipeline.export import export

    return export(str(zero3_run), str(tmp_path_factory.mktemp("hub") / "cuau-xs"))


@pytest.fixture(scope="session")
def conservative(emt_dataset, tmp_path_factory):
    """A 30-step conservative model, exported: relaxations and LAMMPS MD need forces that are -dE/dx."""
    from atomforge.pipeline.export import export

    tmp = tmp_path_factory.mktemp("conservative")
    # a 4 Å cutoff keeps every neighbour (18 in fcc Cu) under max_neighbors=30: the ladder's 6 Å cutoff
    # truncates the 78 neighbours to 30, which makes E(x) jump by ~10 meV as the kept set changes
    model = {"force_mode": "conservative", "backbone": {"cutoff": 4.0}}
    run = train(tmp / "cons", emt_dataset, steps=30, model=model, ckpt_every=30)
    return export(str(run), str(tmp / "hub"))
