"""Peers (SevenNet-0, CHGNet 0.3.0) are evaluated like our own models: the same metrics on a built split, and a
one-line refusal when the data holds an element the peer does not know."""
from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import build_dataset

SMALL = {"type": "teacher", "teacher": "emt", "elements": ["Cu", "Al"], "structures_per_task": 3,
         "per_kind": {"bulk": 3, "vacancy": 3, "md": 3}, "md_steps_between": 2}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return build_dataset(tmp_path_factory.mktemp("peers") / "emt_tiny", [SMALL], workers=1,
                         split={"train": 0.34, "val": 0.33, "test": 0.33})


@pytest.mark.parametrize("peer", ["sevennet:7net-0", "chgnet:0.3.0"])
def test_peer_eval_gives_the_standard_and_rare_event_metrics(tiny, tmp_path, peer):
    from ase.io import read  # noqa: F401 - ASE is what the peers' own calculators use

    from atomforge.data_prep.teachers import get_teacher
    from atomforge.pipeline.evaluate.run import evaluate
    from atomforge.pipeline.data.dataset import read_split

    rep = evaluate(peer, str(tiny), "test", str(tmp_path / "eval"), make_plots=False)
    structures = list(read_split(str(tiny), "test"))
    assert structures and rep["all"]["n_structures"] == len(structures)
    calc = get_teacher(peer, threads=1).calc  # an independent pass through the peer's own calculator
    err, de = [], []
    for s in structures:
        a = s.to_atoms()
        a.calc = calc
        err.append(np.abs(a.get_forces() - s.forces).ravel())
        de.append(abs(a.get_potential_energy() - s.energy) / s.n_atoms)
    assert rep["all"]["force_mae"] == pytest.approx(np.concatenate(err).mean(), rel=1e-4)
    assert rep["all"]["energy_mae_per_atom"] == pytest.approx(np.mean(de), rel=1e-4)
    assert rep["all"]["force_mae"] > 0 and "all_force_rms" in rep["rare_events"]
    assert rep["peer"]["weights_sha256"] and rep["peer"]["name"] == peer
    assert json.loads((tmp_path / "eval" / "report.json").read_text())["all"] == rep["all"]


def test_peer_lacking_an_element_is_refused_in_one_line(tmp_path, capsys):
    from atomforge.pipeline.cli import main

    po = {"type": "teacher", "teacher": "ase.calculators.lj:LennardJones",
          "teacher_kwargs": {"sigma": 2.3, "epsilon": 0.1, "rc": 5.0}, "elements": ["Cu", "Po"],
          "structures_per_task": 4, "per_kind": {"bulk": 4, "rattle": 4}}
    root = build_dataset(tmp_path / "po", [po], workers=1)
    rc = main(["eval", "eval.model=sevennet:7net-0", "eval.split=train", f"data.root={root}", "data.name=po",
               f"eval.out={tmp_path / 'e'}"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1
    assert "sevennet:7net-0 has no parameters for Po" in err
