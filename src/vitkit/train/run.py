"""One training run from a `TrainConfig`: model + data + optional teacher on one device per process (DDP under
torchrun) -> epochs with an atomic `last.pt` every epoch (and every `save_every` optimiser steps), a metrics
CSV, a per-step log, `curves.png`, optional TensorBoard scalars, and the final weights as a vitkit safetensors
file. `vitkit train` fills a TrainConfig from its flags (and `--config FILE.yaml`) and calls `train`; Python
users can do the same, or drive a `Trainer` (setup / resume / fit, callbacks, objects built in memory)."""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import Dataset, Subset

from ..data import data_info, default_workers
from ..data.mixing import BatchMix
from ..errors import CheckpointError, ConfigError
from ..io import write_yaml
from ..layers import set_layer_config
from .autotune import choose as choose_routes
from .build import build_criterion, build_model, changed_settings, route_key
from .callbacks import Callback, Checkpoints, Curves, EMAEvaluation, MetricsCSV, ProgressBar, StepLog, TensorBoard
from .config import TrainConfig
from .data import build_loaders
from .distributed import DistInfo, barrier, check_precision, cleanup, init_distributed, resolve_device, wrap_ddp
from .ema import EMA
from .engine import CallWith, DistillHeads, DivergedError, TrainState, evaluate, train_one_epoch
from .finetune import init_from_checkpoint
from .fsdp import fully_shard_model
from .keeper import Keeper
from .lock import RunLock
from .losses import TEACHERLESS
from .lr_rule import resolve_lr
from .optim import build_optimizer
from .recipe import build_schedule, run_data_config, total_steps, views_evaluation

__all__ = ["TrainConfig", "TrainResult", "Trainer", "build_criterion", "build_model", "changed_settings", "train"]


@dataclass
class TrainResult:
    model: nn.Module
    history: list[dict]
    out_dir: Path
    train_time: float                     # seconds spent in this process's training epochs
    is_main: bool = True                  # rank 0 (the process that writes files and prints)
    ema_model: nn.Module | None = None    # the EMA weights when --ema was given
    precision: str = "fp32"               # what the run trained in (its `auto` resolved)
    final_model: nn.Module | None = None  # what model.safetensors holds: `model`, or the EMA copy if it scored higher


def _tensorboard(log_dir: str | None, say):
    if not log_dir:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        say(f"tensorboard is not installed, so --log-dir {log_dir} gets no scalars (pip install 'vitkit[tensorboard]'); "
            "metrics.csv is written as always")
        return None
    return SummaryWriter(log_dir)


def train(cfg: TrainConfig, console=None) -> TrainResult:
    """Run `cfg`; returns the trained model (unwrapped), its per-epoch history and the run folder. The layer
    switches the run's routes set (vitkit.layers.set_layer_config) are restored afterwards."""
    cfg.validate()
    info = init_distributed(cfg.device)
    try:
        result = Trainer(cfg, console, info=info).run()
        barrier(info)  # no rank tears the group down while another still works: gloo aborts a rank whose peer left
        return result
    finally:
        cleanup(info)


