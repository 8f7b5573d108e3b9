"""README.md model card, built with huggingface_hub's ModelCard: hub metadata (tags, datasets, licence and a
`model-index` of evaluation results with units), then what the model is, how to load it, what it is for
and where it fails, the training data with its licences, and what to cite."""
from __future__ import annotations

from ase.data import chemical_symbols
from huggingface_hub import EvalResult, ModelCard, ModelCardData

# data sources: (what they are, licence, BibTeX); generated data is ours (MIT), teachers keep their own terms
SOURCES = {
    "mlearn": ("mlearn DFT-PBE sets (Zuo et al. 2020)", "BSD-3-Clause",
               "@article{zuo2020mlearn, title={Performance and Cost Assessment of Machine Learning Interatomic "
               "Potentials}, author={Zuo, Yunxing and others}, journal={J. Phys. Chem. A}, volume={124}, pages={731}, "
               "year={2020}}"),
    "silicon_re": ("silicon rare-event sets (Liu, He & Mo 2023)", "as published with the paper's data repository",
                   "@article{liu2023discrepancies, title={Discrepancies and error evaluation metrics for machine "
                   "learning interatomic potentials}, author={Liu, Yunsheng and He, Xingfeng and Mo, Yifei}, "
                   "journal={npj Comput. Mater.}, volume={9}, pages={174}, year={2023}}"),
    "emt": ("structures generated here, labelled by ASE's EMT", "MIT (generated)",
            "@article{jacobsen1996emt, title={A semi-empirical effective medium theory for metals and alloys}, "
            "author={Jacobsen, K. W. and Stoltze, P. and N{\\o}rskov, J. K.}, journal={Surf. Sci.}, volume={366}, "
            "pages={394}, year={1996}}"),
    "teacher": ("structures generated here, labelled by a universal potential (see the dataset card)",
                "MIT (generated); the teacher's own licence applies to its predictions", None),
}
ESEN = ("@article{fu2025esen, title={Learning Smooth and Expressive Interatomic Potentials for Physical Property "
        "Prediction}, author={Fu, Xiang and others}, journal={arXiv:2502.12147}, year={2025}}")
UNITS = {"energy": "eV/atom", "force": "eV/Å", "stress": "eV/Å^3", "theta": "degrees", "angle": "degrees"}


def metric_units(name: str) -> str:
    if "mev" in name:
        return "meV/atom"
    return next((u for k, u in UNITS.items() if k in name), "")


def _eval_results(cfg: dict, metrics: dict) -> list[EvalResult]:
    where = cfg.get("metrics_dataset") or {}
    data, split = str(where.get("name") or cfg["dataset"].get("name")), str(where.get("split") or "test")
    return [EvalResult(task_type="interatomic-potential", task_name="energy and forces", dataset_type=data,
                       dataset_name=data, dataset_split=split, metric_type=k, metric_name=f"{k} ({metric_units(k)})",
                       metric_value=float(v)) for k, v in sorted(metrics.items())]


def _limits(direct: bool) -> str:
    if direct:
        return ("Forces come from a force head, not as -dE/dx: they are not exactly conservative. Single-point "
                "energies and forces are fine; geometry relaxation and MD can fail to converge or drift in energy "
                "(the calculator warns once). Fine-tune a conservative model (`model.force_mode=conservative`) "
                "for dynamics.")
    return "Forces (and stress, when trained) are -dE/dx by autograd: conservative, suitable for relaxation and MD."


