"""Run-time switches of the shared layers, held in one place (as timm's `set_layer_config`).

- `onednn_linear_infer` / `onednn_linear_train`: whether `Linear`'s fp32 CPU products go through oneDNN, for
  calls that record no gradient and for calls that do. The defaults follow `vitkit.routes.linear_route` for
  this processor; `VITKIT_ONEDNN_LINEAR=0` (or `1`) forces both off (on) for a whole process and is read here,
  when the switches are first needed.
- `math_attention_max_tokens`: `attend` writes attention out (instead of SDPA) for calls that record gradients
  on the CPU with at most this many keys (`vitkit.routes.math_attention_max_tokens`; 0: never).
- `RECORDERS`: the recorders of the active `vitkit.record_attention` contexts (innermost last).

`set_layer_config(...)` changes the switches for the process and returns the previous ones; used as a context
manager it restores them on exit.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass

from torch import Tensor

from ..routes import linear_route, math_attention_max_tokens, processor

# The recorders of the active `record_attention` contexts (innermost last). They observe only: no output changes.
RECORDERS: list[Callable[[Tensor], None]] = []


@dataclass(frozen=True)
class LayerConfig:
    onednn_linear_infer: bool
    onednn_linear_train: bool
    math_attention_max_tokens: int = 0


def _default() -> LayerConfig:
    cpu = processor("cpu")
    infer, train = bool(linear_route(cpu, training=False).value), bool(linear_route(cpu, training=True).value)
    forced = os.environ.get("VITKIT_ONEDNN_LINEAR", "").strip().lower()
    if forced in ("0", "1", "false", "true", "off", "on"):
        infer = train = forced in ("1", "true", "on")
    return LayerConfig(infer, train, int(math_attention_max_tokens(cpu).value))


_CONFIG: list[LayerConfig] = []  # one entry once read: the switches now in force


def layer_config() -> LayerConfig:
    """The switches now in force."""
    if not _CONFIG:
        _CONFIG.append(_default())
    return _CONFIG[0]


class set_layer_config:
    """Set any of the switches (None: unchanged). `set_layer_config(onednn_linear=False)` sets both linear
    switches; `with set_layer_config(...):` restores the previous ones on exit. `.previous` holds them."""

    def __init__(self, *, onednn_linear: bool | None = None, onednn_linear_infer: bool | None = None,
                 onednn_linear_train: bool | None = None, math_attention_max_tokens: int | None = None):
        self.previous = layer_config()
        infer = onednn_linear if onednn_linear_infer is None else onednn_linear_infer
        train = onednn_linear if onednn_linear_train is None else onednn_linear_train
        changes = {k: bool(v) for k, v in (("onednn_linear_infer", infer), ("onednn_linear_train", train))
                   if v is not None}
        if math_attention_max_tokens is not None:
            changes["math_attention_max_tokens"] = int(math_attention_max_tokens)
        _CONFIG[0] = dataclasses.replace(self.previous, **changes)

    def __enter__(self) -> set_layer_config:
        return self

    def __exit__(self, *exc) -> None:
        _CONFIG[0] = self.previous
