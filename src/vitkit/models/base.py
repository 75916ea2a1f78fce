"""What every vitkit model shares: its config, its input shape, and the hooks checkpoints use."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from torch import Tensor, nn

from ..layers import Linear
from ..layers.checkpointing import set_grad_checkpointing


def to_2tuple(v: int | tuple[int, int]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)


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
