"""AdamW (DeiT, Swin, CvT, MViT) or SGD with momentum (TimeSformer, ViViT) with the usual no-decay groups:
biases, norm weights (every 1-D parameter) and the model's `no_weight_decay()` names (class/distillation tokens,
position tables) are not decayed. With a layer decay rate, each (layer, decay) pair is its own group with
lr · rate^(L + 1 − layer) (see `layer_decay`)."""

from __future__ import annotations

import torch
from torch import nn

from ..errors import ConfigError
from .layer_decay import lr_scales

OPTIMIZERS = ("adamw", "sgd")


def param_groups(model: nn.Module, weight_decay: float, layer_decay: float | None = None) -> list[dict]:
    """Groups over the trainable parameters of `model`, each with "params", "weight_decay" and "lr_scale":
    [{with decay}, {without}] or, with `layer_decay`, one pair per distinct scale (deepest layers first)."""
    skip = model.no_weight_decay() if hasattr(model, "no_weight_decay") else set()
    scales = lr_scales(model, layer_decay) if layer_decay is not None else {}
    groups: dict[tuple[float, bool], dict] = {}
    if not scales:  # the two plain groups exist even when one is empty
        groups = {(1.0, True): {"params": [], "weight_decay": weight_decay, "lr_scale": 1.0},
                  (1.0, False): {"params": [], "weight_decay": 0.0, "lr_scale": 1.0}}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        decay = not (p.ndim <= 1 or name in skip)
        scale = scales.get(name, 1.0)
        group = groups.setdefault((scale, decay), {"params": [], "weight_decay": weight_decay if decay else 0.0,
                                                   "lr_scale": scale})
        group["params"].append(p)
    return list(groups.values())


def build_optimizer(model: nn.Module, lr: float, weight_decay: float = 0.05,
                    betas: tuple[float, float] = (0.9, 0.999), layer_decay: float | None = None, opt: str = "adamw",
                    momentum: float = 0.9, nesterov: bool = False) -> torch.optim.Optimizer:
    """AdamW, or SGD with `momentum` (optionally Nesterov's), whose groups start at lr · lr_scale (the schedule
    then scales every group alike)."""
    if opt not in OPTIMIZERS:
        raise ConfigError(f"--opt must be one of {', '.join(OPTIMIZERS)}, got {opt!r}")
    groups = param_groups(model, weight_decay, layer_decay)
    for g in groups:
        g["lr"] = lr * g["lr_scale"]
    if opt == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=nesterov and momentum > 0)
    return torch.optim.AdamW(groups, lr=lr, betas=betas, fused=_fusable(groups))


def _fusable(groups: list[dict]) -> bool | None:
    """AdamW's fused kernel (one pass over all tensors) where every parameter allows it: plain fp32/bf16 tensors
    on the CPU or a CUDA device (FSDP's DTensors keep the default). On the main job's student it cut the
    optimiser step from 17 to 5 ms (benchmarks/bench_optimizer.py)."""
    params = [p for g in groups for p in g["params"]]
    ok = all(type(p.data) is torch.Tensor and p.device.type in ("cpu", "cuda") and p.is_floating_point()
             for p in params)
    return True if ok and params else None