class Trainer:
    """One training run. `setup()` builds the model, data, loss, optimiser, schedule, grad scaler, EMA and the
    routes from a TrainConfig; `resume()` loads the run folder's checkpoint (model, optimiser, schedule, scaler,
    EMA, position in the epoch); `fit()` trains the remaining epochs and returns a TrainResult. `run()` does the
    three (`resume()` when cfg.resume), restores the layer switches the routes set and releases the folder lock.

    Built objects replace what cfg names: `model` (a vitkit model: `model_name`, `num_classes`,
    `input_shape()`), `train_set` / `val_set` (Datasets of (input, label) pairs, e.g. a TensorDataset of
    in-memory tensors; a train set without a `num_classes` attribute takes the model's; cfg.limit still applies)
    and `teacher` (an nn.Module, used when cfg.distill is soft or hard); `forward(model, images)` says how the
    training loop calls the model (default: `forward_distill` for a distilled student under distillation, else
    the model itself), e.g. a distilled student's two heads without distillation. With `write=False` nothing touches the
    disk (no run folder, lock, checkpoints, logs or weights files, no resume): the TrainResult holds the history,
    the models and the training time. `callbacks` run after the run's own: MetricsCSV, StepLog, Curves,
    TensorBoard, Checkpoints (when writing), EMAEvaluation (with an EMA) and ProgressBar (with cfg.progress).
    A callback may set `trainer.should_stop` (e.g. EarlyStopping): the run then ends after the current epoch."""

    def __init__(self, cfg: TrainConfig, console=None, *, model: nn.Module | None = None,
                 train_set: Dataset | None = None, val_set: Dataset | None = None, teacher: nn.Module | None = None,
                 write: bool = True, callbacks: list[Callback] = (), info: DistInfo | None = None,
                 forward: Callable[[nn.Module, torch.Tensor], object] | None = None):
        if teacher is not None and cfg.distill in TEACHERLESS:
            raise ConfigError(f"a teacher was given but distill is {cfg.distill!r}; set distill to 'soft' or 'hard'")
        if teacher is not None and not cfg.teacher:  # the given teacher's name in config.yaml and the settings
            cfg = dataclasses.replace(cfg, teacher=getattr(teacher, "model_name", type(teacher).__name__))
        cfg.validate()
        from rich.console import Console

        self.cfg, self.info, self.write, self.extra_callbacks = cfg, info or DistInfo(), write, list(callbacks)
        self.given = {"model": model, "train_set": train_set, "val_set": val_set, "teacher": teacher}
        self.forward, self.should_stop = forward, False
        self.console = console or Console(stderr=True)
        self.say = self.console.print if (self.info.is_main and cfg.progress) else (lambda *a, **k: None)
        self.out = cfg.out_dir()
        self.lock = RunLock(self.out) if write else None
        self.start_epoch, self.start_step, self.totals, self.history, self.elapsed = 0, 0, None, [], 0.0

    def run(self) -> TrainResult:
        try:
            with set_layer_config():
                self.setup()
                if self.cfg.resume:
                    self.resume()
                return self.fit()
        finally:
            self.close()

    def close(self) -> None:
        if self.lock is not None:
            self.lock.release()

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        """Loss and top-1 / top-5 of `model` on the validation loader (all ranks together)."""
        return evaluate(model, self.loaders.val, self.precision, self.device, self.info)

    def setup(self) -> Trainer:
        cfg = self.cfg
        lr, lr_note = resolve_lr(cfg.lr, cfg.lr_base, cfg.lr_base_size, cfg.lr_rule, cfg.batch_size, cfg.accum_steps,
                                 self.info.world_size, cfg.ref_global_batch)
        self.cfg = cfg = dataclasses.replace(cfg, lr=lr)  # the resolved lr is the run's (config.yaml, resume checks)
        if lr_note and self.info.is_main:
            self.console.print(lr_note, highlight=False, soft_wrap=True)
        self.device = resolve_device(cfg.device, self.info.local_rank)
        check_precision(cfg.precision, self.device)
        self._build_model_and_data()
        self._build_optimisation()
        self.keeper = Keeper(self.out, self.info, cfg.fsdp, self.model, self.optimizer, self.scheduler, self.scaler,
                             self.ema, cfg.settings(), cfg.checkpoint_hist)
        return self

    def _build_model_and_data(self) -> None:
        cfg, info, g = self.cfg, self.info, self.given
        self.model, self.train_set, self.val_set = build_model(cfg, g["model"], g["train_set"], g["val_set"])
        model = self.model
        if cfg.init and not cfg.resume:
            for note in init_from_checkpoint(model, cfg.init, cfg.inflate):
                self.say(note)
        if cfg.grad_checkpointing:
            model.set_grad_checkpointing(True)
        model.to(self.device)
        self.criterion = build_criterion(cfg, model.num_classes, self.device, g["teacher"])
        workers = cfg.workers if cfg.workers is not None else \
            0 if g["train_set"] is not None else default_workers(cfg.data, info.local_world_size)  # in memory: none
        # Mixup/CutMix targets are soft (B, K); CrossEntropyLoss smooths them as (1 - ε)·p + ε/K
        mix = BatchMix(model.num_classes, cfg.mixup, cfg.cutmix, cfg.mix_prob, cfg.switch_prob) \
            if cfg.mixup > 0 or cfg.cutmix > 0 else None
        self.loaders = build_loaders(self.train_set, self.val_set, cfg.batch_size, info, cfg.seed, workers,
                                     pin_memory=self.device.type == "cuda", repeated_aug=cfg.repeated_aug, mix=mix,
                                     val_batch_size=cfg.val_batch_size)
        self.steps = math.ceil(len(self.loaders.train) / cfg.accum_steps)  # optimiser steps per epoch

    def _build_optimisation(self) -> None:
        cfg, info, model, device = self.cfg, self.info, self.model, self.device
        total = total_steps(cfg, self.steps)
        # the routes are chosen (and timed, on a copy) before anything is sharded: FSDP's policy takes the precision
        if self.forward is not None:
            self.call_model = CallWith(model, self.forward)
        elif self.criterion.kind != "none" and getattr(model, "head_dist", None) is not None:
            self.call_model = DistillHeads(model)
        else:
            self.call_model = model
        self.routes = choose_routes(cfg.precision, self.call_model, self.criterion, model.input_shape(), device,
                                    cfg.batch_size, total, route_key(cfg, model), info)
        self.routes.apply()  # run() restores the switches when the run ends
        for line in self.routes.lines:
            self.say(line)
        self.precision = precision = self.routes.precision
        ema_device = torch.device("cpu") if cfg.ema_device == "cpu" else device
        self.ema = EMA(model, cfg.ema, ema_device, cfg.ema_every) if cfg.ema else None
        if cfg.fsdp:  # before the optimiser, which then holds the shards
            fully_shard_model(model, info, device, precision, cfg.fsdp_offload)
            if self.ema is not None:
                fully_shard_model(self.ema.module, info, device, precision, offload=ema_device.type == "cpu")
        self.optimizer = build_optimizer(model, cfg.lr, cfg.weight_decay, layer_decay=cfg.layer_decay, opt=cfg.opt,
                                         momentum=cfg.momentum, nesterov=cfg.nesterov)
        self.scheduler = build_schedule(cfg, self.optimizer, self.steps)
        self.scaler = torch.amp.GradScaler(device.type) if precision == "fp16" else None

    def resume(self) -> Trainer:
        """Continue from the run folder's checkpoint; refuses one written with other settings unless cfg.force."""
        if not self.write:
            raise ConfigError("a Trainer with write=False keeps no checkpoint, so it cannot resume")
        cfg, keeper, model = self.cfg, self.keeper, self.model
        path = keeper.last
        state = keeper.read()
        changed = changed_settings(state["settings"], cfg.settings())
        if state["model_name"] != model.model_name:
            changed.insert(0, f"model ({state['model_name']!r} -> {model.model_name!r})")
        if changed and not cfg.force:
            raise CheckpointError(f"cannot resume from {str(path)!r}: it was written by a run with other settings "
                                  f"({'; '.join(changed)}); use the same settings, another --out, or --force")
        if changed:
            self.say(f"resuming with changed settings (--force): {'; '.join(changed)}")
        state = keeper.resume()
        self.start_epoch, self.start_step = state["epoch"] + 1, state.get("step", 0)
        self.totals = (state.get("totals") or None) if self.start_step else None
        self.history = list(state["history"])
        where = f", step {self.start_step} of epoch {self.start_epoch + 1}" if self.start_step else ""
        self.say(f"resuming {model.model_name} from {path} after epoch {state['epoch'] + 1}{where}")
        return self

    def fit(self) -> TrainResult:
        self._start()
        epochs = math.ceil(total_steps(self.cfg, self.steps) / self.steps)  # cfg.epochs, or fewer with max_steps
        for epoch in range(self.start_epoch, epochs):
            self._epoch(epoch)
            barrier(self.info)
            if self.should_stop:
                break
        return self._finish()

    def _start(self) -> None:
        """The step loop's state (the model wrapped for DDP and compiled), the run's files, the callbacks."""
        cfg, info = self.cfg, self.info
        train_model = self.call_model if cfg.fsdp else wrap_ddp(self.call_model, info, self.device)
        if cfg.compile:
            train_model = torch.compile(train_model)
        self.state = TrainState(train_model, self.criterion, self.optimizer, self.scheduler, self.precision,
                                self.device, cfg.clip_grad, cfg.accum_steps, self.scaler, self.ema, self.model, info,
                                cfg.seed, cfg.log_interval)
        if self.write and info.is_main:  # rank 0 alone writes, under the folder's lock (a second run refuses here)
            self.lock.acquire()
            self._write_settings()
        self.callbacks = [*self._callbacks(), *self.extra_callbacks]
        for cb in self.callbacks:
            cb.on_fit_start(self)

    def _write_settings(self) -> None:
        """data.json (the classes and input, for `vitkit predict`) and config.yaml (the settings and routes)."""
        cfg, out, model = self.cfg, self.out, self.model
        if self.given["train_set"] is None:
            base = self.train_set.dataset if isinstance(self.train_set, Subset) else self.train_set
            (out / "data.json").write_text(json.dumps(data_info(cfg.data, base, model.input_shape()[0],
                                                                run_data_config(cfg, model))))
        settings = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in ("resume", "force")}
        # `routes`: what the run chose for this processor (train.autotune), a record that loading ignores
        write_yaml(out / "config.yaml", {**settings, "routes": self.routes.as_dict()})

    def _callbacks(self) -> list[Callback]:
        cfg, main, out = self.cfg, self.info.is_main, self.out
        callbacks: list[Callback] = [EMAEvaluation(self.ema)] if self.ema is not None else []
        if self.write:
            callbacks.append(Checkpoints(self.keeper, cfg.save_every, self.steps))
        if self.write and main:
            callbacks += [MetricsCSV(out / "metrics.csv"), StepLog(out / "steps.csv"), Curves(out / "curves.png")]
            writer = _tensorboard(cfg.log_dir, self.say)
            if writer is not None:
                callbacks.append(TensorBoard(writer))
        if main and cfg.progress:
            callbacks.append(ProgressBar(self.say, cfg.epochs))
        return callbacks

    def _epoch(self, epoch: int) -> None:
        s = self.state
        stop = total_steps(self.cfg, self.steps) - epoch * self.steps  # the budget left: the epoch's end or before
        self.loaders.start_epoch(epoch, self.start_step, self.cfg.accum_steps, stop if stop < self.steps else None)
        t0 = time.perf_counter()
        try:
            stats = train_one_epoch(s.model, self.loaders.train, s.criterion, s.optimizer, s.scheduler, epoch, state=s,
                                    callbacks=self.callbacks, start_step=self.start_step, totals=self.totals)
        except DivergedError as e:
            kept = f"; the last good checkpoint is {str(self.keeper.last)!r}" \
                if self.write and self.keeper.last.exists() else ""
            raise DivergedError(f"{e}{kept}") from None
        self.start_step, self.totals = 0, None
        val = self.evaluate(self.model)
        row = {"epoch": epoch, "train_loss": round(stats["train_loss"], 5), "val_loss": round(val["loss"], 5),
               "val_acc1": round(val["acc1"], 3), "val_acc5": round(val["acc5"], 3), "val_ema_acc1": None,
               "lr": stats["lr"], "grad_norm": round(stats["grad_norm"], 5), "skipped_steps": stats["skipped_steps"],
               "samples_per_s": round(stats["samples"] * self.info.world_size / max(stats["train_time"], 1e-9), 1),
               "epoch_time": None}
        for cb in self.callbacks:
            cb.on_evaluate(self, row)
        dt = time.perf_counter() - t0
        self.elapsed += dt
        row["epoch_time"] = round(dt, 3)
        self.history.append(row)
        for cb in self.callbacks:
            cb.on_epoch_end(self, row)

    def _finish(self) -> TrainResult:
        """model.safetensors (the EMA's weights if they scored higher), the test views, the callbacks' ends."""
        cfg, out, ema, last = self.cfg, self.out, self.ema, self.history[-1] if self.history else None
        final = self.model
        if ema is not None and last and (last["val_ema_acc1"] or 0) > last["val_acc1"]:
            final = ema.module
            self.say("the EMA weights scored higher; model.safetensors holds them" if self.write
                     else "the EMA weights scored higher (TrainResult.final_model)")
        if self.write:
            self.keeper.final(final)
        if self.write and self.info.is_main:
            if not cfg.fsdp:
                views_evaluation(cfg, final, self.device, self.precision, self.say, out)
            elif cfg.test_views != "1x1":  # sharded weights evaluate on all ranks together: the file is evaluated
                self.say(f"test views {cfg.test_views}: evaluate {out / 'model.safetensors'} with vitkit eval "
                         "--test-views")
        for cb in self.callbacks:
            cb.on_fit_end(self)
        return TrainResult(self.model, self.history, out, self.elapsed, self.info.is_main,
                           ema.module if ema is not None else None, self.precision, final)
