"""README.md model card with YAML front matter, as model hubs read it."""
from __future__ import annotations

from ase.data import chemical_symbols


def model_card(cfg: dict) -> str:
    els = [chemical_symbols[z] for z in cfg["elements"]]
    metrics = cfg.get("metrics") or {}
    mlines = "\n".join(f"  - name: {k}\n    value: {v:.6g}" for k, v in metrics.items() if isinstance(v, (int, float)))
    front = f"""---
library_name: atomforge
license: mit
tags:
  - interatomic-potential
  - equivariant
  - {cfg['ladder_name']}
datasets:
  - {cfg['dataset'].get('name')}
metrics:
{mlines if mlines else '  []'}
---
"""
    table = "\n".join(f"| {k} | {v:.6g} |" for k, v in metrics.items() if isinstance(v, (int, float))) or "| (none recorded) | |"
    return front + f"""
# {cfg['name']}

An interatomic potential ({cfg['ladder_name']}, {cfg['architecture']['force_mode']} forces) trained with atomforge.

- Elements: {', '.join(els)}
- Cutoff: {cfg['cutoff']} Å, at most {cfg['max_neighbors']} neighbours
- Units: energy eV, forces eV/Å, stress eV/Å^3 (ASE sign convention)
- Training data: `{cfg['dataset'].get('name')}` (content hash `{str(cfg['dataset'].get('content_hash'))[:16]}`), {cfg['dataset'].get('counts')}
- Training: {cfg['training']['steps']} steps, ZeRO-{cfg['training']['zero_stage']}, {cfg['training']['world_size']} ranks, EMA weights: {cfg['training']['ema']}
- Parent model: {cfg['parent']['name'] if cfg.get('parent') else 'none (trained from scratch)'}

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

## Intended use and limits

For atomistic simulation of systems made of the elements above, close to the configurations in the
training data. Predictions for other elements are refused. Outside the training distribution
(other phases, high pressure, molecules, surfaces it never saw) errors can be large and are not
estimated by the model; check against reference calculations before production use.
"""
