"""`atomforge reproduce <name>`: one command per published-comparison result, written to results/<name>/.

Each result is a small recipe module over the shared runner (build -> train -> select on val -> export -> eval
-> report); its settings live in configs/reproduce/<name>.yaml with a `smoke_settings` overlay."""
from __future__ import annotations

import importlib

RESULTS = {  # CLI name -> (config entry, module)
    "mlearn-si": ("mlearn_si", "atomforge.pipeline.reproduce.mlearn_si"),
    "silicon-re": ("silicon_re", "atomforge.pipeline.reproduce.silicon_re"),
    "pretrain-finetune": ("pretrain_finetune", "atomforge.pipeline.reproduce.pretrain_finetune"),
    "si-vacancy": ("si_vacancy", "atomforge.pipeline.reproduce.si_vacancy"),
    "zero-shot": ("zero_shot", "atomforge.pipeline.reproduce.zero_shot"),
    "foundation": ("foundation", "atomforge.pipeline.reproduce.foundation"),
    "finetune": ("finetune", "atomforge.pipeline.reproduce.finetune"),
}


def run(name: str, cfg: dict) -> dict:
    return importlib.import_module(RESULTS[name][1]).run(cfg)


def out_dir(name: str, cfg: dict) -> str:
    """The folder a result writes, after its recipe's own defaults (finetune: results/finetune-<target name>)."""
    prepare = getattr(importlib.import_module(RESULTS[name][1]), "prepare", None)
    return str((prepare(cfg) if prepare else cfg)["reproduce"]["out"])
