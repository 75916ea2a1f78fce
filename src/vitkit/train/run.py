"""One training run from a `TrainConfig`: model + data + optional teacher -> epochs with an atomic
`last.pt` every epoch, a metrics CSV, and the final weights as a vitkit safetensors file. `vitkit train`
fills a TrainConfig from its flags; Python users can do the same."""

from __future__ import annotations

import csv
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, Subset

from ..checkpoint import _atomic_write, load_state_dict, save_checkpoint
from ..data import build_dataset, data_info, default_workers, model_data_config, parse_randaugment
from ..data.mixing import BatchMix, MixCollate
from ..data.sampler import RepeatedAugSampler
from ..errors import CheckpointError, ConfigError
from ..registry import create_model
from .distributed import DistInfo, barrier, cleanup, init_distributed, wrap_ddp
from .engine import DistillHeads, DivergedError, evaluate, train_one_epoch
from .losses import KINDS, DistillationLoss
from .optim import build_optimizer
from .schedule import WarmupCosine
from .state import load_training_state, save_training_state, set_rng_states


@dataclass(frozen=True)
class TrainConfig:
    """Everything a run depends on. Defaults are DeiT's recipe scaled to small data (AdamW, cosine)."""

    model: str = "deit_tiny_distilled_patch16_224"
    data: str = "digits"                  # "digits", "moving-digits" or a folder (root/<class>/<file>)
    overrides: dict = field(default_factory=dict)  # model config overrides (img_size, depth, ...)
    epochs: int = 30
    batch_size: int = 64
    lr: float = 1e-3                      # peak AdamW learning rate, reached after the warm-up
    weight_decay: float = 0.05            # not applied to biases, norms, tokens, position tables
    warmup_epochs: float = 3.0            # linear warm-up (in epochs, stepped per batch)
    min_lr_ratio: float = 0.01            # the cosine ends at lr · min_lr_ratio
    clip_grad: float | None = 1.0         # global gradient-norm clip (None: off)
    label_smoothing: float = 0.1          # on the true label only (DeiT §5.2)
    distill: str = "none"                 # none | soft | hard (DeiT §4)
    teacher: str | None = None            # a vitkit checkpoint, a vitkit model name, or "tv:<torchvision name>"
    teacher_weights: str | None = None    # weights file for a teacher given by name (else random init)
    alpha: float = 0.5                    # weight of the distillation term
    tau: float = 1.0                      # soft-distillation temperature
    soft_normalisation: str = "elementwise"  # official DeiT (batch × classes) or "batch" (timm / lucidrains)
    out: str | None = None                # run folder; default runs/<model>
    resume: bool = False                  # continue from <out>/last.pt
    workers: int | None = None            # DataLoader worker processes (None: cores for folders, 0 for built-ins)
    seed: int = 0
    bf16: bool = False                    # bf16 autocast (the CPU's fast low-precision path)
    limit: int | None = None              # use only the first `limit` training samples (quick checks)
    progress: bool = True                 # rich progress bar and per-epoch lines (rank 0)
    randaugment: str | None = None        # "N,M": v2 RandAugment (the papers' recipes: 2,9)
    reprob: float = 0.0                   # random-erasing probability (DeiT: 0.25)
    mixup: float = 0.0                    # Mixup alpha (DeiT: 0.8; 0 = off)
    cutmix: float = 0.0                   # CutMix alpha (DeiT: 1.0; 0 = off)
    mix_prob: float = 1.0                 # probability of mixing a batch
    switch_prob: float = 0.5              # probability of CutMix rather than Mixup when both are on
    repeated_aug: int = 1                 # DeiT's repeated augmentation: copies of each image per epoch (1 = off)
    frame_stride: int = 2                 # video folders: frames between a clip's frames
    sampling: str = "stride"              # video folders: "stride" (random offset) or "uniform" (ViViT)

    def out_dir(self) -> Path:
        return Path(self.out) if self.out else Path("runs") / self.model

    def validate(self) -> None:
        checks = [
            (self.epochs >= 1, f"--epochs must be at least 1, got {self.epochs}"),
            (self.batch_size >= 1, f"--batch-size must be at least 1, got {self.batch_size}"),
            (self.lr > 0, f"--lr must be positive, got {self.lr}"),
            (self.weight_decay >= 0, f"--weight-decay must be non-negative, got {self.weight_decay}"),
            (self.warmup_epochs >= 0, f"--warmup-epochs must be non-negative, got {self.warmup_epochs}"),
            (self.distill in KINDS, f"--distill must be one of {', '.join(KINDS)}, got {self.distill!r}"),
            (0 <= self.alpha <= 1, f"--alpha must be in [0, 1], got {self.alpha}"),
            (self.tau > 0, f"--tau must be positive, got {self.tau}"),
            (self.workers is None or self.workers >= 0, f"--workers must be non-negative, got {self.workers}"),
            (self.limit is None or self.limit >= 1, f"--limit must be at least 1, got {self.limit}"),
            (0 <= self.label_smoothing < 1, f"label smoothing must be in [0, 1), got {self.label_smoothing}"),
            (self.distill == "none" or self.teacher, f"--distill {self.distill} needs --teacher (a checkpoint or model name)"),
            (0 <= self.reprob <= 1, f"--reprob must be a probability in [0, 1], got {self.reprob}"),
            (0 <= self.mix_prob <= 1, f"--mix-prob must be a probability in [0, 1], got {self.mix_prob}"),
            (0 <= self.switch_prob <= 1, f"--switch-prob must be a probability in [0, 1], got {self.switch_prob}"),
            (self.mixup >= 0 and self.cutmix >= 0, f"--mixup and --cutmix must be non-negative, got {self.mixup} "
             f"and {self.cutmix}"),
            (self.repeated_aug >= 1, f"--repeated-aug must be at least 1, got {self.repeated_aug}"),
            (self.frame_stride >= 1, f"--frame-stride must be at least 1, got {self.frame_stride}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        parse_randaugment(self.randaugment)

    def settings(self) -> dict:
        """What must not change between a run and its resumption."""
        keep = ("model", "data", "overrides", "epochs", "batch_size", "lr", "weight_decay", "warmup_epochs",
                "min_lr_ratio", "distill", "alpha", "tau", "seed", "limit", "randaugment", "reprob", "mixup",
                "cutmix", "mix_prob", "switch_prob", "repeated_aug", "frame_stride", "sampling")
        return {k: getattr(self, k) for k in keep}


@dataclass
class TrainResult:
    model: nn.Module
    history: list[dict]
    out_dir: Path
    train_time: float                     # seconds spent in this process's training epochs
    is_main: bool = True                  # rank 0 (the process that writes files and prints)


METRIC_FIELDS = ("epoch", "train_loss", "val_loss", "val_acc1", "val_acc5", "lr", "epoch_time")


def write_metrics(path: Path, history: list[dict]) -> None:
    def write(tmp):
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=METRIC_FIELDS, extrasaction="ignore")
            w.writeheader()
            w.writerows(history)

    _atomic_write(path, write)


def _seed_epoch(seed: int, epoch: int, rank: int) -> None:
    """Augmentation, dropout and drop-path draws of an epoch depend on (seed, epoch, rank) only, so a resumed
    run repeats exactly what an uninterrupted one does."""
    torch.manual_seed(seed * 1_000_003 + epoch * 1_009 + rank)


def build_model(cfg: TrainConfig) -> tuple[nn.Module, object, object]:
    """(model with the dataset's class count, train set, val set), seeded by cfg.seed."""
    probe = create_model(cfg.model, **cfg.overrides)
    shape = probe.input_shape()
    video = {"frame_stride": cfg.frame_stride, "sampling": cfg.sampling}
    train_set = build_dataset(cfg.data, "train", shape, data_cfg=model_data_config(probe),
                              randaugment=parse_randaugment(cfg.randaugment), reprob=cfg.reprob, **video)
    val_set = build_dataset(cfg.data, "val", shape, data_cfg=model_data_config(probe), **video)
    n = train_set.num_classes
    if "num_classes" in cfg.overrides and cfg.overrides["num_classes"] != n:
        raise ConfigError(f"num_classes={cfg.overrides['num_classes']} but the dataset {cfg.data!r} has {n} classes")
    torch.manual_seed(cfg.seed)
    model = create_model(cfg.model, **{**cfg.overrides, "num_classes": n})
    if cfg.limit is not None:
        train_set = Subset(train_set, range(min(cfg.limit, len(train_set))))
        train_set.num_classes = n
    return model, train_set, val_set


def train(cfg: TrainConfig, console=None) -> TrainResult:
    """Run `cfg`; returns the trained model (unwrapped), its per-epoch history and the run folder."""
    cfg.validate()
    info = init_distributed()
    try:
        return _train(cfg, info, console)
    finally:
        cleanup(info)


def _train(cfg: TrainConfig, info: DistInfo, console) -> TrainResult:
    from rich.console import Console

    console = console or Console(stderr=True)
    say = console.print if (info.is_main and cfg.progress) else (lambda *a, **k: None)
    out = cfg.out_dir()
    model, train_set, val_set = build_model(cfg)

    teacher = None
    if cfg.distill != "none":
        from .teacher import build_teacher

        teacher = build_teacher(cfg.teacher, num_classes=model.num_classes, weights=cfg.teacher_weights)
        t_classes = getattr(teacher, "num_classes", None)
        if t_classes is not None and t_classes != model.num_classes:
            raise ConfigError(f"the teacher predicts {t_classes} classes but the data has {model.num_classes}")
    # CrossEntropyLoss takes the soft (B, K) targets of Mixup/CutMix too, smoothing them as (1 - ε)·p + ε/K.
    criterion = DistillationLoss(nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing), teacher, cfg.distill,
                                 cfg.alpha, cfg.tau, cfg.soft_normalisation)

    workers = default_workers(cfg.data) if cfg.workers is None else cfg.workers
    generator = torch.Generator()
    if cfg.repeated_aug > 1:
        sampler = RepeatedAugSampler(train_set, info.world_size, info.rank, cfg.repeated_aug, seed=cfg.seed)
    elif info.enabled:
        sampler = DistributedSampler(train_set, info.world_size, info.rank, shuffle=True, seed=cfg.seed,
                                     drop_last=True)
    else:
        sampler = None
    collate = MixCollate(BatchMix(model.num_classes, cfg.mixup, cfg.cutmix, cfg.mix_prob, cfg.switch_prob)) \
        if cfg.mixup > 0 or cfg.cutmix > 0 else None
    drop_last = (len(sampler) if sampler is not None else len(train_set)) > cfg.batch_size  # per rank
    train_loader = DataLoader(train_set, cfg.batch_size, shuffle=sampler is None, sampler=sampler,
                              num_workers=workers, drop_last=drop_last, generator=generator, collate_fn=collate)
    val_loader = DataLoader(val_set, max(cfg.batch_size, 256), num_workers=workers)

    optimizer = build_optimizer(model, cfg.lr, cfg.weight_decay)
    steps = len(train_loader)
    total = max(1, cfg.epochs * steps)
    scheduler = WarmupCosine(optimizer, min(round(cfg.warmup_epochs * steps), total), total, cfg.min_lr_ratio)
    start_epoch, history = 0, []
    if cfg.resume:
        state = load_training_state(out / "last.pt")
        same = json.dumps(state["settings"], sort_keys=True) == json.dumps(cfg.settings(), sort_keys=True)  # tuples == lists
        if state["model_name"] != model.model_name or not same:
            raise CheckpointError(f"cannot resume from {str(out / 'last.pt')!r}: it was written by a run with other "
                                  "settings (model, data or schedule); use another --out or the same flags")
        load_state_dict(model, state["model"], str(out / "last.pt"))
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        set_rng_states(state["rng"])
        start_epoch, history = state["epoch"] + 1, list(state["history"])
        say(f"resuming {model.model_name} from {out / 'last.pt'} after epoch {state['epoch']}")

    train_model = wrap_ddp(DistillHeads(model) if criterion.kind != "none" and getattr(model, "head_dist", None)
                           is not None else model, info)
    if info.is_main:
        out.mkdir(parents=True, exist_ok=True)
        base = train_set.dataset if isinstance(train_set, Subset) else train_set
        (out / "data.json").write_text(json.dumps(data_info(cfg.data, base, model.input_shape()[0],
                                                            model_data_config(model))))
    elapsed = 0.0
    for epoch in range(start_epoch, cfg.epochs):
        _seed_epoch(cfg.seed, epoch, info.rank)
        generator.manual_seed(cfg.seed * 1_000_003 + epoch)
        if sampler is not None:
            sampler.set_epoch(epoch)
        t0 = time.perf_counter()
        try:
            stats = train_one_epoch(train_model, train_loader, criterion, optimizer, scheduler, epoch,
                                    cfg.clip_grad, cfg.bf16, progress=info.is_main and cfg.progress)
        except DivergedError as e:
            kept = f"; the last good checkpoint is {str(out / 'last.pt')!r}" if (out / "last.pt").exists() else ""
            raise DivergedError(f"{e}{kept}") from None
        val = evaluate(model, val_loader, cfg.bf16)
        dt = time.perf_counter() - t0
        elapsed += dt
        row = {"epoch": epoch, "train_loss": round(stats["train_loss"], 5), "val_loss": round(val["loss"], 5),
               "val_acc1": round(val["acc1"], 3), "val_acc5": round(val["acc5"], 3), "lr": stats["lr"],
               "epoch_time": round(dt, 3)}
        history.append(row)
        if info.is_main:
            save_training_state(out / "last.pt", model, optimizer, scheduler, epoch, history, cfg.settings())
            write_metrics(out / "metrics.csv", history)
        say(f"epoch {epoch + 1}/{cfg.epochs}  loss {row['train_loss']:.4f}  val acc {row['val_acc1']:.2f}%  "
            f"({dt:.1f}s)")
        barrier(info)
    if info.is_main:
        save_checkpoint(model, out / "model.safetensors")
    return TrainResult(model, history, out, elapsed, info.is_main)
