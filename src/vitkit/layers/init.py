"""Initialisation as in the papers' code: truncated normal std .02 for linears and tokens."""

from __future__ import annotations

from torch import Tensor, nn


def trunc_normal_(t: Tensor, std: float = 0.02) -> Tensor:
    """Truncated normal at ±2 std (timm/DeiT convention)."""
    return nn.init.trunc_normal_(t, std=std, a=-2 * std, b=2 * std)


def init_weights(module: nn.Module) -> None:
    """Linear: trunc-normal(.02), zero bias; LayerNorm: weight 1, bias 0. Use with `model.apply`."""
    if isinstance(module, nn.Linear):
        trunc_normal_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm) and module.elementwise_affine:
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
