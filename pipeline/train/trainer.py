"""The training loop around a DeepSpeed engine. One process per rank; `launch.py` starts them."""
from __future__ import annotations

import json
import os
import random
import socket
import time
from datetime import timedelta
from functools import partial
from pathlib import Path

import numpy as np
import psutil
import torch
import torch.distributed as dist
from tqdm import tqdm

from atomforge.pipeline.data.dataset import BuiltDataset
from atomforge.pipeline.data.loader import LoaderConfig, make_loader
from atomforge.pipeline.models.potential import build_model
from atomforge.pipeline.models.transfer import load_checkpoint_weights
from atomforge.pipeline.train import checkpoint as ckpt
from atomforge.pipeline.train.config import TrainConfig
from atomforge.pipeline.train.data_mix import train_mix, with_task_references
from atomforge.pipeline.train.finetune_init import build_from_parent, hold_backbone, param_groups
from atomforge.pipeline.train.losses import counts, loss_terms
from atomforge.pipeline.train.run_dir import RunDir
from atomforge.pipeline.train.schedule import warmup_cosine


def device() -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return torch.device("cpu")


def deepspeed_json(tc: TrainConfig) -> dict:
    ds = tc.deepspeed
    on_gpu = torch.cuda.is_available()
    zero: dict = {"stage": ds.stage}
    if ds.offload_optimizer:
        zero["offload_optimizer"] = {"device": "cpu"}
    if ds.offload_param:
        zero["offload_param"] = {"device": "cpu"}
    cfg = {
        "train_micro_batch_size_per_gpu": 1,  # one packed batch (max_atoms) per micro-step
        "gradient_accumulation_steps": tc.grad_accum,
        "gradient_clipping": tc.grad_clip,
        "zero_optimization": zero,
        # bf16 as autocast over fp32 weights: fairchem's equivariant norms run in fp32 with autocast off and
        # cannot take bf16 weights, and geometry (graph, edge vectors, force gradients) stays fp32.
        "torch_autocast": {"enabled": ds.bf16, "dtype": "bfloat16"},
        "optimizer": {"type": "AdamW",
                      "params": {"lr": tc.lr, "weight_decay": tc.weight_decay, "torch_adam": not on_gpu}},
        "steps_per_print": 1 << 30,
        "wall_clock_breakdown": False,
    }
    cfg.update(ds.extra)
    return cfg


def init_distributed(tc: TrainConfig):
    if not torch.cuda.is_available():
        os.environ.setdefault("DS_ACCELERATOR", "cpu")
    import deepspeed

    for k, v in {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "MASTER_ADDR": "127.0.0.1"}.items():
        os.environ.setdefault(k, v)
    if "MASTER_PORT" not in os.environ:
        os.environ["MASTER_PORT"] = str(_free_port())
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    deepspeed.init_distributed(dist_backend=backend, timeout=timedelta(seconds=tc.dist_timeout_s))
    if torch.cuda.is_available():
        torch.cuda.set_device(device())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _grad_norm(module: torch.nn.Module) -> float:
    sq = [p.grad.detach().float().pow(2).sum() for p in module.parameters() if p.grad is not None]
    return float(torch.stack(sq).sum().sqrt()) if sq else 0.0


def seed_all(seed: int):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class BatchStream:
    """Endless stream of planned batches over epochs; its position is part of the checkpoint."""

    def __init__(self, cfg: LoaderConfig, rank: int, world: int, epoch: int = 0, position: int = 0, skipped: int = 0):
        self.cfg, self.rank, self.world = cfg, rank, world
        self.epoch, self.position = epoch, position
        self._it, self._skipped_before = None, skipped  # corrupt samples dropped in earlier epochs and before a resume

    @property
    def skipped(self) -> int:  # corrupt samples this rank's loaders dropped (on_error=skip), over the whole run
        return self._skipped_before + (self._loader.dataset.skipped if self._it is not None else 0)

    def _open(self):
        if self._it is not None:
            self._skipped_before += self._loader.dataset.skipped
        self._loader = make_loader(self.cfg, self.rank, self.world, self.epoch, self.position)
        self.epoch_len = len(self._loader.dataset.plan)
        self._it = iter(self._loader)

    def __next__(self):
        if self._it is None:
            self._open()
        try:
            batch = next(self._it)
        except StopIteration:
            self.epoch, self.position = self.epoch + 1, 0
            self._open()
            batch = next(self._it)
        self.position += 1
        return batch

    def state(self) -> dict:
        return {"epoch": self.epoch, "position": self.position}


