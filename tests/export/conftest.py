"""A trained 2-rank ZeRO-3 run and its export, shared by the export tests."""
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
