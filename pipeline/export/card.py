"""README.md model card with YAML front matter, as model hubs read it."""
from __future__ import annotations

import yaml
from ase.data import chemical_symbols


def model_card(cfg: dict) -> str:
    els = [chemical_symbols[z] for z in cfg["elements"]]
    metrics = cfg.get("metrics") or {}
    nums = {k: v for k, v in metrics.items() if isinstance(v, (int, float))}
    meta = {"library_name": "atomforge", "license": "mit",
            "tags": ["interatomic-potential", "equivariant", "fairchem", cfg["ladder_name"]] + els,
            "datasets": [str(cfg["dataset"].get("name"))],
            "metrics": sorted(nums)}
    if cfg.get("parent"):
        meta["base_model"] = str(cfg["parent"].get("name"))
    front = "---\n" + yaml.safe_dump(meta, sort_keys=False, allow_unicode=True) + "---\n"
    table = "\n".join(f"| {k} | {v:.6g} |" for k, v in metrics.items() if isinstance(v, (int, float))) or "| (none recorded) | |"
    return front + f"""
# {cfg['name']}

An interatomic potential ({cfg['ladder_name']}, {cfg['architecture']['force_mode']} forces) trained with atomforge.

- Elements: {', '.join(els)}
- Cutoff: {cfg['cutoff']} Å, at most {cfg['max_neighbors']} neighbours
- Units: energy eV, forces eV/Å, stress eV/Å^3 (ASE sign convention)
- Training data: `{cfg['dataset'].get('name')}` (content hash `{str(cfg['dataset'].get('content_hash'))[:16]}`), {cfg['dataset'].get('counts')}
- Training: {cfg['training']['steps']} steps, ZeRO-{cfg['training']['zero_stage']}, {cfg['training']['world_size']} ranks, EMA weights: {cfg['training']['ema']}
- Parent model: {_parent(cfg)}
- Weights: `model.safetensors`, sha256 `{cfg.get('weights_sha256', '')}`

## Metrics

| metric | value |
|---|---|
{table}

## Use

```python
from pipeline.export import calculator
atoms.calc = calculator("path/to/this/folder")
atoms.get_potential_energy(); atoms.get_forces()
```

Through fairchem's calculator (`inference_ckpt.pt`, when exported), checked before it is loaded:

```python
from pipeline.export import fairchem_calculator
atoms.calc = fairchem_calculator("path/to/this/folder", device="cpu")
```

`inference_ckpt.pt` is a pickle (fairchem's format) that fairchem rebuilds by instantiating the classes it names.
`fairchem_calculator` verifies its sha256 against `config.json`, reads it with torch's weights-only unpickler
and accepts only the classes an atomforge export writes. Load it with fairchem's own `load_predict_unit` only
when it comes from a source you trust.

## Intended use and limits

For atomistic simulation of systems made of the elements above, close to the configurations in the
training data. Predictions for other elements are refused. Outside the training distribution
(other phases, high pressure, molecules, surfaces it never saw) errors can be large and are not
estimated by the model; check against reference calculations before production use.
"""


def _parent(cfg: dict) -> str:
    p = cfg.get("parent")
    if not p:
        return "none (trained from scratch)"
    return f"fine-tuned from `{p.get('name')}` ({p.get('path')}, weights sha256 `{p.get('weights_sha256')}`)"
