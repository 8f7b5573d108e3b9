"""`atomforge <stage> [action] --help`: what a stage does, the config groups it composes with their entries,
the overrides people change most, and an example. Printing help never composes a config or starts work."""
from __future__ import annotations

from pathlib import Path

# the same folder as atomforge.pipeline.compose.CONFIG_DIR: help must not import hydra
CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"

# stage -> (one-line purpose, groups it reads, common overrides, example); actions are "stage action"
HELP = {
    "data": ("Build a dataset: read -> validate (quarantine with reason) -> dedup -> split -> shards + manifest "
             "+ card.",
             ("data",), ("data=<entry>", "data.root=<out folder>", "data.build.workers=2", "seed=0"),
             "atomforge data build data=mlearn_si"),
    "data build": ("Build (or resume) the dataset named by data=; a rerun redoes only tasks whose inputs changed. "
                   "cluster=slurm runs the tasks as a SLURM job array and the merge as a dependent job.",
                   ("data", "cluster"), ("data.build.workers=2", "data.root=<out folder>", "cluster=slurm"),
                   "atomforge data build data=silicon_re"),
    "train": ("Train a model with DeepSpeed (torchrun; gloo on CPU, NCCL on GPU); resumes from the newest checkpoint.",
              ("model", "data", "deepspeed", "train", "cluster"),
              ("train.steps=1000", "train.lr=1e-3", "world_size=2", "model.force_mode=conservative",
               "train.resume=none", "run_dir=runs/<name>", "cluster=slurm"),
              "atomforge train model=esen_xs data=emt_demo deepspeed=zero2 world_size=2"),
    "eval": ("Score a model (exported folder or run folder) on a split: standard + rare-event metrics, report "
             "and plots.",
             ("data", "eval"), ("eval.model=<folder>", "split=test", "out=<report folder>", "eval.plots=false"),
             "atomforge eval data=emt_demo eval.model=runs/esen_xs-emt_demo/hub"),
    "eval select": ("Rank a run's checkpoints on validation data (force RMSE + RE force error) -> "
                    "best_checkpoint.json.",
                    ("data", "eval"), ("run=<run folder>", "eval.select_split=val", "eval.re_weight=1.0"),
                    "atomforge eval select data=silicon_re run=runs/esen_xs-silicon_re"),
    "export": ("Consolidate a run's checkpoint (any ZeRO stage) into a hub folder: config.json, model.safetensors, "
               "card.",
               (), ("run=<run folder>", "out=<new folder>", "checkpoint=latest|best|<step>", "ema=true",
                    "fairchem=true"),
               "atomforge export run=runs/esen_xs-emt_demo out=hub/my-model"),
    "export push": ("Publish an exported folder to the Hugging Face hub (needs a token and network).", (),
                    ("out=<exported folder>", "repo=<user/name>", "private=false"),
                    "atomforge export push out=hub/my-model repo=user/my-model"),
    "models": ("Print the size ladder: parameters (and FLOPs per atom with flops=true) of every model entry.",
               ("model",), ("flops=true",), "atomforge models"),
    "plan": ("Per-rank memory of a model under each ZeRO stage, before you queue a job.",
             ("model", "deepspeed"), ("world_size=16", "train.max_atoms=512", "gpu_gib=80"),
             "atomforge plan model=esen_l world_size=16 gpu_gib=80"),
    "demo": ("The whole chain on the embedded EMT default: build, train (2 ranks), export, eval, reload check.",
             ("data", "model", "train"), ("train.steps=50", "world_size=1"), "atomforge demo"),
    "sweep": ("Scaling-law sweeps: plan | launch | collect | fit | run (all four) over a ladder of sizes x data.",
              ("sweep", "cluster", "data"), ("sweep=<entry>", "cluster=slurm", "sweep.report_dir=<folder>"),
              "atomforge sweep plan sweep=emt_demo"),
    "sweep plan": ("Print every run of the sweep with its FLOPs and wall-time estimate (writes plan.json).",
                   ("sweep",), ("sweep=<entry>",), "atomforge sweep plan sweep=emt_demo"),
    "sweep launch": ("Run the sweep's runs (hydra multirun; local or a SLURM array), skipping finished ones.",
                     ("sweep", "cluster"), ("sweep=<entry>", "cluster=slurm"), "atomforge sweep launch sweep=emt_demo"),
    "sweep collect": ("Gather finished runs into results.parquet.", ("sweep",), ("sweep=<entry>",),
                      "atomforge sweep collect sweep=emt_demo"),
    "sweep fit": ("Fit L(N, D) with bootstrap intervals, the frontier and plots; check a held-out run.", ("sweep",),
                  ("sweep=<entry>",), "atomforge sweep fit sweep=emt_demo"),
    "sweep run": ("plan + launch + collect + fit in one command.", ("sweep", "cluster"), ("sweep=<entry>",),
                  "atomforge sweep run sweep=emt_demo"),
    "reproduce": ("Run one published comparison end to end and write results/<name>/ (report, metrics, plots, model).",
                  ("reproduce",), ("smoke=true (the recipe's smoke_settings; keys given here win)",
                                    "out=<results folder>", "work=<work folder>",
                                    "target=<mlearn-format folder> (finetune)",
                                    "parent=<exported model folder> (finetune)"),
                  "atomforge reproduce finetune target=../shared/data/mlearn/Mo"),
}
ACTIONS = {"data": ("build",), "eval": ("select",), "export": ("push",),
           "sweep": ("plan", "launch", "collect", "fit", "run")}


def entries(group: str) -> list[str]:
    return sorted(p.stem for p in (CONFIG_DIR / group).glob("*.yaml"))


def stage_help(stage: str, action: str | None = None) -> str:
    key = f"{stage} {action}" if action else stage
    purpose, groups, overrides, example = HELP[key]
    lines = [f"usage: atomforge {key} [group=entry] [key=value ...] [--help] [--cfg job]", "", purpose, ""]
    if groups:
        lines.append("config groups (group=entry):")
        lines += [f"  {g:<10} {', '.join(entries(g)) or '(none)'}" for g in groups]
        lines.append("")
    if not action and ACTIONS.get(stage):
        lines += [f"actions: {', '.join(ACTIONS[stage])}  (atomforge {stage} <action> --help)", ""]
    if overrides:
        lines += ["common overrides:", *[f"  {o}" for o in overrides], ""]
    lines += ["example:", f"  {example}", "",
              "--cfg job prints the composed config and exits; any key of it can be overridden as key=value."]
    return "\n".join(lines)
