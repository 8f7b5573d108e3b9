"""RE force metrics: known answers on the silicon_re Interstitial-RE test set, and RE detection in a trajectory."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from ase.build import bulk

from atomforge.data_prep.sources.silicon_re import SiliconRESource
from atomforge.pipeline.evaluate.rare_events import detect_re_atoms, dft_noise_floor, rare_event_metrics, re_mask
SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"

RE_SET = SHARED_DATA / "silicon_re" / "Interstitial-RE_Testing_Set"


@pytest.fixture(scope="module")
def re_structures():
    src = SiliconRESource(str(RE_SET))
    return [s for t in src.tasks() for s in src.read(t)]


def test_re_atoms_come_from_r_equal_zero(re_structures):
    data = json.loads((RE_SET / "DATA.json").read_text())
    n_expected = int(sum((np.asarray(r) == 0).sum() for r in data["r"]))
    assert n_expected > 0
    assert sum(int(re_mask(s).sum()) for s in re_structures) == n_expected


def test_reference_forces_score_zero(re_structures):
    pairs = [(s, {"forces": s.forces.copy()}) for s in re_structures]
    m, _ = rare_event_metrics(pairs)
    assert m["n_re_atoms"] > 0
    assert m["re_force_rms"] == 0.0 and m["re_force_mae"] == 0.0 and m["all_force_rms"] == 0.0
    assert m["re_theta_p90_deg"] < 1e-4


def test_scaled_forces_score_the_predicted_rms(re_structures):
    pairs = [(s, {"forces": 1.1 * s.forces}) for s in re_structures]
    m, _ = rare_event_metrics(pairs)
    norms = np.concatenate([np.linalg.norm(s.forces, axis=1)[re_mask(s)] for s in re_structures])
    assert m["re_force_rms"] == pytest.approx(0.1 * np.sqrt(np.mean(norms**2)), rel=1e-12)
    assert m["re_force_mae"] == pytest.approx(0.1 * norms.mean(), rel=1e-12)
    assert m["re_theta_median_deg"] < 1e-4  # scaling keeps directions
    all_norms = np.concatenate([np.linalg.norm(s.forces, axis=1) for s in re_structures])
    assert m["all_force_rms"] == pytest.approx(0.1 * np.sqrt(np.mean(all_norms**2)), rel=1e-12)


def test_dft_noise_floor_from_k1_vs_k4(re_structures, capsys):
    data = json.loads((RE_SET / "DATA.json").read_text())
    df = []
    for k1, k4, r in zip(data["Forces"]["DFT_K1"], data["Forces"]["DFT_K4"], data["r"]):
        k1, k4, m = np.asarray(k1), np.asarray(k4), np.asarray(r) == 0
        df.append(np.linalg.norm(k1[m], axis=1) - np.linalg.norm(k4[m], axis=1))
    expected = float(np.sqrt(np.mean(np.concatenate(df) ** 2)))
    floor = dft_noise_floor(re_structures)
    assert floor["coarse"] == "forces_dft_k1"
    assert floor["re_force_rms"] == pytest.approx(expected, rel=1e-12)
    assert 0 < floor["re_force_rms"] < 1.0  # a floor, not a model error
    print(f"DFT noise floor, Interstitial-RE set (K1 vs K4): RE force RMS {floor['re_force_rms']:.4f} eV/Å, "
          f"all atoms {floor['all_force_rms']:.4f} eV/Å, RE angle median {floor['re_theta_median_deg']:.2f} deg")
    assert "DFT noise floor" in capsys.readouterr().out


def test_no_floor_without_coarse_forces(re_structures):
    s = re_structures[0]
    s2 = type(s)(**{**s.__dict__, "atom_fields": {"r": s.atom_fields["r"]}})
    assert dft_noise_floor([s2]) is None


def test_detects_site_changes_and_off_site_atoms():
    a = bulk("Cu", "fcc", cubic=True).repeat(2)
    sites = a.positions.copy()
    del a[0]
    frames = [a.copy() for _ in range(4)]
    j = 1 + int(np.argmin(np.linalg.norm(sites[1:] - sites[0], axis=1)))  # neighbour of the vacancy
    hop = sites[0] - sites[j]
    frames[1].positions[j - 1] += 0.45 * hop  # frame 1: nearly halfway (off-site, still nearest its own site)
    for f in frames[2:]:
        f.positions[j - 1] += hop  # frames 2, 3: on the vacancy site
    masks = detect_re_atoms(frames, sites, window=1)
    assert [m.sum() for m in masks] == [0, 1, 1, 0]
    assert all(m[j - 1] for m in masks[1:3])

