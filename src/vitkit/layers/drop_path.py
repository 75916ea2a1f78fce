"""Stochastic depth (Huang et al., 2016): drop whole residual branches per sample while training."""

from __future__ import annotations

from torch import Tensor, nn


def drop_path_rates(rate: float, depth: int) -> list[float]:
    """Linear schedule 0 -> rate over `depth` blocks; each block gets its own rate (not the max)."""
    if depth <= 1:
        return [0.0] * depth
    return [rate * i / (depth - 1) for i in range(depth)]


class DropPath(nn.Module):
    """Zero a residual branch for a random subset of samples and rescale the rest; identity in eval."""

    def __init__(self, p: float = 0.0):
        super().__init__()
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask.div_(keep)  # scale the (B, 1, ...) mask, not the full tensor

    def extra_repr(self) -> str:
        return f"p={self.p}"


def drop_path(p: float) -> nn.Module:
    """DropPath, or Identity when the rate is zero (nothing to do at run time)."""
    return DropPath(p) if p > 0 else nn.Identity()
