"""Activation (gradient) checkpointing as a property of the blocks: a block class that mixes in
`GradCheckpointing` recomputes its activations in the backward pass instead of storing them, when enabled and
training with gradients. Non-reentrant `torch.utils.checkpoint` (keyword arguments, hooks and
`torch.compile` work; the RNG state is replayed, so dropout and drop-path draw the same masks)."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from ..errors import ConfigError


class GradCheckpointing(nn.Module):
    """Mixin placed before nn.Module's other bases: `class Block(GradCheckpointing, nn.Module)`."""

    grad_checkpointing: bool = False

    def __call__(self, *args, **kwargs):
        if self.grad_checkpointing and self.training and torch.is_grad_enabled():
            return checkpoint(super().__call__, *args, use_reentrant=False, **kwargs)
        return super().__call__(*args, **kwargs)


def set_grad_checkpointing(model: nn.Module, enable: bool = True) -> int:
    """Turn checkpointing on/off for every checkpointable block of `model`; returns how many there are."""
    blocks = [m for m in model.modules() if isinstance(m, GradCheckpointing)]
    if enable and not blocks:
        raise ConfigError(f"--grad-checkpointing: {type(model).__name__} has no checkpointable blocks; expected a "
                          "vitkit transformer (ViT, DeiT, Swin, CvT, ViViT, TimeSformer or MViT)")
    for m in blocks:
        m.grad_checkpointing = enable
    return len(blocks)
