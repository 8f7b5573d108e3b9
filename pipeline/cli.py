"""`atomforge <stage> [hydra overrides]`. Bad input ends in one line naming the problem, exit code 2. Each stage imports
its modules when it runs (they load torch and fairchem), so `--help` and `--cfg job` answer in under a second."""
from __future__ import annotations

import json
import logging
import dataclasses
import difflib
import os
import sys
from pathlib import Path

from atomforge.data_prep.errors import AtomforgeError, UsageError
from atomforge.pipeline.compose import (  # noqa: F401 (the CLI's names)
    CONFIG_DIR, compose, plain as _plain, train_config)

USAGE = """usage: atomforge <stage> [group=entry] [key=value ...]

stages:
  data     build a dataset into shards          atomforge data build data=mlearn_si
  train    train with DeepSpeed                 atomforge train model=esen_xs data=emt_demo deepspeed=zero2 world_size=2
  eval     score a model on a dataset split     atomforge eval data=emt_demo eval.model=runs/esen_xs-emt_demo/hub
           rank a run's checkpoints (RE metric)  atomforge eval select data=silicon_re run=runs/esen_xs-silicon_re
  export   DeepSpeed checkpoint -> hub folder   atomforge export run=runs/esen_xs-emt_demo out=hub/my-model
           publish a folder                     atomforge export push out=hub/my-model repo=user/my-model
  models   print the size ladder                atomforge models [flops=true]
  plan     per-rank memory per ZeRO stage       atomforge plan model=esen_l world_size=16 train.max_atoms=512 gpu_gib=80
  demo     the whole chain on the embedded EMT default, 2 ranks
  sweep    scaling-law sweeps (plan, launch, collect, fit)
  reproduce  a published comparison -> results/<name>/   atomforge reproduce mlearn-si|silicon-re|pretrain-finetune|si-vacancy|zero-shot|foundation|finetune target=<folder>
           the CI-sized chain (minutes)                 atomforge reproduce mlearn-si smoke=true out=/tmp/r work=/tmp/w

Set ATOMFORGE_DEBUG=1 for full tracebacks."""  # noqa: E501 - help text, one line per stage as printed

# bare keys of a stage -> <stage>.<key>
STAGE_KEYS = {"export": ("run", "checkpoint", "out", "ema", "fairchem", "repo", "private"),
              "eval": ("run", "split", "out"), "plan": ("gpu_gib",), "models": ("flops",),
              "reproduce": ("smoke", "out", "work", "target", "parent", "label")}


class Interrupted(AtomforgeError):
    """Ctrl-C during training: the ranks wrote the same checkpoint a SIGTERM makes."""


def stage_data(cfg: dict, args: list[str]) -> None:
    from atomforge.data_prep.build import BuildConfig, build

    if args and args[0] != "build":
        raise UsageError(f"unknown data action {args[0]!r}; expected `atomforge data build`")
    b = cfg["data"]["build"]
    bc = BuildConfig(out=cfg["data"]["root"], seed=cfg["seed"], **b)
    if cfg.get("cluster", {}).get("launcher") == "slurm":  # tasks as a SLURM job array, then the merge job
        from atomforge.pipeline.data.slurm_build import slurm_build

        summary = slurm_build(bc, cfg["cluster"])
    else:
        summary = build(bc)
    print(json.dumps(summary, indent=1))
    print(f"dataset: {cfg['data']['root']} (shards/, manifest.parquet, card.json, quarantine.parquet)")


