"""report.json (every figure with its definition and units) and report.md (tables a person reads)."""
from __future__ import annotations

import json
from pathlib import Path

DEFINITIONS = {
    "energy_mae_per_atom": ("mean over structures of |E_pred - E_ref| / n_atoms", "eV/atom"),
    "energy_rmse_per_atom": ("root mean square over structures of (E_pred - E_ref) / n_atoms", "eV/atom"),
    "force_mae": ("mean over force components of |F_pred - F_ref|", "eV/Å"),
    "force_rmse": ("root mean square over force components of F_pred - F_ref", "eV/Å"),
    "force_cosine": ("mean over atoms of cos(angle(F_pred, F_ref)), atoms with non-zero forces", "1"),
    "stress_mae": ("mean over stress components of |S_pred - S_ref|", "eV/Å^3"),
    "n_structures": ("structures evaluated", "count"),
    "n_force_components": ("force components evaluated", "count"),
}


def write_report(out_dir: str | Path, report: dict, title: str) -> Path:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report = dict(report, definitions={k: {"definition": d, "units": u} for k, (d, u) in DEFINITIONS.items()}
                  | report.get("definitions", {}))
    (out / "report.json").write_text(json.dumps(report, indent=1, sort_keys=True))
    lines = [f"# {title}", ""]
    for section, rows in report.items():
        if section == "definitions" or not isinstance(rows, dict):
            continue
        lines += [f"## {section}", ""]
        lines += _table(rows)
        lines.append("")
    lines += ["## Definitions", "", "| metric | definition | units |", "|---|---|---|"]
    lines += [f"| {k} | {v['definition']} | {v['units']} |" for k, v in report["definitions"].items()]
    (out / "report.md").write_text("\n".join(lines) + "\n")
    return out


def _table(rows: dict) -> list[str]:
    if all(not isinstance(v, dict) for v in rows.values()):
        return ["| metric | value |", "|---|---|"] + [f"| {k} | {_fmt(v)} |" for k, v in rows.items()]
    flat = {k: v for k, v in rows.items() if isinstance(v, dict)}
    if all(all(not isinstance(x, dict) for x in v.values()) for v in flat.values()):
        cols = sorted({c for v in flat.values() for c in v})
        out = ["| slice | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
        return out + [f"| {k} | " + " | ".join(_fmt(v.get(c, "")) for c in cols) + " |" for k, v in flat.items()]
    out = []
    for k, v in flat.items():
        out += [f"### {k}", ""] + _table(v) + [""]
    return out


def _fmt(v) -> str:
    return f"{v:.5g}" if isinstance(v, float) else str(v)
