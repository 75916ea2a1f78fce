"""Exponential moving average of the weights (Polyak averaging as DeiT/timm train with): after every optimiser
step ema ← decay · ema + (1 − decay) · weights, the first step copying the weights. Built on
`torch.optim.swa_utils.AveragedModel` with its `get_ema_multi_avg_fn`; buffers (BatchNorm statistics, derived
index tables) are copied, not averaged, since some are integers.

`every` N > 1 averages only every N-th step with decay^N, so the average spans the same number of steps; on the
host (`device` cpu) that keeps the device free and the host-device copy of the weights to one per N steps. Under
FSDP the copy is sharded like the model (its parameters are DTensors on the same mesh) and the averaging runs on
the local shards."""

from __future__ import annotations

import contextlib

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn


class EMA(AveragedModel):
    """`ema.module` is the averaged copy of `model`, on `device`; `state_dict` includes the update count."""

    def __init__(self, model: nn.Module, decay: float, device: torch.device | None = None, every: int = 1):
        super().__init__(model, device=device, multi_avg_fn=get_ema_multi_avg_fn(decay ** every), use_buffers=False)
        self.decay, self.every = decay, every
        self.register_buffer("steps_seen", torch.tensor(0, dtype=torch.long, device=device))
        self._seen: int | None = None  # the host's copy of steps_seen: read once, not synced every step

    def load_state_dict(self, *args, **kwargs):
        self._seen = None  # read again from the loaded buffer
        return super().load_state_dict(*args, **kwargs)

    @torch.no_grad()
    def update_parameters(self, model: nn.Module) -> None:
        """Called after every optimiser step; averages on every `every`-th (the first step included)."""
        seen = int(self.steps_seen) if self._seen is None else self._seen
        self._seen = seen + 1
        self.steps_seen += 1
        if seen % self.every:
            return
        super().update_parameters(model)
        for mine, theirs in zip(self.module.buffers(), model.buffers()):
            mine.copy_(theirs)

    @contextlib.contextmanager
    def on(self, device: torch.device):
        """`self.module` on `device` for the duration (evaluating a host-memory EMA on the accelerator)."""
        from .fsdp import is_sharded

        home = next(self.module.parameters()).device
        if home == device or is_sharded(self.module):  # FSDP moves a sharded copy's units to the device itself
            yield self.module
            return
        self.module.to(device)
        try:
            yield self.module
        finally:
            self.module.to(home)
