"""What a run takes from the papers' recipes beyond the model and the loss: checks of the recipe keys, the
schedule (warm-up from timm's --warmup-lr, cosine to an absolute --min-lr or a ratio, or TimeSformer's step
decay), the model's data config with the recipe's crop_pct, the video papers' training crops and colours, and
the final multi-view evaluation (`test_views`, clips × crops) the video papers report."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from ..data import build_dataset, default_workers, model_data_config
from ..data.video_augment import ColourAugment, ShortSideJitter
from ..data.video_folder import ViewAverage, parse_views
from ..errors import ConfigError
from .lr_rule import check_lr_rule
from .optim import OPTIMIZERS
from .schedule import WarmupCosine

SCHEDULES = ("cosine", "multistep")


def check_recipe(cfg) -> None:
    """ConfigError (one sentence) for a bad recipe key of a TrainConfig."""
    check_lr_rule(cfg.lr_base, cfg.lr_base_size, cfg.lr_rule)
    milestones = list(cfg.decay_milestones or ())
    checks = [
        (cfg.opt in OPTIMIZERS, f"--opt must be one of {', '.join(OPTIMIZERS)}, got {cfg.opt!r}"),
        (0 <= cfg.momentum < 1, f"--momentum must be in [0, 1), got {cfg.momentum}"),
        (cfg.warmup_lr >= 0, f"--warmup-lr must be non-negative, got {cfg.warmup_lr}"),
        (cfg.min_lr is None or cfg.min_lr >= 0, f"--min-lr must be non-negative, got {cfg.min_lr}"),
        (cfg.sched in SCHEDULES, f"sched must be one of {', '.join(SCHEDULES)}, got {cfg.sched!r}"),
        (cfg.sched != "multistep" or (milestones and milestones == sorted(milestones) and milestones[0] > 0),
         f"sched multistep needs increasing positive decay_milestones (epochs), got {milestones}"),
        (0 < cfg.decay_rate <= 1, f"decay_rate must be in (0, 1], got {cfg.decay_rate}"),
        (cfg.crop_pct is None or 0 < cfg.crop_pct <= 1, f"--crop-pct must be in (0, 1], got {cfg.crop_pct}"),
        (cfg.ref_global_batch is None or cfg.ref_global_batch >= 1,
         f"ref_global_batch must be a positive integer, got {cfg.ref_global_batch}"),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)
    if cfg.scale_jitter is not None:
        ShortSideJitter(cfg.scale_jitter, cfg.aspect_jitter)
    elif cfg.aspect_jitter is not None:
        raise ConfigError("aspect_jitter needs scale_jitter (it scales the jittered shorter side)")
    if cfg.color_augment is not None:
        try:
            ColourAugment(*cfg.color_augment)
        except TypeError:
            raise ConfigError(f"color_augment expects [p, p_drop], got {cfg.color_augment!r}") from None
    parse_views(cfg.test_views)


def build_schedule(cfg, optimizer: torch.optim.Optimizer, steps: int) -> WarmupCosine:
    """The run's schedule over `steps` optimiser steps per epoch; absolute lrs become ratios of cfg.lr (the peak),
    so layer-decay groups scale alike (as timm's lr_scale); with cfg.max_steps it spans that many steps at most."""
    total = total_steps(cfg, steps)
    min_ratio = cfg.min_lr / cfg.lr if cfg.min_lr is not None else cfg.min_lr_ratio
    milestones = tuple(round(e * steps) for e in cfg.decay_milestones) if cfg.sched == "multistep" else ()
    return WarmupCosine(optimizer, min(round(cfg.warmup_epochs * steps), total), total, min_ratio,
                        warmup_ratio=cfg.warmup_lr / cfg.lr, milestones=milestones, decay_rate=cfg.decay_rate)


def total_steps(cfg, steps: int) -> int:
    """The run's optimiser steps in all: `steps` per epoch for cfg.epochs, cut at cfg.max_steps."""
    return max(1, min(cfg.epochs * steps, cfg.max_steps or cfg.epochs * steps))


def run_data_config(cfg, model: nn.Module) -> dict | None:
    """The model's data config, with the recipe's crop_pct."""
    data_cfg = model_data_config(model)
    if data_cfg is not None and cfg.crop_pct is not None:
        data_cfg = {**data_cfg, "crop_pct": cfg.crop_pct}
    return data_cfg


def train_options(cfg) -> dict:
    """The video papers' training crop and colours for the training pipeline (empty: DeiT's)."""
    keys = ("scale_jitter", "aspect_jitter", "color_augment")
    return {k: getattr(cfg, k) for k in keys if getattr(cfg, k) is not None}


def views_evaluation(cfg, model: nn.Module, device: torch.device, precision: str, say, out: Path) -> dict | None:
    """With test_views other than 1x1 on a video folder: the validation set's top-1 / top-5 over clips × crops
    (logits averaged), printed and written to <out>/test_views.json."""
    from .engine import evaluate

    views = parse_views(cfg.test_views)
    if views == (1, 1):
        return None
    if not Path(cfg.data).is_dir():
        say(f"test views {cfg.test_views} need a video folder; {cfg.data!r} is evaluated with one view")
        return None
    val = build_dataset(cfg.data, "val", model.input_shape(), augment=False, data_cfg=run_data_config(cfg, model),
                        frame_stride=cfg.frame_stride, sampling=cfg.sampling, test_views=views)
    workers = default_workers(cfg.data) if cfg.workers is None else cfg.workers
    loader = torch.utils.data.DataLoader(val, max(1, cfg.batch_size // (views[0] * views[1])), num_workers=workers)
    m = evaluate(ViewAverage(model), loader, precision, device)
    result = {"test_views": cfg.test_views, "acc1": round(m["acc1"], 3), "acc5": round(m["acc5"], 3),
              "loss": round(m["loss"], 5)}
    (out / "test_views.json").write_text(json.dumps(result))
    say(f"{cfg.test_views} views (clips × crops): val top-1 {m['acc1']:.2f}%  top-5 {m['acc5']:.2f}%")
    return result