def model_card(cfg: dict) -> str:
    els = [chemical_symbols[z] for z in cfg["elements"]]
    metrics = {k: v for k, v in (cfg.get("metrics") or {}).items() if isinstance(v, (int, float))}
    sources = [s for s in cfg["dataset"].get("sources") or [] if isinstance(s, dict)]
    kinds = sorted({s.get("type", "?") for s in sources}) or ["unknown"]
    data = ModelCardData(library_name="atomforge", license="mit", model_name=cfg["name"],
                         tags=["interatomic-potential", "equivariant", "fairchem", cfg["ladder_name"]] + els,
                         datasets=[str(cfg["dataset"].get("name"))], metrics=sorted(metrics),
                         eval_results=_eval_results(cfg, metrics) or None,
                         base_model=str(cfg["parent"].get("name")) if cfg.get("parent") else None)
    counts = cfg["dataset"].get("counts") or {}
    count_text = ", ".join(f"{n} {split}" for split, n in counts.items()) or "not recorded"
    table = "\n".join(f"| {k} | {v:.6g} | {metric_units(k)} |" for k, v in sorted(metrics.items())) or \
        "| (none recorded: run `atomforge eval` on this folder) | | |"
    data_rows = "\n".join(f"| `{k}` | {SOURCES.get(k, (k, 'see the dataset card', None))[0]} | "
                          f"{SOURCES.get(k, (k, 'see the dataset card', None))[1]} |" for k in kinds)
    cites = "\n\n".join(c for c in [ESEN] + [SOURCES.get(k, (0, 0, None))[2] for k in kinds] if c)
    direct = cfg["architecture"]["force_mode"] == "direct"
    ds, tr = cfg["dataset"], cfg["training"]
    text = f"""---
{data.to_yaml()}
---

# {cfg['name']}

An interatomic potential ({cfg['ladder_name']}, {cfg['architecture']['force_mode']} forces) trained with atomforge.

- Elements: {', '.join(els)}
- Cutoff: {cfg['cutoff']} Å, at most {cfg['max_neighbors']} neighbours
- Units: energy eV, forces eV/Å, stress eV/Å^3 (ASE sign convention)
- Training data: `{ds.get('name')}` (content hash `{str(ds.get('content_hash'))[:16]}`), structures: {count_text}
- Training: {tr['steps']} steps, ZeRO-{tr['zero_stage']}, {tr['world_size']} ranks, EMA weights: {tr['ema']}
- Parent model: {_parent(cfg)}
- Weights: `model.safetensors`, sha256 `{cfg.get('weights_sha256', '')}`

{_recipe(cfg)}## Metrics

| metric | value | units |
|---|---|---|
{table}

## Use

```python
import atomforge
atoms.calc = atomforge.calculator("path/to/this/folder")
atoms.get_potential_energy(); atoms.get_forces()
```

Through fairchem's calculator (`inference_ckpt.pt`, when exported), checked before it is loaded:

```python
atoms.calc = atomforge.fairchem_calculator("path/to/this/folder", device="cpu")
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

{_limits(direct)}

## Training data

| source | what | licence |
|---|---|---|
{data_rows}

## Citation

```bibtex
{cites}
```
"""
    return str(ModelCard(text))


def _recipe(cfg: dict) -> str:
    """How the model was made, when the export recorded it: heads and their data, compute, commit, command."""
    r = cfg.get("recipe")
    if not r:
        return ""
    mix = "\n".join(f"| `{m['task']}` | {m.get('dataset')} | {m.get('structures')} | "
                    f"{', '.join(m.get('sources') or [])} |" for m in r.get("data_mix") or [])
    default = cfg["architecture"].get("default_task") or "-"
    heads = f"`{default}`; other heads: `predict(..., task=...)` / `calculator(..., task=...)`"
    return f"""## How it was made

- Command: `{r.get('command')}` at commit `{r.get('git_commit')}`
- Training compute: {r.get('training_flops', 0):.3g} FLOPs (counted per atom x atoms processed, all stages)
- Stages: {r.get('stages')}
- Default head (calculators, fairchem, LAMMPS): {heads}

| head (task) | dataset | training structures | sources |
|---|---|---|---|
{mix}

"""


def _parent(cfg: dict) -> str:
    p = cfg.get("parent")
    if not p:
        return "none (trained from scratch)"
    if not p.get("name"):  # a training checkpoint, not an exported model: an earlier stage of the same recipe
        return f"continued from the training checkpoint `{p.get('path')}` (an earlier stage of this model's recipe)"
    return f"fine-tuned from `{p.get('name')}` ({p.get('path')}, weights sha256 `{p.get('weights_sha256')}`)"
