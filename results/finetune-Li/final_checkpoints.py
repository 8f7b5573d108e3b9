"""Test force and energy MAE of every run's final checkpoint: a fixed rule, chosen on nothing, beside the recipe's
val-selected checkpoints (this target's val split is 3 near-equilibrium structures; see report.md, Addendum).

    .venv/bin/python results/finetune-Li/final_checkpoints.py runs/reproduce/finetune-Li ../shared/data/mlearn/Li \
        results/finetune-Li/final_checkpoints.json
"""
import json
import sys
from pathlib import Path
from atomforge.pipeline.train.consolidate import checkpoint_model
from atomforge.pipeline.train.run_dir import RunDir
from atomforge.pipeline.models.predict import predict_structures, check_elements
from atomforge.pipeline.reproduce.zero_shot import read_set, score_set

work, target = Path(sys.argv[1]), Path(sys.argv[2])
structs, _ = read_set({"type": "mlearn", "path": str(target / "test.json")})

class Ck:
    def __init__(self, m, task): self.m, self.task = m, task
    def check_elements(self, numbers): check_elements(self.m, list(numbers))
    def predict(self, s): return predict_structures(self.m, s, device="cpu", task=self.task)

out = {}
for run in sorted((work / "runs").iterdir()):
    last = RunDir(run).complete_checkpoints()[-1]
    m = checkpoint_model(last)
    task = "target" if "target" in (m.tasks or []) else None
    r = score_set(Ck(m, task), structs)
    out[run.name] = {"checkpoint": last.name, "force_mae": r["force_mae"],
                     "energy_mae_mev_atom": 1000 * r["energy_mae_per_atom"]}
    print(run.name, last.name, round(r["force_mae"], 4), round(1000 * r["energy_mae_per_atom"], 2), flush=True)
json.dump(out, open(sys.argv[3], "w"), indent=1)
