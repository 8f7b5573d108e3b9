"""`atomforge demo`: the whole chain on the embedded EMT default, printing where each artefact lands."""
from __future__ import annotations

import json

import numpy as np

from atomforge.data_prep.build import BuildConfig, build
from atomforge.data_prep.errors import UsageError
from atomforge.pipeline.compose import train_config
from atomforge.pipeline.data.dataset import read_split
from atomforge.pipeline.evaluate.after_training import select_after_training
from atomforge.pipeline.evaluate.run import evaluate
from atomforge.pipeline.export.hub import export, load
from atomforge.pipeline.models.potential import build_model
from atomforge.pipeline.models.predict import predict
from atomforge.pipeline.train.consolidate import consolidated_state_dict
from atomforge.pipeline.train.launch import launch
from atomforge.pipeline.train.run_dir import RunDir


def _step(i: int, text: str):
    print(f"\n=== [{i}/6] {text} ===", flush=True)


def run_demo(cfg: dict) -> dict:
    root = cfg["data"]["root"]
    _step(1, f"build the {cfg['data']['name']} dataset (EMT teacher) -> {root}")
    summary = build(BuildConfig(out=root, seed=cfg["seed"], **cfg["data"]["build"]))
    print(json.dumps({k: summary[k] for k in ("counts", "quarantined")}))

    tc = train_config(cfg)
    _step(2, f"train {tc.model.name} with DeepSpeed ZeRO-{tc.deepspeed.stage} on {tc.world_size} processes "
             f"-> {tc.run_dir}")
    rc = launch(tc)
    if rc != 0:
        raise UsageError(f"demo training failed with exit code {rc}")
    select_after_training(tc)
    run = RunDir(tc.run_dir)
    ranks = json.loads(run.ranks.read_text())
    print(f"ranks: world_size={ranks['world_size']}, optimizer steps per rank={ranks['steps_per_rank']}")

    hub = run.hub
    _step(3, f"export the EMA weights -> {hub}")
    export(tc.run_dir, str(hub))

    _step(4, f"evaluate on the test split -> {run.eval}")
    rep = evaluate(str(hub), root, "test", str(run.eval))
    print(json.dumps(rep["all"], indent=1))

    _step(5, "reload the exported folder and predict; compare with the trained model")
    model = load(hub)
    trained = build_model(tc.model, model.hub_config["element_references"], model.hub_config["energy_scale"])
    trained.load_state_dict(consolidated_state_dict(run.checkpoint("latest")))
    trained.eval()
    structs = [s.to_atoms() for _, s in zip(range(4), read_split(root, "test"))]
    a = predict(model, structs)
    b = predict(trained, structs)
    rel = max(max(abs(x["energy"] - y["energy"]) / max(abs(y["energy"]), 1e-12),
                  float(np.abs(x["forces"] - y["forces"]).max() / max(np.abs(y["forces"]).max(), 1e-12)))
              for x, y in zip(a, b))
    print(f"exported vs trained model: max relative difference {rel:.2e} over {len(structs)} test structures")
    if rel > 1e-6:
        raise UsageError(f"exported model does not reproduce the trained model (relative difference {rel:.2e})")

    _step(6, "artefacts")
    for name, p in [("dataset", root), ("run", tc.run_dir), ("metrics", run.metrics), ("checkpoints", run.checkpoints),
                    ("hub model", hub), ("eval report", run.eval / "report.md")]:
        print(f"  {name:12s} {p}")
    return {"relative_difference": rel, "eval": rep["all"], "ranks": ranks}
