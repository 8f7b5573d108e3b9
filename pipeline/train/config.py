"""Training config: one dataclass, built from the composed hydra config."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from pipeline.models.config import ModelConfig


@dataclass
class DeepSpeedConfig:
    stage: int = 0
    bf16: bool = False
    offload_optimizer: bool = False
    offload_param: bool = False
    extra: dict = field(default_factory=dict)  # merged last into the DeepSpeed JSON

    def __post_init__(self):
        if self.stage not in (0, 1, 2, 3):
            raise ValueError(f"ZeRO stage must be 0, 1, 2 or 3, got {self.stage}")


@dataclass
class TrainConfig:
    run_dir: str
    data_root: str
    model: ModelConfig = field(default_factory=ModelConfig)
    deepspeed: DeepSpeedConfig = field(default_factory=DeepSpeedConfig)
    world_size: int = 1
    steps: int = 100  # optimizer steps
    grad_accum: int = 1
    max_atoms: int = 256  # per micro-batch per rank
    lr: float = 2e-3
    min_lr_ratio: float = 0.01
    warmup_steps: int = 10
    weight_decay: float = 1e-3
    grad_clip: float = 10.0
    ema_decay: float = 0.99
    seed: int = 0
    energy_coef: float = 5.0
    force_coef: float = 10.0
    stress_coef: float = 1.0
    num_workers: int = 0
    window: int = 4
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
    init_from: str = ""  # an exported model folder to start from (fine-tuning)

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
