"""Transformer feed-forward block."""

from __future__ import annotations

from torch import Tensor, nn


class Mlp(nn.Module):
    """Linear -> activation -> dropout -> Linear -> dropout: (..., D_in) -> (..., D_out)."""

    def __init__(self, in_features: int, hidden_features: int, out_features: int | None = None,
                 act_layer: type[nn.Module] = nn.GELU, drop: float = 0.0):
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = act_layer()
        self.fc2 = nn.Linear(hidden_features, out_features or in_features)
        self.drop = nn.Dropout(drop) if drop > 0 else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class QuickGELU(nn.Module):
    """x·σ(1.702x): the GELU approximation used by CvT's official code (and CLIP)."""

    def forward(self, x: Tensor) -> Tensor:
        return x * (1.702 * x).sigmoid()
