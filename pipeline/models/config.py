"""Model config: a ladder size plus head choices; `build(card)` makes the Potential."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from atomforge.pipeline.config_types import check_types


@dataclass
class ModelConfig:
    name: str = "esen_xs"
    force_mode: str = "direct"  # "direct" (a force head) or "conservative" (forces = -dE/dx via autograd)
    stress: bool = False
    activation_checkpointing: bool = False
    backbone: dict = field(default_factory=dict)  # overrides of the ladder entry
    # one energy head per dataset/task when several are mixed: the sample's `dataset` name (the mix entry's
    # `task`) picks its head. Empty: one shared head (every sample's name is accepted).
    tasks: list = field(default_factory=list)
    # with tasks: the head a structure without a task name runs (evaluation, calculators); "" = the first task
    default_task: str = ""
    # with tasks: each task's own element references {task: {Z: eV}} (every dataset has its own energy zero);
    # a task without an entry uses the model's element references
    task_references: dict = field(default_factory=dict)
    # torch.compile the backbone + heads (dynamic shapes, as fairchem's predictor does); a runtime choice, not
    # architecture: exported folders never carry it, and a graph that cannot compile runs eager with a warning
    compile: bool = False
    # torch.compile backend: "inductor" generates kernels (the fast one); "aot_eager" traces the same graphs,
    # forward and backward, without code generation (seconds, for checking a model compiles)
    compile_backend: str = "inductor"

    def __post_init__(self):
        check_types(self, "model.")
        if self.force_mode not in ("direct", "conservative"):
            raise ValueError(f"force_mode must be 'direct' or 'conservative', got {self.force_mode!r}")
        if len(set(self.tasks)) != len(self.tasks):
            raise ValueError(f"model.tasks has repeated names: {self.tasks}")
        if self.default_task and self.default_task not in self.tasks:
            raise ValueError(f"model.default_task={self.default_task!r} is not one of model.tasks {self.tasks}")
        extra = sorted(set(self.task_references) - set(self.tasks))
        if extra:
            raise ValueError(f"model.task_references names tasks {extra} that are not in model.tasks {self.tasks}")

    def to_dict(self) -> dict:
        return asdict(self)
