"""`atomforge eval`: load a model (exported folder or run), score it on a dataset split (standard and
rare-event metrics), optionally run the property tests against the EMT teacher, write report and plots."""
from __future__ import annotations

import json
from pathlib import Path

from ase.calculators.emt import EMT

from atomforge.pipeline.data.dataset import read_split
from atomforge.pipeline.evaluate import plots
from atomforge.pipeline.evaluate.peers import Peer, is_peer
from atomforge.pipeline.evaluate.properties import DEFINITIONS as PROPERTY_DEFINITIONS
from atomforge.pipeline.evaluate.properties import property_suite
from atomforge.pipeline.evaluate.rare_events import DEFINITIONS as RE_DEFINITIONS
from atomforge.pipeline.evaluate.rare_events import REAccumulator, dft_noise_floor, rare_event_metrics, re_mask
from atomforge.pipeline.evaluate.report import write_report
from atomforge.pipeline.evaluate.standard import standard_metrics
from atomforge.pipeline.models.calculator import calculator
from atomforge.pipeline.models.folder import load
from atomforge.pipeline.models.predict import predict_structures
from atomforge.pipeline.train.consolidate import checkpoint_model
from atomforge.pipeline.train.run_dir import RunDir


def load_model(path: str, device: str = "cpu"):
    """An exported folder, a run directory (its latest checkpoint, as its export would hold it), or a peer by name
    (sevennet:7net-0, chgnet:0.3.0)."""
    if is_peer(path):
        return Peer(path, device)
    p = Path(path)
    if (p / "config.json").is_file() and (p / "model.safetensors").is_file():
        return load(p, device)
    if RunDir(p).is_run():
        return checkpoint_model(RunDir(p).checkpoint("latest"), device=device)
    raise FileNotFoundError(f"{path} is neither an exported model folder, a run directory nor a peer "
                            f"(sevennet:<model>, chgnet:<version>)")


def score_pairs(pairs) -> dict:
    """Standard + rare-event figures and the DFT noise floor (where the data carries coarse-mesh forces)."""
    rep = standard_metrics(pairs)
    rep["rare_events"], acc = rare_event_metrics(pairs)
    floor = dft_noise_floor(s for s, _ in pairs)
    if floor is not None:
        rep["dft_noise_floor"] = floor
    return rep, acc


def evaluate(model_path: str, data_root: str, split: str, out_dir: str, device: str = "cpu",
             properties: dict | None = None, make_plots: bool = True) -> dict:
    model = load_model(model_path, device)
    if isinstance(model, Peer):
        structures = list(read_split(data_root, split))
        model.check_elements(z for s in structures for z in set(s.numbers.tolist()))
        pairs = list(model.predict(structures))
    else:
        pairs = list(predict_structures(model, read_split(data_root, split), device=device))
    if not pairs:
        raise ValueError(f"split {split!r} of {data_root} is empty: nothing to evaluate")
    scores, acc = score_pairs(pairs)
    report = {"model": str(model_path), "data": str(data_root), "split": split, **scores}
    if isinstance(model, Peer):
        report["peer"] = model.provenance  # package version and weights checksum of what was measured
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    props = None
    if properties and properties.get("elements"):
        make_calc = model.calculator if isinstance(model, Peer) else (lambda: calculator(model, device))
        props = property_suite(make_calc, EMT, elements=tuple(properties["elements"]),
                               repeat=int(properties.get("repeat", 2)), md_steps=int(properties.get("md_steps", 200)),
                               neb_steps=int(properties.get("neb_steps", 300)),
                               which=tuple(properties.get("which") or PROPERTY_DEFINITIONS))
        # figures in the report; the raw curves (NEB paths, energy traces, RDFs) beside it
        (out / "curves.json").write_text(json.dumps({el: {k: v["curves"] for k, v in r.items()}
                                                     for el, r in props.items()}))
        report["properties"] = {el: {k: {c: v[c] for c in ("model", "reference", "error") if c in v}
                                     for k, v in r.items()}
                                for el, r in props.items()}
    if make_plots:
        floor_acc = None
        if "dft_noise_floor" in report:
            floor_acc = REAccumulator()
            for s, _ in pairs:
                if "forces_dft_k1" in s.atom_fields:
                    floor_acc.add(s.atom_fields["forces_dft_k1"], s.forces, re_mask(s))
        report["plots"] = [p for p in (plots.parity(pairs, out), plots.re_cdf(acc, out, floor_acc),
                                       props and plots.neb_profiles(props, out),
                                       props and plots.energy_drift(props, out)) if p]
    defs = {k: {"definition": d, "units": u} for k, (d, u) in {**RE_DEFINITIONS, **PROPERTY_DEFINITIONS}.items()}
    report["definitions"] = defs
    write_report(out_dir, report, f"Evaluation of {Path(model_path).name} on {Path(data_root).name}/{split}")
    return report
