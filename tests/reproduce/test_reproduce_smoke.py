"""The smoke variant of every `atomforge reproduce` result: the whole chain (build, train, select on val,
export, evaluate, report) on tiny data, into a tmp folder. Checks the chain, not the numbers."""
from __future__ import annotations

import json
import math
import time

import pytest

from atomforge.pipeline.cli import main


PUBLISHED_ROWS = {
    "mlearn-si": ["| GAP | 2.91 | 0.07 |", "| MTP | 2.21 | 0.06 |", "| ALIGNN-FF | — | 0.069 |",
                  "| NequIP | — | 0.09 |", "Zuo et al., J. Phys. Chem. A 124, 731 (2020)"],
    "silicon-re": ["MTP (interstitial-enhanced training) | ~0.18", "GAP (best) | ~0.23",
                   "DFT K1 vs K4 (noise floor) | ~0.25", "npj Comput. Mater. 9, 174 (2023)",
                   "DFT K1 vs K4, computed from this test data"],
    "pretrain-finetune": ["GAP 2.91 meV/atom, 0.07 eV/Å", "MTP 2.21 meV/atom, 0.06 eV/Å"],
    "si-vacancy": ["| vacancy migration barrier | 0.4 | DFT (SIESTA, LDA)", "Phys. Rev. B 70, 205202 (2004)",
                   "| vacancy formation energy | 3.67 |", "## Verdict"],
}
PLOTS = {"mlearn-si": ["test_eval/parity.png"], "silicon-re": ["re_force_error.png", "test_eval/re_error_cdf.png"],
         "pretrain-finetune": ["force_mae_vs_data.png"], "si-vacancy": ["neb_si_vacancy.png"]}


def _numbers(x):
    if isinstance(x, dict):
        for v in x.values():
            yield from _numbers(v)
    elif isinstance(x, list):
        for v in x:
            yield from _numbers(v)
    elif isinstance(x, (int, float)) and not isinstance(x, bool):
        yield x


def _headline(name: str, m: dict) -> list[float]:
    if name == "mlearn-si":
        return [m["this_work"]["force_mae"], m["this_work"]["energy_mae_mev_atom"]]
    if name == "silicon-re":
        return [m["this_work"]["re_force_rms"], m["this_work"]["force_rmse"], m["dft_noise_floor"]["re_force_rms"]]
    if name == "si-vacancy":
        return [v for role in m["models"].values() for v in (role["standard_force_rmse"], role["re_force_rms"])]
    return [row["force_mae"] for curve in m["curves"].values() for row in curve.values()]


@pytest.fixture(scope="module")
def smoke_runs(tmp_path_factory):
    """Each recipe's smoke run once per module: si-vacancy reuses the silicon-re model instead of retraining it."""
    root, done = tmp_path_factory.mktemp("reproduce"), {}

    def run(name: str, *extra: str):
        if name not in done:
            out, work = root / "results" / name, root / "work" / name
            t = time.perf_counter()
            rc = main(["reproduce", name, "smoke=true", f"out={out}", f"work={work}", *extra])
            print(f"{name} smoke: {time.perf_counter() - t:.1f} s")
            done[name] = (rc, out, work)
        return done[name]

    return run


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mlearn-si", "silicon-re", "pretrain-finetune", "si-vacancy"])
def test_reproduce_smoke(name, smoke_runs, capsys):
    extra = []
    if name == "si-vacancy":  # enhanced: the silicon-re smoke model; plain: trained here by the mlearn-si recipe
        _, _, re_work = smoke_runs("silicon-re")
        extra = [f"reproduce.smoke_settings.models.enhanced.hub={re_work / 'runs' / 'silicon_re' / 'hub'}"]
    rc, out, work = smoke_runs(name, *extra)
    assert rc == 0, capsys.readouterr().err
    report = (out / "report.md").read_text()
    m = json.loads((out / "metrics.json").read_text())
    assert m["result"] == name and m["variant"] == "smoke"
    head = _headline(name, m)
    assert head and all(isinstance(v, float) and math.isfinite(v) and v >= 0 for v in head), head
    assert all(math.isfinite(v) for v in _numbers(m))
    for row in PUBLISHED_ROWS[name]:
        assert row in report, row
    for section in ("## Provenance", "git_commit", "device", "## Exact config", "```yaml"):
        assert section in report
    assert (out / "config.yaml").is_file()
    for png in PLOTS[name]:
        assert (out / png).stat().st_size > 1000, png
    if name != "si-vacancy":  # each training recipe ships its final exported model beside the report
        cfg = json.loads((out / "model" / "config.json").read_text())
        assert (out / "model" / "model.safetensors").stat().st_size > 1000 and cfg["architecture"]["name"]


def test_reproduce_needs_a_known_name(capsys):
    assert main(["reproduce", "mlearn"]) == 2
    assert "expected one of mlearn-si, silicon-re, pretrain-finetune, si-vacancy" in capsys.readouterr().err
    assert main(["reproduce"]) == 2
