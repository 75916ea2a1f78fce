"""What every vitkit model shares: its config, its input shape, the hooks checkpoints use, and the small checks
each family's `validate_config` is made of (each raises ConfigError with one sentence)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from torch import Tensor, nn

from ..errors import ConfigError
from ..layers import Linear
from ..layers.checkpointing import set_grad_checkpointing


def to_2tuple(v: int | tuple[int, int]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)


def check_at_least(cfg: Any, minimum: int, *names: str) -> None:
    """Every named option (an int or a tuple of ints) is ≥ minimum (1 for sizes, heads and strides, 0 for paddings)."""
    for name in names:
        value = getattr(cfg, name)
        if any(v < minimum for v in (value if isinstance(value, tuple) else (value,))):
            raise ConfigError(f"{name} {value} must be {'positive' if minimum == 1 else f'at least {minimum}'}"
                              f"{' in every entry' if isinstance(value, tuple) else ''}")


def check_divisible(name: str, value: int, by_name: str, by: int, expected: str | None = None) -> None:
    """value % by == 0, e.g. a width and its head count."""
    if value % by:
        raise ConfigError(f"{name} {value} is not divisible by {by_name} {by}; "
                          f"{expected or f'choose {by_name} dividing {name}'}")


def check_per_stage(cfg: Any, num_stages: int, source: str, names: Iterable[str]) -> None:
    """Each named per-stage tuple has one value per stage (num_stages, counted from the option `source`)."""
    bad = {n: getattr(cfg, n) for n in names if len(getattr(cfg, n)) != num_stages}
    if num_stages == 0 or bad:
        raise ConfigError(f"per-stage options must have one value per stage, with at least one stage ({num_stages} "
                          f"from {source}), got {', '.join(f'{n}={v}' for n, v in bad.items()) or f'{source}=()'}")


def check_choice(name: str, value: str, choices: Iterable[str]) -> None:
    """value is one of the accepted strings."""
    choices = tuple(choices)
    if value not in choices:
        raise ConfigError(f"{name} must be {', '.join(map(repr, choices[:-1]))} or {choices[-1]!r}, got {value!r}")


def check_patch_multiple(img_size: int | tuple[int, int], patch_size: int) -> None:
    """Both sides of the image the model is built for are multiples of the patch size."""
    if any(s % patch_size for s in to_2tuple(img_size)):
        raise ConfigError(f"img_size {img_size} is not divisible by the patch size (patch_size {patch_size}); choose an "
                          f"image size whose sides it divides")


class VitkitModel(nn.Module):
    """Base of every model: `config` (a frozen dataclass) rebuilds it; `adapt_state_dict` lets a checkpoint
    saved at another size load (position tables resampled, derived buffers rebuilt)."""

    config: Any
    model_name: str | None = None
    is_video: bool = False
    num_classes: int
    num_features: int

    def input_shape(self) -> tuple[int, ...]:
        """(C, H, W) for images, (C, T, H, W) for videos, from the config."""
        c = self.config
        hw = to_2tuple(c.img_size)
        return (c.in_chans, c.num_frames, *hw) if self.is_video else (c.in_chans, *hw)

    def no_weight_decay(self) -> set[str]:
        """Parameter names excluded from weight decay besides biases and norms (tokens, position tables)."""
        return set()

    def adapt_state_dict(self, state_dict: dict[str, Tensor]) -> dict[str, Tensor]:
        """Reshape entries of a checkpoint from another size to this model's sizes; default: unchanged."""
        return state_dict

    def forward_features(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        """x: images (B, C, H, W) or videos (B, C, T, H, W) -> logits (B, num_classes) (features (B, num_features)
        when num_classes is 0)."""
        return self.forward_head(self.forward_features(x))

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute each block's activations in the backward pass (non-reentrant activation checkpointing)."""
        set_grad_checkpointing(self, enable)

    def new_head(self, num_classes: int) -> nn.Module:
        """The classifier on pooled features: Linear(num_features, num_classes), or Identity for 0 classes."""
        return Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the classifier (fine-tuning on another label set); the config follows."""
        self.num_classes = num_classes
        self.config = replace(self.config, num_classes=num_classes)
        self.head = self.new_head(num_classes)