def stage_train(cfg: dict, args: list[str]) -> None:
    from atomforge.pipeline.evaluate.after_training import select_after_training
    from atomforge.pipeline.train.launch import launch
    from atomforge.pipeline.train.signals import preempted

    tc = train_config(cfg)
    if cfg.get("cluster", {}).get("launcher") == "slurm":
        from atomforge.pipeline.train.submit import submit

        job = submit(tc, cfg["cluster"])
        print(f"submitted SLURM job {job}: {tc.run_dir}/slurm-{job}.out; requeues resume from the newest checkpoint")
        return
    rc = launch(tc)
    mark = preempted(Path(tc.run_dir)) if rc == 75 else None
    if mark and mark.get("signal") == "SIGINT":
        raise Interrupted(f"checkpoint written at step {mark['step']} in {tc.run_dir}/checkpoints; "
                          "rerun the same command to resume")
    if rc == 75:
        raise UsageError(f"preempted: checkpoint written in {tc.run_dir}/checkpoints; rerun the same command to resume")
    if rc != 0:
        raise UsageError(f"training failed (exit code {rc}); see the rank logs above and {tc.run_dir}")
    select_after_training(tc)
    print(f"run: {tc.run_dir} (checkpoints/, metrics.jsonl, wandb/)")


def vet_run(path: str | Path) -> None:
    """A received run with pickled code in its checkpoints is refused here, before torch and fairchem models load."""
    from atomforge.pipeline.train.run_dir import RunDir
    from atomforge.pipeline.train.safe_load import vet

    vet(RunDir(path).checkpoints)  # not a run (an exported folder, a peer's name): nothing to vet


def stage_export(cfg: dict, args: list[str]) -> None:
    e = cfg["export"]
    if not args and Path(e["run"]).is_dir():  # refusals first: they need neither torch models nor fairchem
        from atomforge.pipeline.export.files import check_target

        check_target(Path(e["out"]), Path(e["run"]))
        vet_run(e["run"])
    from atomforge.pipeline.export.hub import export, push

    if args and args[0] == "push":  # atomforge export push out=<folder> repo=<user/name>
        if not e.get("repo"):
            raise UsageError("export push needs repo=<user/name> (and out=<exported folder>)")
        print(f"pushed: {push(e['out'], e['repo'], private=bool(e.get('private')))}")
        return
    if args:
        raise UsageError(f"unknown export action {args[0]!r}; expected `atomforge export` or `atomforge export push`")
    if not Path(e["run"]).is_dir():
        raise UsageError(f"run directory not found: {e['run']}")
    out = export(e["run"], e["out"], checkpoint=str(e["checkpoint"]), ema=bool(e["ema"]),
                 fairchem=bool(e.get("fairchem", True)))
    print(f"exported: {out} (config.json, model.safetensors, "
          f"README.md{', inference_ckpt.pt' if e.get('fairchem', True) else ''})")


def stage_eval(cfg: dict, args: list[str]) -> None:
    ev = cfg["eval"]
    vet_run(ev["run"] if args and args[0] == "select" else ev["model"])
    from atomforge.pipeline.data.dataset import BuiltDataset

    BuiltDataset.open(cfg["data"]["root"], cfg["data"]["name"])
    if args and args[0] == "select":
        from atomforge.pipeline.evaluate.select import select_checkpoints

        if not Path(ev["run"]).is_dir():
            raise UsageError(f"run directory not found: {ev['run']}")
        res = select_checkpoints(ev["run"], cfg["data"]["root"], ev["select_split"], float(ev["re_weight"]),
                                 ev["device"])
        print(Path(res["files"][1]).read_text())
        print(res.get("note") or f"best: {res['best']} -> {ev['run']}/best_checkpoint.json (export checkpoint=best)")
        return
    if args:
        raise UsageError(f"unknown eval action {args[0]!r}; expected `atomforge eval` or `atomforge eval select`")
    from atomforge.pipeline.evaluate.peers import is_peer
    from atomforge.pipeline.evaluate.run import evaluate

    if not is_peer(ev["model"]) and not Path(ev["model"]).exists():
        raise UsageError(f"model not found: {ev['model']} (an exported folder, a run directory, or a peer: "
                         f"sevennet:<model>, chgnet:<version>)")
    exported = (Path(ev["model"]) / "config.json").is_file()
    if exported and not any(o.startswith("eval.out=") for o in cfg.get("_overrides", [])):
        ev["out"] = str(Path(ev["model"]) / "eval")  # a model folder's report travels with it
    rep = evaluate(ev["model"], cfg["data"]["root"], ev["split"], ev["out"], ev["device"], properties=ev["properties"],
                   make_plots=bool(ev["plots"]))
    if exported:
        from atomforge.pipeline.export.hub import attach_metrics

        attach_metrics(ev["model"], rep, cfg["data"]["name"])  # the card shows what was just measured
    print(json.dumps({"all": rep["all"], "rare_events": rep["rare_events"]}, indent=1))
    if "dft_noise_floor" in rep:
        print("DFT noise floor (" + rep["dft_noise_floor"]["coarse"] + " vs reference): "
              + json.dumps(rep["dft_noise_floor"]))
    print(f"report: {ev['out']}/report.md, report.json")


