"""The one config path: hydra composes configs/ with the user's overrides, and the stage configs are built from
the result. Used by the CLI, sweeps, reproduce recipes and the demo."""
from __future__ import annotations

import dataclasses
import functools
import types
import typing
from pathlib import Path

from atomforge.pipeline.models.config import ModelConfig
from atomforge.pipeline.train.config import DeepSpeedConfig, TrainConfig

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"
# TrainConfig keys that come from other groups or the top level, not from the train group
_COMPOSED = ("run_dir", "data_root", "model", "deepspeed", "world_size", "seed")


def _schema(cls, drop: tuple = ()) -> type:
    """A structured-config twin of a stage dataclass: the same fields, types and defaults, with `X | None` spelled
    Optional[X] for OmegaConf. Hydra then checks every entry and override of the group against it."""
    hints, out = typing.get_type_hints(cls), []
    for f in dataclasses.fields(cls):
        if f.name in drop:
            continue
        t = hints[f.name]
        if isinstance(t, types.UnionType):
            t = typing.Optional[next(a for a in t.__args__ if a is not type(None))]
        default = (dataclasses.field(default_factory=f.default_factory) if f.default_factory is not dataclasses.MISSING
                   else dataclasses.field(default=f.default))
        out.append((f.name, t, default))
    return dataclasses.make_dataclass(f"{cls.__name__}Schema", out)


@functools.cache  # once per process: every compose() calls it
def register_schemas() -> None:
    """configs/config.yaml lists schemas/<group>@<group> before each group's entry, so the entry is merged onto its
    dataclass's schema: `train.steps=fifty` or `model.stepz=1` fail at composition, naming the key."""
    from hydra.core.config_store import ConfigStore

    cs = ConfigStore.instance()
    cs.store(group="schemas", name="train", node=_schema(TrainConfig, _COMPOSED))
    cs.store(group="schemas", name="model", node=_schema(ModelConfig))
    cs.store(group="schemas", name="deepspeed", node=_schema(DeepSpeedConfig))


def compose(overrides: list[str]):
    from hydra import compose as hcompose, initialize_config_dir

    register_schemas()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base=None):
        return hcompose(config_name="config", overrides=overrides)


def plain(cfg) -> dict:
    from omegaconf import OmegaConf

    return OmegaConf.to_container(cfg, resolve=True)


def assemble_train_config(run_dir, data_root, model: dict, train: dict, deepspeed: dict, world_size: int, seed: int,
                          **extra) -> TrainConfig:
    """The one place a TrainConfig is made from composed pieces (CLI, sweeps, reproduce recipes, demo)."""
    return TrainConfig.from_dict({"run_dir": str(run_dir), "data_root": str(data_root), "model": model,
                                  "deepspeed": deepspeed, "world_size": world_size, "seed": seed, **train, **extra})


def train_config(cfg: dict) -> TrainConfig:
    """The training config of a composed `atomforge train` config (the dataset must be built)."""
    from atomforge.pipeline.data.dataset import BuiltDataset  # webdataset: a second on import, not for `--help`

    root = BuiltDataset.open(cfg["data"]["root"], cfg["data"]["name"]).root
    return assemble_train_config(cfg["run_dir"], root, cfg["model"], cfg["train"], cfg["deepspeed"], cfg["world_size"],
                                 cfg["seed"])