class Trainer:
    """The loop, the step, validation and the checkpoint state; everything else is a callback
    (atomforge.pipeline.train.callbacks: `default_callbacks(tc)` is a training run's set)."""

    def __init__(self, tc: TrainConfig, callbacks=()):
        self.tc, self.callbacks = tc, list(callbacks)
        self.run_dir, self.layout = Path(tc.run_dir), RunDir(tc.run_dir)
        self.rank, self.world = dist.get_rank(), dist.get_world_size()
        self.dev = device()
        self.ema = None  # the EMA weights checkpoints hold, made by EMACallback
        self.stop = False  # set by a callback (preemption): training ends after this step
        self.saved_step = None  # the step of the last checkpoint this trainer wrote
        self.card = BuiltDataset(tc.data_root).card
        seed_all(tc.seed)
        self.model = self._build_model()
        if tc.model.compile:
            self.model.compile_network(training=True, zero_stage=tc.deepspeed.stage, backend=tc.model.compile_backend)
        self.scale = self.model.energy_scale
        import deepspeed

        params = [p for p in self.model.parameters() if p.requires_grad]
        if tc.freeze_backbone_steps:
            params = param_groups(self.model)
        sched = partial(warmup_cosine, total=tc.steps, warmup=tc.warmup_steps, min_ratio=tc.min_lr_ratio)
        self.engine, _, _, self.sched = deepspeed.initialize(model=self.model, model_parameters=params,
                                                             config=deepspeed_json(tc), lr_scheduler=sched)
        self.ckpt_root = self.layout.checkpoints
        self.step = 0
        mix, epoch_size = train_mix(tc.data_root, tc.mix, tc.mix_temperature, tc.re_upweight)
        lcfg = LoaderConfig(root=tc.data_root, split="train", max_atoms=tc.max_atoms, seed=tc.seed,
                            num_workers=tc.num_workers, window=tc.window, mix=mix, temperature=tc.mix_temperature,
                            epoch_size=epoch_size, on_error=tc.on_error)
        self.stream = BatchStream(lcfg, self.rank, self.world)
        self._emit("on_attach")
        if self.ema is None and tc.resume != "none":  # else every checkpoint would fail to load, and be skipped
            raise ValueError("resuming needs the EMA weights checkpoints hold: add EMACallback (default_callbacks)")
        state = None if tc.resume == "none" else ckpt.load_newest(self.engine, self.ckpt_root, self.ema,
                                                                   None if tc.resume == "auto" else tc.resume)
        if state is not None:
            self.load_state_dict(state)

    def _emit(self, hook: str, *args):
        for cb in self.callbacks:
            getattr(cb, hook)(self, *args)

    def _build_model(self):
        tc = self.tc
        if tc.init_from and not (Path(tc.init_from) / "ema.pt").is_file():  # an exported folder (fine-tuning)
            return build_from_parent(tc, self.card).to(self.dev)
        tc.model = with_task_references(tc.model, tc.data_root, tc.mix)  # recorded in checkpoints, so exports keep it
        model = build_model(tc.model, self.card["element_references"], self.card.get("force_rms") or 1.0)
        if tc.init_from:  # a training checkpoint (two-stage recipe: direct, then conservative forces)
            load_checkpoint_weights(model, tc.init_from)
        return model.to(self.dev)

    def batch_to(self, batch):
        return batch.to(self.dev)

    def _on_loss(self, loss):
        for cb in self.callbacks:
            loss = cb.on_loss(self, loss)
            if loss is None:
                return None
        return loss

    def train_step(self) -> dict:
        """One optimizer step over grad_accum micro-batches; the loss is normalised by the whole step's counts."""
        tc = self.tc
        self._emit("on_step_start")
        batches = [self.batch_to(next(self.stream)) for _ in range(tc.grad_accum)]
        self._emit("on_section", "loader")
        step_counts = sum(counts(b) for b in batches)
        totals: dict[str, float] = {}
        grad_norm, samples = None, 0
        queue = list(batches)
        while queue:
            batch = queue.pop(0)
            pred = self.engine(batch)
            terms = loss_terms(pred, batch, self.model.reference_energy(batch), self.scale, step_counts)
            loss = self._on_loss(tc.energy_coef * terms["energy"] + tc.force_coef * terms["forces"]
                                 + tc.stress_coef * terms.get("stress", 0.0))
            if loss is None:  # skipped on every rank; a fresh batch takes its place
                queue.append(self.batch_to(next(self.stream)))  # (normalised by the step's original counts)
                self._emit("on_section", "loader")
                continue
            self._emit("on_section", "forward")
            samples += int(len(batch["natoms"]))
            self.engine.backward(loss, scale_wrt_gas=False)  # already a share of the step's mean
            self._emit("on_section", "backward")
            if self.engine.is_gradient_accumulation_boundary() and tc.deepspeed.stage == 0 and not tc.deepspeed.bf16:
                grad_norm = _grad_norm(self.engine.module)  # DeepSpeed reports none without ZeRO
            if self.step < tc.freeze_backbone_steps:
                hold_backbone(self.engine.optimizer)
            self.engine.step()
            self._emit("on_section", "optimizer")
            for k, v in terms.items():
                totals[k] = totals.get(k, 0.0) + float(v.detach())
            totals["loss"] = totals.get("loss", 0.0) + float(loss.detach())
        if grad_norm is None:
            grad_norm = self.engine.get_global_grad_norm()
        totals["grad_norm"] = float(grad_norm) if grad_norm is not None else float("nan")
        self._emit("on_optim_step", totals)
        self.step += 1
        totals["atoms"], totals["samples"] = int(sum(int(b["natoms"].sum()) for b in batches)), samples
        return totals

    @torch.no_grad()
    def validate(self) -> dict:
        tc = self.tc
        try:
            loader = make_loader(LoaderConfig(root=tc.data_root, split=tc.val_split, max_atoms=tc.max_atoms,
                                              shuffle=False, seed=tc.seed, on_error=tc.on_error), self.rank, self.world)
        except (FileNotFoundError, ValueError):
            return {}
        self.engine.eval()
        sums = torch.zeros(4, dtype=torch.float64)  # |dE|/atom sum, structures, |dF| component sum, components
        for batch in loader:
            batch = self.batch_to(batch)
            pred = self.engine(batch)
            e = ((pred["energy"] - batch["energy"].double()) / batch["natoms"]).abs()
            f = (pred["forces"] - batch["forces"]).abs()
            ok = torch.isfinite(f)
            sums += torch.tensor([e.sum().item(), len(e), f[ok].sum().item(), ok.sum().item()], dtype=torch.float64)
        self.engine.train()
        dist.all_reduce(sums)
        return {"val_energy_mae_per_atom": sums[0].item() / max(sums[1].item(), 1),
                "val_force_mae": sums[2].item() / max(sums[3].item(), 1)}

    def state_dict(self) -> dict:
        """The checkpoint's JSON trainer state, callbacks' entries included (collective: every rank calls it)."""
        skipped = torch.tensor([self.stream.skipped], dtype=torch.float64)
        dist.all_reduce(skipped)  # every rank saves together; one count for the run
        state = {"step": self.step, "loader": self.stream.state(), "corrupt_skipped": int(skipped.item())}
        self._emit("on_save", state)
        return state

    def load_state_dict(self, state: dict):
        self.step = state["step"]
        skipped = state.get("corrupt_skipped", 0) if self.rank == 0 else 0  # saved summed over ranks
        self.stream = BatchStream(self.stream.cfg, self.rank, self.world, **state["loader"], skipped=skipped)
        self._emit("on_load", state)

    def save(self):
        ckpt.save(self.engine, self.ckpt_root, self.step, self.state_dict(), self.ema, self.config_record(),
                  self.tc.keep_last, before_commit=lambda: self._emit("on_checkpoint_written"))
        self.saved_step = self.step

    def config_record(self) -> dict:
        keys = ("name", "content_hash", "element_references", "force_rms", "avg_num_neighbors", "elements", "counts",
                "units", "cutoff")
        return {"train": self.tc.to_dict(), "card": {k: self.card.get(k) for k in keys}, "world_size": self.world,
                # what the model applies (a fine-tune may differ from the card): exports rebuild exactly this
                "element_references": {str(z): float(self.model.element_refs[z]) for z in self.model.elements},
                "energy_scale": self.model.energy_scale}

    def memory_mb(self) -> float:
        if torch.cuda.is_available():
            return torch.cuda.max_memory_allocated() / 2**20
        return psutil.Process().memory_info().rss / 2**20

    def fit(self) -> dict:
        tc = self.tc
        self._emit("on_train_start")
        bar = tqdm(total=tc.steps, initial=self.step, desc="train", unit="step",
                   disable=self.rank != 0 or not tc.progress)
        last = {}
        stop_at = tc.stop_after if tc.stop_after else tc.steps
        while self.step < min(tc.steps, stop_at) and not self.stop:
            lr = self.sched.get_last_lr()[0]  # the rate this step uses
            t0 = time.perf_counter()
            m = self.train_step()
            dt = time.perf_counter() - t0
            counts = torch.tensor([m.pop("atoms"), m.pop("samples"), self.stream.skipped], dtype=torch.float64)
            dist.all_reduce(counts)
            row = {"step": self.step, **m, "lr": lr,
                   "atoms_per_s": counts[0].item() / dt, "step_time_s": dt, "memory_mb": self.memory_mb(),
                   "samples": int(counts[1].item()),
                   "corrupt_skipped": int(counts[2].item()),  # all ranks, whole run (data.on_error=skip)
                   "epoch": self.stream.epoch, "rank_steps": self.step}
            if tc.eval_every and self.step % tc.eval_every == 0:
                row.update(self.validate())
            bar.set_postfix(loss=f"{row['loss']:.4f}", atoms_s=f"{row['atoms_per_s']:.0f}")
            bar.update()
            last = row
            self._emit("on_step_end", row)
        bar.close()
        if self.stop:
            self._emit("on_train_end", None)
            return last
        if self.step >= tc.steps:
            final = self.validate()
            last.update(final)
            self._emit("on_final_validation",
                       {"step": self.step, **final, "final": True, "corrupt_skipped": last.get("corrupt_skipped", 0)})
        summary = {"steps": self.step, "world_size": self.world, "corrupt_skipped": last.get("corrupt_skipped", 0)}
        self._emit("on_train_end", summary)
        steps_done = torch.tensor([self.step], dtype=torch.long)
        gathered = [torch.zeros_like(steps_done) for _ in range(self.world)]
        dist.all_gather(gathered, steps_done)
        if self.rank == 0:
            ranks = {"world_size": self.world, "steps_per_rank": [int(g) for g in gathered]}
            self.layout.ranks.write_text(json.dumps(ranks))
            self.layout.summary.write_text(json.dumps(summary))
        return last

    def close(self):
        self.engine.destroy()
