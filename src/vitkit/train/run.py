"""One training run from a `TrainConfig`: model + data + optional teacher on one device per process (DDP under
torchrun) -> epochs with an atomic `last.pt` every epoch (and every `save_every` optimiser steps), a metrics
CSV, `curves.png`, optional TensorBoard scalars, and the final weights as a vitkit safetensors file.
`vitkit train` fills a TrainConfig from its flags (and `--config FILE.yaml`); Python users can do the same."""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import Subset

from ..checkpoint import _atomic_write
from ..data import build_dataset, data_info, default_workers
from ..data.mixing import BatchMix
from ..errors import CheckpointError, ConfigError
from ..io import write_yaml
from ..layers import set_layer_config
from ..registry import create_model
from .autotune import choose as choose_routes
from .config import TrainConfig
from .data import build_loaders
from .distributed import DistInfo, barrier, check_precision, cleanup, init_distributed, resolve_device, wrap_ddp
from .ema import EMA
from .engine import DistillHeads, DivergedError, evaluate, train_one_epoch
from .finetune import init_from_checkpoint
from .fsdp import fully_shard_model
from .keeper import Keeper
from .lock import RunLock
from .losses import DistillationLoss
from .lr_rule import resolve_lr
from .optim import build_optimizer
from .recipe import build_schedule, run_data_config, train_options, views_evaluation


@dataclass
class TrainResult:
    model: nn.Module
    history: list[dict]
    out_dir: Path
    train_time: float                     # seconds spent in this process's training epochs
    is_main: bool = True                  # rank 0 (the process that writes files and prints)
    ema_model: nn.Module | None = None    # the EMA weights when --ema was given
    precision: str = "fp32"               # what the run trained in (its `auto` resolved)


METRIC_FIELDS = ("epoch", "train_loss", "val_loss", "val_acc1", "val_acc5", "val_ema_acc1", "lr", "grad_norm",
                 "skipped_steps", "samples_per_s", "epoch_time")


def write_metrics(path: Path, history: list[dict]) -> None:
    def write(tmp):
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=METRIC_FIELDS, extrasaction="ignore")
            w.writeheader()
            w.writerows(history)

    _atomic_write(path, write)


def plot_curves(path: Path, history: list[dict]) -> None:
    """curves.png: training / validation loss and validation accuracy (raw and EMA) per epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] + 1 for r in history]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
    left.plot(epochs, [r["train_loss"] for r in history], label="train")
    left.plot(epochs, [r["val_loss"] for r in history], label="val")
    left.set(xlabel="epoch", ylabel="loss")
    right.plot(epochs, [r["val_acc1"] for r in history], label="val top-1")
    if any(r.get("val_ema_acc1") is not None for r in history):
        right.plot(epochs, [r.get("val_ema_acc1") for r in history], label="val top-1 (EMA)")
    right.set(xlabel="epoch", ylabel="accuracy (%)")
    for ax in (left, right):
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    _atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    plt.close(fig)


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


def build_model(cfg: TrainConfig) -> tuple[nn.Module, object, object]:
    """(model with the dataset's class count, train set, val set), seeded by cfg.seed."""
    probe_ctx = torch.device("meta")
    with probe_ctx:
        probe = create_model(cfg.model, **cfg.overrides)
    shape = probe.input_shape()
    data_cfg, video = run_data_config(cfg, probe), {"frame_stride": cfg.frame_stride, "sampling": cfg.sampling}
    train_set = build_dataset(cfg.data, "train", shape, augment=cfg.augment, data_cfg=data_cfg,
                              randaugment=cfg.randaugment, reprob=cfg.reprob, train_options=train_options(cfg),
                              **video)
    val_set = build_dataset(cfg.data, "val", shape, data_cfg=data_cfg, **video)
    n = train_set.num_classes
    if "num_classes" in cfg.overrides and cfg.overrides["num_classes"] != n:
        raise ConfigError(f"num_classes={cfg.overrides['num_classes']} but the dataset {cfg.data!r} has {n} classes")
    torch.manual_seed(cfg.seed)
    model = create_model(cfg.model, **{**cfg.overrides, "num_classes": n})
    if cfg.limit is not None:
        train_set = Subset(train_set, range(min(cfg.limit, len(train_set))))
        train_set.num_classes = n
    return model, train_set, val_set


def build_criterion(cfg: TrainConfig, num_classes: int, device: torch.device) -> DistillationLoss:
    teacher = None
    if cfg.distill != "none":
        from .teacher import build_teacher

        teacher = build_teacher(cfg.teacher, num_classes=num_classes, weights=cfg.teacher_weights)
        t_classes = getattr(teacher, "num_classes", None)
        if t_classes is not None and t_classes != num_classes:
            raise ConfigError(f"the teacher predicts {t_classes} classes but the data has {num_classes}")
        teacher = teacher.to(device)
    return DistillationLoss(nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing), teacher, cfg.distill,
                            cfg.alpha, cfg.tau, cfg.soft_normalisation)


