"""The learning-rate scan of a sweep: each size trained at one budget with each lr; its grid runs use the winner."""
from __future__ import annotations

import json
from pathlib import Path

from atomforge.pipeline.sweep.collect import run_row
from atomforge.pipeline.sweep.spec import LR_CHOICE, SweepSpec


def choose_lrs(spec: SweepSpec, plan: dict) -> dict:
    """Pick, per size, the scanned lr with the lowest fit_loss; write <out>/lr_scan.json. A size whose scan runs all
    failed cannot be placed on the grid, and stops the sweep with its name."""
    rows = {r["run"]: r for r in plan["runs"]}
    table, chosen = [], {}
    for run in spec.scan_runs():
        row = run_row(spec.run_dir(run), rows[run.name], plan["data"]["mean_atoms"])
        loss = row.get(spec.fit_loss) if row["status"] == "done" else None
        table.append({"run": run.name, "size": run.size.name, "lr": run.lr, "status": row["status"],
                      spec.fit_loss: loss})
    for size in spec.sizes:
        ok = [t for t in table if t["size"] == size.name and t[spec.fit_loss] is not None]
        if not ok:
            raise RuntimeError(f"lr scan: no scan run of size {size.name} finished; see {Path(spec.out) / 'runs'}")
        best = min(ok, key=lambda t: t[spec.fit_loss])
        chosen[size.name] = best["lr"]
        edge = best["lr"] in (min(spec.lr_scan["lrs"]), max(spec.lr_scan["lrs"]))
        print(f"lr scan: {size.name} -> lr {best['lr']:g} ({spec.fit_loss} {best[spec.fit_loss]:.4g})"
              + (" - at the edge of the scanned range" if edge and len(spec.lr_scan["lrs"]) > 1 else ""), flush=True)
    out = {"budget": float(spec.lr_scan["budget"]), "lrs": [float(x) for x in spec.lr_scan["lrs"]],
           "loss": spec.fit_loss, "chosen": chosen, "scan": table}
    (Path(spec.out) / LR_CHOICE).write_text(json.dumps(out, indent=1))
    return out