def stage_models(cfg: dict, args: list[str]) -> None:
    from atomforge.pipeline.models.describe import print_ladder

    print_ladder(flops=bool(cfg["models"]["flops"]))


def stage_plan(cfg: dict, args: list[str]) -> None:
    from atomforge.pipeline.train.memory_plan import print_plan

    m, ds = cfg["model"], cfg["deepspeed"]
    print_plan(m["name"], int(cfg["world_size"]), int(cfg["train"]["max_atoms"]), float(cfg["plan"]["gpu_gib"]),
               m["force_mode"], bool(ds["offload_optimizer"]))


def stage_demo(cfg: dict, args: list[str]) -> None:
    from atomforge.pipeline.demo import run_demo

    run_demo(cfg)


def stage_sweep(cfg: dict, args: list[str]) -> None:
    from atomforge.pipeline.sweep.cli import main as sweep_main

    sweep_main(cfg, args)


def stage_reproduce(cfg: dict, args: list[str]) -> None:
    from atomforge.pipeline.reproduce import RESULTS, out_dir, run

    name = cfg["reproduce"]["name"]
    if name not in RESULTS:
        raise UsageError(f"configs/reproduce entry names an unknown result {name!r}; "
                         f"expected one of {', '.join(RESULTS)}")
    run(name, cfg)
    print(f"result: {out_dir(name, cfg)}/report.md, metrics.json")


STAGES = {"data": stage_data, "train": stage_train, "eval": stage_eval, "export": stage_export,
          "models": stage_models, "plan": stage_plan, "demo": stage_demo, "sweep": stage_sweep,
          "reproduce": stage_reproduce}
DEMO_DEFAULTS = ["train=demo", "deepspeed=zero2", "world_size=2"]


def _error(msg: str) -> int:
    print(f"atomforge: error: {msg}", file=sys.stderr)
    return 2


def _flags(stage: str, rest: list[str]) -> tuple[list[str], bool, str | None]:
    """(the arguments without flags, --cfg job given, the help text when --help/-h asked for it)."""
    from atomforge.pipeline.cli_help import ACTIONS, stage_help

    words = [a for a in rest if not a.startswith("-") and "=" not in a]
    out, show_cfg, i = [], False, 0
    while i < len(rest):
        a = rest[i]
        if a in ("-h", "--help"):
            action = words[0] if words and stage in ACTIONS else None
            if action is not None and action not in ACTIONS[stage]:
                raise UsageError(f"unknown {stage} action {action!r}; expected one of {', '.join(ACTIONS[stage])}")
            return out, show_cfg, stage_help(stage, action)
        if a in ("--cfg", "-c") and i + 1 < len(rest) and rest[i + 1] == "job" or a == "--cfg=job":
            show_cfg, i = True, i + (1 if a == "--cfg=job" else 2)
            continue
        if a.startswith("-"):
            raise UsageError(f"unknown flag {a!r}; see `atomforge {stage} --help`")
        out.append(a)
        i += 1
    return out, show_cfg, None


_WANT = (("to Integer", "an integer"), ("to Float", "a number"), ("valid bool", "true or false"),
         ("ListConfig", "a list"), ("DictConfig", "a mapping"), ("to String", "a string"))


