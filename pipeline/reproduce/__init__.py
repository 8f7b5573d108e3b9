"""`atomforge reproduce <name>`: one command per published-comparison result, written to results/<name>/.

Each result is a small recipe module over the shared runner (build -> train -> select on val -> export -> eval
-> report); its settings live in configs/reproduce/<name>.yaml with a `smoke_settings` overlay."""
from __future__ import annotations

import importlib

RESULTS = {  # CLI name -> (config entry, module)
    "mlearn-si": ("mlearn_si", "pipeline.reproduce.mlearn_si"),
    "silicon-re": ("silicon_re", "pipeline.reproduce.silicon_re"),
    "pretrain-finetune": ("pretrain_finetune", "pipeline.reproduce.pretrain_finetune"),
    "si-vacancy": ("si_vacancy", "pipeline.reproduce.si_vacancy"),
    "zero-shot": ("zero_shot", "pipeline.reproduce.zero_shot"),
    "foundation": ("foundation", "pipeline.reproduce.foundation"),
    "finetune": ("finetune", "pipeline.reproduce.finetune"),
}


def run(name: str, cfg: dict) -> dict:
    return importlib.import_module(RESULTS[name][1]).run(cfg)
