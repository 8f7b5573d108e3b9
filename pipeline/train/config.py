"""Training config: one dataclass, built from the composed hydra config."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from atomforge.pipeline.config_types import check_types
from atomforge.pipeline.models.config import ModelConfig


@dataclass
class DeepSpeedConfig:
    stage: int = 0
    bf16: bool = False
    offload_optimizer: bool = False
    offload_param: bool = False
    extra: dict = field(default_factory=dict)  # merged last into the DeepSpeed JSON

    def __post_init__(self):
        check_types(self, "deepspeed.")
        if self.stage not in (0, 1, 2, 3):
            raise ValueError(f"ZeRO stage must be 0, 1, 2 or 3, got {self.stage}")
        if self.offload_param and self.stage != 3:
            raise ValueError(f"offload_param needs ZeRO stage 3 (got stage {self.stage}); use deepspeed=zero3_offload "
                             "or offload_optimizer alone")


def check_supported(tc: "TrainConfig"):
    """Refuse, before any process starts, the combinations that are known not to train.

    Tested matrix (2 ranks, gloo): direct forces under ZeRO 0/1/2/3; conservative forces under ZeRO 0/1/2.
    Conservative forces take a gradient inside forward (forces = -dE/dx); ZeRO-3's parameter hooks gather
    and release parameters around each module's backward and break on that inner backward pass.
    """
    if tc.model.force_mode == "conservative" and tc.deepspeed.stage == 3:
        raise ValueError("conservative forces are not supported under ZeRO-3 (its parameter hooks break on the "
                         "gradient taken inside forward); use deepspeed=zero2 with model.force_mode=conservative, or "
                         "model.force_mode=direct under ZeRO-3 and fine-tune conservatively under zero2")


@dataclass
class TrainConfig:
    run_dir: str
    data_root: str
    model: ModelConfig = field(default_factory=ModelConfig)
    deepspeed: DeepSpeedConfig = field(default_factory=DeepSpeedConfig)
    world_size: int = 1
    steps: int = 200  # optimizer steps (configs/train/default.yaml holds the same defaults; a test keeps them equal)
    grad_accum: int = 1
    max_atoms: int = 256  # per micro-batch per rank
    lr: float = 2e-3
    min_lr_ratio: float = 0.01
    warmup_steps: int = 10
    weight_decay: float = 1e-3
    grad_clip: float = 10.0
    ema_decay: float = 0.99
    ema_warmup: bool = True  # decay min(ema_decay, (1 + t) / (10 + t)) at step t (pipeline/train/ema.py)
    seed: int = 0
    energy_coef: float = 5.0
    force_coef: float = 10.0
    stress_coef: float = 1.0
    num_workers: int = 0
    window: int = 4
    on_error: str = "raise"  # a corrupt sample or shard: "raise" (one line naming shard and key) | "skip" (drop, count)
    val_split: str = "val"
    eval_every: int = 0  # 0: only at the end
    ckpt_every: int = 50
    keep_last: int = 3
    resume: str = "auto"  # auto | none | <checkpoint dir>
    log_every: int = 1
    wandb: bool = True
    wandb_project: str = "atomforge"
    progress: bool = True
    stop_after: int = 0  # >0: stop (as if preempted) after this step, checkpoint written
    dist_timeout_s: int = 600  # a collective waiting longer than this on a lost rank fails the job
    max_bad_losses: int = 5  # NaN/inf losses in a row that stop the run (each one is skipped and counted)
    init_from: str = ""  # an exported model folder (fine-tuning) or a checkpoint directory (two-stage recipe)
    init_reinit_heads: bool = False  # fine-tuning: keep the parent's backbone, fresh output heads
    init_refs: str = "refit"  # fine-tuning: "refit" (the new data's element references) | "parent"
    freeze_backbone_steps: int = 0  # fine-tuning: the backbone's learning rate is 0 for the first N steps
    # fine-tuning a parent with per-task heads: the new data's task (its own head and references; default: the
    # dataset's name) and the parent task whose head it starts from (default: the parent's default head)
    init_task: str = ""
    init_task_from: str = ""
    mix: list | None = None  # several built datasets: [{root, weight}], drawn as UMA mixes its datasets
    mix_temperature: float = 1.0  # share_i ~ weight_i^(1/T)
    re_upweight: float = 1.0  # structures flagged rare_event are drawn this many times per epoch
    select_best: bool = False  # finally, rank checkpoints on val by force RMSE + RE force error (best_checkpoint.json)
    profile: bool = False  # per-step seconds in loader/forward/backward/optimizer/communication (metrics.jsonl time_*)
    final_predictions: int = 4  # val structures whose EMA-model predictions go to final_predictions.json (0: none)

    def __post_init__(self):
        check_types(self, "train.", {k: k for k in ("run_dir", "data_root", "world_size", "seed")})
        check_supported(self)
        if self.on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', got {self.on_error!r}")
        if self.grad_accum < 1:
            raise ValueError(f"grad_accum must be >= 1, got {self.grad_accum}")
        if self.init_refs not in ("refit", "parent"):
            raise ValueError(f"init_refs must be 'refit' or 'parent', got {self.init_refs!r}")
        if (self.init_reinit_heads or self.freeze_backbone_steps or self.init_refs != "refit" or self.init_task
                or self.init_task_from) and not self.init_from:
            raise ValueError("init_reinit_heads, init_refs, init_task(_from) and freeze_backbone_steps need "
                             "init_from=<exported model folder>")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        d = dict(d)
        d["model"] = ModelConfig(**d.get("model", {}))
        d["deepspeed"] = DeepSpeedConfig(**d.get("deepspeed", {}))
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown train config keys: {sorted(unknown)}")
        return cls(**d)
