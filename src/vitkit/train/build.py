"""What a run's TrainConfig names, built: the model with the data's class count and the data sets, the loss with
its teacher, and what a resumed run must match. Objects given by the caller (the Trainer's `model=`,
`train_set=`, `val_set=`, `teacher=`) are used as they are instead."""

from __future__ import annotations

import json

import torch
from torch import nn
from torch.utils.data import Dataset, Subset

from ..data import build_dataset
from ..errors import ConfigError
from ..registry import create_model
from .config import TrainConfig
from .losses import TEACHERLESS, DistillationLoss
from .recipe import run_data_config, train_options


def _datasets(cfg: TrainConfig, probe: nn.Module) -> tuple[Dataset, Dataset]:
    shape = probe.input_shape()
    data_cfg, video = run_data_config(cfg, probe), {"frame_stride": cfg.frame_stride, "sampling": cfg.sampling}
    train_set = build_dataset(cfg.data, "train", shape, augment=cfg.augment, data_cfg=data_cfg,
                              randaugment=cfg.randaugment, reprob=cfg.reprob, train_options=train_options(cfg),
                              **video)
    return train_set, build_dataset(cfg.data, "val", shape, data_cfg=data_cfg, **video)


def _num_classes(cfg: TrainConfig, model: nn.Module | None, train_set: Dataset) -> int:
    n = getattr(train_set, "num_classes", None)
    n = n if n is not None else getattr(model, "num_classes", None) or cfg.overrides.get("num_classes")
    if n is None:
        raise ConfigError("the training set has no num_classes attribute; give it one, a model, or "
                          "overrides={'num_classes': K}")
    return n


def build_model(cfg: TrainConfig, model: nn.Module | None = None, train_set: Dataset | None = None,
                val_set: Dataset | None = None) -> tuple[nn.Module, Dataset, Dataset]:
    """(model with the dataset's class count, train set, val set), seeded by cfg.seed; `cfg.limit` keeps the
    first samples of the training set."""
    probe = model
    if probe is None:
        with torch.device("meta"):
            probe = create_model(cfg.model, **cfg.overrides)
    if train_set is None or val_set is None:
        built = _datasets(cfg, probe)
        train_set = built[0] if train_set is None else train_set
        val_set = built[1] if val_set is None else val_set
    n = _num_classes(cfg, model, train_set)
    if model is None:
        if "num_classes" in cfg.overrides and cfg.overrides["num_classes"] != n:
            raise ConfigError(f"num_classes={cfg.overrides['num_classes']} but the dataset {cfg.data!r} has {n} classes")
        torch.manual_seed(cfg.seed)
        model = create_model(cfg.model, **{**cfg.overrides, "num_classes": n})
    if cfg.limit is not None:
        train_set = Subset(train_set, range(min(cfg.limit, len(train_set))))
        train_set.num_classes = n
    return model, train_set, val_set


def build_criterion(cfg: TrainConfig, num_classes: int, device: torch.device,
                    teacher: nn.Module | None = None) -> DistillationLoss:
    """The run's loss: label-smoothed cross-entropy, wrapped with DeiT's distillation when cfg.distill is set
    (the teacher named by cfg.teacher, or the one given)."""
    if cfg.distill not in TEACHERLESS:
        if teacher is None:
            from .teacher import build_teacher

            teacher = build_teacher(cfg.teacher, num_classes=num_classes, weights=cfg.teacher_weights)
        t_classes = getattr(teacher, "num_classes", None)
        if t_classes is not None and t_classes != num_classes:
            raise ConfigError(f"the teacher predicts {t_classes} classes but the data has {num_classes}")
        teacher = teacher.to(device)
    else:
        teacher = None
    return DistillationLoss(nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing), teacher, cfg.distill,
                            cfg.alpha, cfg.tau, cfg.soft_normalisation)


def changed_settings(saved: dict, current: dict) -> list[str]:
    """'name (old -> new)' for every setting that differs (tuples and lists compare equal, as in JSON)."""
    norm = lambda v: json.dumps(v, sort_keys=True)
    return [f"{k} ({saved.get(k, 'unset')!r} -> {current.get(k, 'unset')!r})" for k in sorted(set(saved) | set(current))
            if norm(saved.get(k)) != norm(current.get(k))]


def route_key(cfg: TrainConfig, model: nn.Module) -> dict:
    """What a timing of the routes depends on besides the machine: the model, its input, the batch, the loss."""
    return {"model": model.model_name, "config": repr(getattr(model, "config", cfg.overrides)),
            "batch": cfg.batch_size, "distill": cfg.distill, "teacher": cfg.teacher,
            "grad_checkpointing": cfg.grad_checkpointing}