def changed_settings(saved: dict, current: dict) -> list[str]:
    """'name (old -> new)' for every setting that differs (tuples and lists compare equal, as in JSON)."""
    norm = lambda v: json.dumps(v, sort_keys=True)
    return [f"{k} ({saved.get(k, 'unset')!r} -> {current.get(k, 'unset')!r})" for k in sorted(set(saved) | set(current))
            if norm(saved.get(k)) != norm(current.get(k))]


def train(cfg: TrainConfig, console=None) -> TrainResult:
    """Run `cfg`; returns the trained model (unwrapped), its per-epoch history and the run folder. The layer
    switches the run's routes set (vitkit.layers.set_layer_config) are restored afterwards."""
    cfg.validate()
    info = init_distributed(cfg.device)
    lock = RunLock(cfg.out_dir())
    try:
        with set_layer_config():
            return _train(cfg, info, console, lock)
    finally:
        lock.release()
        cleanup(info)


def _route_key(cfg: TrainConfig, model: nn.Module) -> dict:
    """What a timing of the routes depends on besides the machine: the model, its input, the batch, the loss."""
    return {"model": model.model_name, "config": repr(getattr(model, "config", cfg.overrides)),
            "batch": cfg.batch_size, "distill": cfg.distill, "teacher": cfg.teacher,
            "grad_checkpointing": cfg.grad_checkpointing}


