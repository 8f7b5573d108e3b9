"""`atomforge reproduce zero-shot`: SevenNet-0 and CHGNet 0.3.0, untouched, on the mlearn test sets (Si, Mo, Li,
Cu, Ni) and the silicon_re Interstitial-RE_Testing_Set, scored by the same code as our own models.

Peers were fitted to other DFT settings (Materials Project PBE) than these sets, so their energies carry a
per-atom offset: the energy MAE is given as is and after removing the mean per-atom difference of each set.
"""
from __future__ import annotations

import time

import numpy as np

from atomforge.data_prep.sources import make_source
from atomforge.data_prep.structure import ReadError
from atomforge.data_prep.validate import ValidationConfig, check
from atomforge.pipeline.evaluate.peers import Peer
from atomforge.pipeline.evaluate.rare_events import dft_noise_floor
from atomforge.pipeline.evaluate.run import score_pairs
from atomforge.pipeline.reproduce.runner import Runner, fmt, table

DEFINITIONS = {
    "energy_mae_per_atom": "mean over structures of |E_pred - E_ref| / n_atoms (eV/atom)",
    "energy_mae_per_atom_shifted": "the same after subtracting the set's mean per-atom difference (eV/atom)",
    "energy_shift_per_atom": "mean over structures of (E_pred - E_ref) / n_atoms: the offset removed above (eV/atom)",
    "force_mae": "mean over force components of |F_pred - F_ref| (eV/Å)",
    "force_rmse": "root mean square over force components of F_pred - F_ref (eV/Å)",
    "re_force_rms": "RMS over rare-event atoms (r == 0) of |F_pred| - |F_ref| (eV/Å; Liu, He & Mo 2023)",
}


def read_set(spec: dict, limit: int | None = None) -> tuple[list, int]:
    """The set's structures that pass validation, and how many did not."""
    src, vc, out, bad = make_source(dict(spec)), ValidationConfig(), [], 0
    for task in src.tasks():
        for s in src.read(task):
            if isinstance(s, ReadError) or check(s, vc) is not None:
                bad += 1
                continue
            out.append(s)
            if limit and len(out) >= limit:
                return out, bad
    return out, bad


def score_set(peer: Peer, structures: list) -> dict:
    peer.check_elements(z for s in structures for z in set(s.numbers.tolist()))
    t = time.perf_counter()
    pairs = list(peer.predict(structures))
    seconds = time.perf_counter() - t
    rep, _ = score_pairs(pairs)
    de = np.array([(p["energy"] - s.energy) / s.n_atoms for s, p in pairs])
    row = {"n_structures": len(pairs), "n_atoms": int(sum(s.n_atoms for s in structures)),
           "energy_mae_per_atom": float(np.abs(de).mean()),
           "energy_mae_per_atom_shifted": float(np.abs(de - de.mean()).mean()),
           "energy_shift_per_atom": float(de.mean()),
           "force_mae": rep["all"]["force_mae"], "force_rmse": rep["all"]["force_rmse"],
           "re_force_rms": rep["rare_events"].get("re_force_rms"), "n_re_atoms": rep["rare_events"]["n_re_atoms"],
           "seconds": seconds, "atoms_per_s": sum(s.n_atoms for s in structures) / max(seconds, 1e-9)}
    return row


def run(cfg: dict) -> dict:
    r = Runner(cfg)
    s = r.s
    limit = s.get("max_structures")
    sets = {name: read_set(spec, limit) for name, spec in s["sets"].items()}
    results: dict = {}
    for name in s["peers"]:
        peer = Peer(name, r.device, threads=s.get("threads"))
        results[name] = {"peer": peer.provenance, "sets": {}}
        for set_name, (structures, bad) in sets.items():
            r.log(f"{name} on {set_name}: {len(structures)} structures")
            t = time.perf_counter()
            results[name]["sets"][set_name] = dict(score_set(peer, structures), quarantined=bad)
            r.timings[f"{name} {set_name}"] = time.perf_counter() - t
    floors = {k: dft_noise_floor(v[0]) for k, v in sets.items()}
    checks = _independent(results, s.get("independent") or [])
    metrics = {"peers": results, "dft_noise_floor": {k: v for k, v in floors.items() if v}, "independent_check": checks,
               "definitions": DEFINITIONS}
    r.finish("Zero-shot peers: SevenNet-0 and CHGNet 0.3.0 on the mlearn and silicon_re test sets",
             _body(results, floors, checks, list(sets)), metrics, cfg)
    return metrics


def _independent(results: dict, rows: list) -> list[dict]:
    """Our force MAE beside a quick independent measurement of the same peer on the same set."""
    out = []
    for row in rows:
        ours = results.get(row["peer"], {}).get("sets", {}).get(row["set"], {}).get("force_mae")
        out.append({**row, "ours": ours, "difference": None if ours is None else ours - row["force_mae"]})
    return out


def _body(results: dict, floors: dict, checks: list, set_names: list) -> list[str]:
    lines = ["Each peer is loaded from the weights inside its PyPI wheel and run through its own ASE calculator; "
             "the metrics are pipeline.evaluate's (the same code that scores our exported models). No fitting, "
             "no fine-tuning.", ""]
    header = ["set", "peer", "structures", "atoms", "E MAE (eV/atom)", "E MAE shifted (eV/atom)", "shift (eV/atom)",
              "F MAE (eV/Å)", "F RMSE (eV/Å)", "RE force error (eV/Å)"]
    rows = []
    for set_name in set_names:
        for peer, res in results.items():
            m = res["sets"][set_name]
            rows.append([set_name, peer, m["n_structures"], m["n_atoms"], m["energy_mae_per_atom"],
                         m["energy_mae_per_atom_shifted"], m["energy_shift_per_atom"], m["force_mae"], m["force_rmse"],
                         m["re_force_rms"]])
    lines += table(header, rows) + [""]
    for k, f in floors.items():
        if f:
            lines.append(f"DFT noise floor on {k} ({f['coarse']} vs the reference forces): RE force error "
                         f"{fmt(f.get('re_force_rms'))} eV/Å.")
    if checks:
        lines += ["", "Sanity check against a quick independent measurement of zero-shot force MAE (eV/Å):", ""]
        lines += table(["peer", "set", "independent", "here", "difference"],
                       [[c["peer"], c["set"], c["force_mae"], c["ours"], c["difference"]] for c in checks])
    lines += ["", "Peers:", ""]
    for peer, res in results.items():
        p = res["peer"]
        lines.append(f"- `{peer}`: {p['package']} {p['version']}, weights `{p['weights_file']}` "
                     f"sha256 `{p['weights_sha256']}`")
    lines += ["", "Definitions:", ""] + [f"- `{k}`: {v}" for k, v in DEFINITIONS.items()]
    return lines
