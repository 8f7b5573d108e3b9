"""Fine-tuning starts from an exported folder, lowers the error on the new data and records its parent."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from helpers import build_dataset, train

pytestmark = pytest.mark.slow
NEW_EMT = {"type": "emt", "elements": ["Cu", "Al"], "per_kind": {"md": 24, "rattle": 16, "strain": 8}}


@pytest.fixture(scope="module")
def new_data(tmp_path_factory):
    return build_dataset(tmp_path_factory.mktemp("data") / "emt_new", [NEW_EMT], workers=1, seed=7)


def _errors(model, root) -> tuple[float, float]:
    from atomforge.pipeline.data.dataset import read_split
    from atomforge.pipeline.models.predict import predict

    structs = list(read_split(str(root), "train"))
    preds = predict(model, [s.to_atoms() for s in structs])
    e = np.mean([abs(p["energy"] - s.energy) / s.n_atoms for s, p in zip(structs, preds)])
    f = np.mean([np.abs(p["forces"] - s.forces).mean() for s, p in zip(structs, preds)])
    return float(e), float(f)


def test_finetune_lowers_error_and_records_parent(exported, new_data, tmp_path):
    from atomforge.pipeline.export import export, load

    run = train(tmp_path / "ft", new_data, steps=12, lr=3e-3, init_from=str(exported), freeze_backbone_steps=2,
                deepspeed={"stage": 0}, ema_decay=0.5)
    child = export(str(run), str(tmp_path / "child"))
    e0, f0 = _errors(load(exported), new_data)
    e1, f1 = _errors(load(child), new_data)
    print(f"parent: E {e0:.4f} eV/atom F {f0:.4f} eV/A; fine-tuned: E {e1:.4f} F {f1:.4f}")
    assert 5 * e1 + 10 * f1 < 5 * e0 + 10 * f0  # the training objective's weighting
    cfg = json.loads((child / "config.json").read_text())
    parent_cfg = json.loads((exported / "config.json").read_text())
    assert cfg["parent"]["weights_sha256"] == parent_cfg["weights_sha256"]
    assert cfg["parent"]["name"] == exported.name
    card = (child / "README.md").read_text()
    assert f"fine-tuned from `{exported.name}`" in card and f"base_model: {exported.name}" in card
    new_card = json.loads((new_data / "card.json").read_text())
    for z, v in new_card["element_references"].items():  # refitted on the new data
        assert cfg["element_references"][str(z)] == pytest.approx(v)


def test_frozen_backbone_and_fresh_heads(exported, new_data, tmp_path):
    from atomforge.pipeline.export import export

    run = train(tmp_path / "frozen", new_data, steps=2, init_from=str(exported), freeze_backbone_steps=2,
                init_reinit_heads=True, init_refs="parent", deepspeed={"stage": 0}, final_predictions=0)
    child = load_file(str(export(str(run), str(tmp_path / "child"), fairchem=False) / "model.safetensors"))
    parent = load_file(str(exported / "model.safetensors"))
    heads = [k for k in parent if k.startswith("model.output_heads.")]
    backbone = [k for k in parent if k not in heads]
    assert heads and backbone
    for k in backbone:  # learning rate 0 (and no decay) while frozen
        assert torch.equal(child[k], parent[k]), k
    assert any(not torch.equal(child[k], parent[k]) for k in heads)  # re-initialised and trained