def _schema_message(cause) -> str | None:
    """One line for a value or key the typed schemas (pipeline/compose.py) refuse: the key, what it expects."""
    from omegaconf.errors import ConfigAttributeError, ValidationError

    key = getattr(cause, "full_key", None)
    if not key:
        return None
    if isinstance(cause, ValidationError):
        first = str(cause).splitlines()[0]
        want = next((w for pat, w in _WANT if pat in first), None)
        return f"{key}: expected {want}, got {cause.value!r}" if want else f"{key}: {first}"
    obj = getattr(cause, "object_type", None)
    if isinstance(cause, ConfigAttributeError) and dataclasses.is_dataclass(obj):
        names = [f.name for f in dataclasses.fields(obj)]
        group, _, name = key.rpartition(".")
        close = difflib.get_close_matches(name, names, n=1)
        hint = f" (did you mean {group}.{close[0]}?)" if close else ""
        return f"{key}: no such key in {group or 'the config'}{hint}; `atomforge <stage> --cfg job` lists them"
    return None


def _hydra_message(e: Exception) -> str | None:
    """hydra's own error with its hints (the list of valid options), for a bad group entry or override."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    if not isinstance(e, (HydraException, OmegaConfBaseException)):
        return None
    typed = _schema_message(e.__cause__)
    if typed:
        return typed
    text = str(e) + (f"\n{str(e.__cause__).splitlines()[0]}" if e.__cause__ and str(e.__cause__).strip() else "")
    lines = []
    for line in (ln.strip() for ln in text.splitlines()):
        if line.startswith("Config search path"):  # hydra's provider list: nothing a user can act on
            break
        if not line or line.startswith(("full_key", "object_type", "reference_type")):
            continue
        if lines and " " not in line and lines[-1].endswith((":", ",")):  # hydra lists options one per line
            lines[-1] += f" {line},"
        else:
            lines.append(line)
    return "\n  ".join(ln.rstrip(",") for ln in lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    stage, rest = argv[0], argv[1:]
    if stage not in STAGES:
        return _error(f"unknown stage {stage!r}; expected one of {', '.join(STAGES)}")
    try:
        rest, show_cfg, help_text = _flags(stage, rest)
    except UsageError as e:
        return _error(str(e))
    if help_text:
        print(help_text)
        return 0
    args = [a for a in rest if "=" not in a]
    overrides = [a for a in rest if "=" in a]
    overrides = [f"{stage}.{o}" if o.split("=", 1)[0] in STAGE_KEYS.get(stage, ()) else o for o in overrides]
    if stage == "reproduce":
        from atomforge.pipeline.reproduce import RESULTS

        if len(args) != 1 or args[0] not in RESULTS:
            got = f"{args[0]!r}" if args else "nothing"
            print(f"atomforge: error: reproduce needs one result name, got {got}; expected one of {', '.join(RESULTS)}",
                  file=sys.stderr)
            return 2
        overrides = [f"reproduce={RESULTS[args[0]][0]}"] + [o for o in overrides if not o.startswith("reproduce=")]
    if stage == "demo":
        given = {o.split("=", 1)[0] for o in overrides}
        overrides = [d for d in DEMO_DEFAULTS if d.split("=", 1)[0] not in given] + overrides
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        composed = compose(overrides)
        if show_cfg:
            from omegaconf import OmegaConf

            print(OmegaConf.to_yaml(composed, resolve=False))
            return 0
        cfg = _plain(composed)
        cfg["_overrides"] = overrides  # which values the user gave (a stage's defaults may depend on it)
        STAGES[stage](cfg, rest if stage == "sweep" else args)  # sweep jobs are relaunched with the same overrides
        return 0
    except (KeyboardInterrupt, Interrupted) as e:
        print(f"atomforge: interrupted{': ' + str(e) if str(e) else ''}", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - the CLI's contract: one line, not a traceback wall
        if os.environ.get("ATOMFORGE_DEBUG"):
            raise
        msg = _hydra_message(e) or (str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__)
        return _error(msg)


if __name__ == "__main__":
    sys.exit(main())
