"""The one config path: hydra composes configs/ with the user's overrides, and the stage configs are built from
the result. Used by the CLI, sweeps, reproduce recipes and the demo."""
from __future__ import annotations

from pathlib import Path

from data_prep.errors import UsageError
from pipeline.train.config import TrainConfig

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"


def compose(overrides: list[str]):
    from hydra import compose as hcompose, initialize_config_dir

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
    root = Path(cfg["data"]["root"])
    require_dataset(root, cfg["data"]["name"])
    return assemble_train_config(cfg["run_dir"], root, cfg["model"], cfg["train"], cfg["deepspeed"], cfg["world_size"],
                                 cfg["seed"])


def require_dataset(root: Path, name: str) -> None:
    if not root.is_dir():
        raise UsageError(f"no built dataset at {root}: run `atomforge data build data={name}` first")
    if not (root / "manifest.parquet").is_file() or not list((root / "shards").glob("*.tar")):
        raise UsageError(f"{root} has no shards or manifest: it is not a finished build "
                         f"(rerun `atomforge data build data={name}`)")
