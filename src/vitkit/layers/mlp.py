"""Transformer feed-forward block and the activations the papers use, by config name."""

from __future__ import annotations

from torch import Tensor, nn

from ..errors import ConfigError
from .linear import Linear


class Mlp(nn.Module):
    """Linear -> activation -> dropout -> Linear -> dropout: (..., D_in) -> (..., D_out)."""

    def __init__(self, in_features: int, hidden_features: int, out_features: int | None = None,
                 act_layer: type[nn.Module] = nn.GELU, drop: float = 0.0):
        super().__init__()
        self.fc1 = Linear(in_features, hidden_features)
        self.act = act_layer()
        self.fc2 = Linear(hidden_features, out_features or in_features)
        self.drop = nn.Dropout(drop) if drop > 0 else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class QuickGELU(nn.Module):
    """x·σ(1.702x): the GELU approximation used by CvT's official code (and CLIP)."""

    def forward(self, x: Tensor) -> Tensor:
        return x * (1.702 * x).sigmoid()


class TanhGELU(nn.GELU):
    """GELU with the tanh approximation: Flax's default `nn.gelu` (so scenic's ViViT), HF's gelu_fast/gelu_new."""

    def __init__(self):
        super().__init__(approximate="tanh")


ACTIVATIONS: dict[str, type[nn.Module]] = {"gelu": nn.GELU, "gelu_tanh": TanhGELU, "quick_gelu": QuickGELU}


def activation(name: str) -> type[nn.Module]:
    """The activation class for a config's `act_layer` name."""
    if name not in ACTIVATIONS:
        raise ConfigError(f"act_layer must be one of {', '.join(ACTIVATIONS)}, got {name!r}")
    return ACTIVATIONS[name]