def _train(cfg: TrainConfig, info: DistInfo, console, lock: RunLock) -> TrainResult:
    from rich.console import Console

    console = console or Console(stderr=True)
    say = console.print if (info.is_main and cfg.progress) else (lambda *a, **k: None)
    lr, lr_note = resolve_lr(cfg.lr, cfg.lr_base, cfg.lr_base_size, cfg.lr_rule, cfg.batch_size, cfg.accum_steps,
                             info.world_size, cfg.ref_global_batch)
    cfg = dataclasses.replace(cfg, lr=lr)  # the resolved lr is the run's (config.yaml, resume checks)
    if lr_note and info.is_main:
        console.print(lr_note, highlight=False, soft_wrap=True)
    device = resolve_device(cfg.device, info.local_rank)
    check_precision(cfg.precision, device)
    out = cfg.out_dir()
    model, train_set, val_set = build_model(cfg)
    if cfg.init and not cfg.resume:
        for note in init_from_checkpoint(model, cfg.init, cfg.inflate):
            say(note)
    if cfg.grad_checkpointing:
        model.set_grad_checkpointing(True)
    model.to(device)
    criterion = build_criterion(cfg, model.num_classes, device)
    workers = default_workers(cfg.data, info.local_world_size) if cfg.workers is None else cfg.workers
    # Mixup/CutMix targets are soft (B, K); CrossEntropyLoss smooths them as (1 - ε)·p + ε/K
    mix = BatchMix(model.num_classes, cfg.mixup, cfg.cutmix, cfg.mix_prob, cfg.switch_prob) \
        if cfg.mixup > 0 or cfg.cutmix > 0 else None
    loaders = build_loaders(train_set, val_set, cfg.batch_size, info, cfg.seed, workers,
                            pin_memory=device.type == "cuda", repeated_aug=cfg.repeated_aug, mix=mix,
                            val_batch_size=cfg.val_batch_size)
    steps = math.ceil(len(loaders.train) / cfg.accum_steps)  # optimiser steps per epoch
    total = max(1, cfg.epochs * steps)
    # the routes are chosen (and timed, on a copy) before anything is sharded: FSDP's policy takes the precision
    call_model = DistillHeads(model) if criterion.kind != "none" and getattr(model, "head_dist", None) is not None \
        else model
    routes = choose_routes(cfg.precision, call_model, criterion, model.input_shape(), device, cfg.batch_size, total,
                           _route_key(cfg, model), info)
    routes.apply()  # train() restores the switches when the run ends
    for line in routes.lines:
        say(line)
    precision = routes.precision
    ema_device = torch.device("cpu") if cfg.ema_device == "cpu" else device
    ema = EMA(model, cfg.ema, ema_device, cfg.ema_every) if cfg.ema else None
    if cfg.fsdp:  # before the optimiser, which then holds the shards
        fully_shard_model(model, info, device, precision, cfg.fsdp_offload)
        if ema is not None:
            fully_shard_model(ema.module, info, device, precision, offload=ema_device.type == "cpu")
    optimizer = build_optimizer(model, cfg.lr, cfg.weight_decay, layer_decay=cfg.layer_decay, opt=cfg.opt,
                                momentum=cfg.momentum, nesterov=cfg.nesterov)
    scheduler = build_schedule(cfg, optimizer, steps)
    scaler = torch.amp.GradScaler(device.type) if precision == "fp16" else None
    keeper = Keeper(out, info, cfg.fsdp, model, optimizer, scheduler, scaler, ema, cfg.settings(), cfg.checkpoint_hist)
    start_epoch, start_step, totals, history = 0, 0, None, []
    if cfg.resume:
        path = keeper.last
        state = keeper.read()
        changed = changed_settings(state["settings"], cfg.settings())
        if state["model_name"] != model.model_name:
            changed.insert(0, f"model ({state['model_name']!r} -> {model.model_name!r})")
        if changed and not cfg.force:
            raise CheckpointError(f"cannot resume from {str(path)!r}: it was written by a run with other settings "
                                  f"({'; '.join(changed)}); use the same settings, another --out, or --force")
        if changed:
            say(f"resuming with changed settings (--force): {'; '.join(changed)}")
        state = keeper.resume()
        start_epoch, start_step = state["epoch"] + 1, state.get("step", 0)
        totals, history = (state.get("totals") or None) if start_step else None, list(state["history"])
        where = f", step {start_step} of epoch {start_epoch + 1}" if start_step else ""
        say(f"resuming {model.model_name} from {path} after epoch {state['epoch'] + 1}{where}")

    train_model = call_model if cfg.fsdp else wrap_ddp(call_model, info, device)
    if cfg.compile:
        train_model = torch.compile(train_model)
    if info.is_main:  # rank 0 alone writes, under the folder's lock (a second run on it refuses here)
        lock.acquire()
        base = train_set.dataset if isinstance(train_set, Subset) else train_set
        (out / "data.json").write_text(json.dumps(data_info(cfg.data, base, model.input_shape()[0],
                                                            run_data_config(cfg, model))))
        settings = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in ("resume", "force")}
        # `routes`: what the run chose for this processor (train.autotune), a record that loading ignores
        write_yaml(out / "config.yaml", {**settings, "routes": routes.as_dict()})
    writer = _tensorboard(cfg.log_dir, say) if info.is_main else None

    save = lambda epoch_done, step=0, partial=None: keeper.save(epoch_done, history, step, partial)

    elapsed = 0.0
    for epoch in range(start_epoch, cfg.epochs):
        loaders.start_epoch(epoch, start_step, cfg.accum_steps)

        def on_step(step: int, partial: dict, epoch=epoch) -> None:
            if cfg.save_every and step % cfg.save_every == 0 and step < steps:
                save(epoch - 1, step, partial)

        t0 = time.perf_counter()
        try:
            stats = train_one_epoch(train_model, loaders.train, criterion, optimizer, scheduler, epoch, cfg.clip_grad,
                                    precision, progress=info.is_main and cfg.progress, device=device,
                                    accum_steps=cfg.accum_steps, scaler=scaler, ema=ema, ema_source=model, info=info,
                                    seed=cfg.seed, start_step=start_step, totals=totals, on_step=on_step)
        except DivergedError as e:
            kept = f"; the last good checkpoint is {str(keeper.last)!r}" if keeper.last.exists() else ""
            raise DivergedError(f"{e}{kept}") from None
        start_step, totals = 0, None
        val = evaluate(model, loaders.val, precision, device, info)
        val_ema = None
        if ema is not None:
            with ema.on(device) as averaged:
                val_ema = evaluate(averaged, loaders.val, precision, device, info)
        dt = time.perf_counter() - t0
        elapsed += dt
        row = {"epoch": epoch, "train_loss": round(stats["train_loss"], 5), "val_loss": round(val["loss"], 5),
               "val_acc1": round(val["acc1"], 3), "val_acc5": round(val["acc5"], 3),
               "val_ema_acc1": round(val_ema["acc1"], 3) if val_ema else None, "lr": stats["lr"],
               "grad_norm": round(stats["grad_norm"], 5), "skipped_steps": stats["skipped_steps"],
               "samples_per_s": round(stats["samples"] * info.world_size / max(stats["train_time"], 1e-9), 1),
               "epoch_time": round(dt, 3)}
        history.append(row)
        save(epoch)
        keeper.epoch_end(epoch, history)
        if info.is_main:
            write_metrics(out / "metrics.csv", history)
            if writer is not None:
                for key in ("train_loss", "val_loss", "val_acc1", "val_ema_acc1", "lr", "grad_norm", "samples_per_s"):
                    if row[key] is not None:
                        writer.add_scalar(key, row[key], epoch + 1)
                writer.flush()
        ema_text = f"  EMA {row['val_ema_acc1']:.2f}%" if val_ema else ""
        say(f"epoch {epoch + 1}/{cfg.epochs}  loss {row['train_loss']:.4f}  val acc {row['val_acc1']:.2f}%{ema_text}  "
            f"({dt:.1f}s)")
        barrier(info)
    final = model
    if ema is not None and history and (history[-1]["val_ema_acc1"] or 0) > history[-1]["val_acc1"]:
        final = ema.module
        say("the EMA weights scored higher; model.safetensors holds them")
    keeper.final(final)
    if info.is_main:
        if not cfg.fsdp:
            views_evaluation(cfg, final, device, precision, say, out)
        elif cfg.test_views != "1x1":  # sharded weights evaluate on all ranks together: the file is evaluated instead
            say(f"test views {cfg.test_views}: evaluate {out / 'model.safetensors'} with vitkit eval --test-views")
        if history:
            plot_curves(out / "curves.png", history)
        if writer is not None:
            writer.close()
    return TrainResult(model, history, out, elapsed, info.is_main, ema.module if ema is not None else None, precision)
