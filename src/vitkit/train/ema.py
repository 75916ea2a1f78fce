"""Exponential moving average of the weights (Polyak averaging as DeiT/timm train with): after every optimiser
step ema ← decay · ema + (1 − decay) · weights, the first step copying the weights. Built on
`torch.optim.swa_utils.AveragedModel` with its `get_ema_multi_avg_fn`; buffers (BatchNorm statistics, derived
index tables) are copied, not averaged, since some are integers."""

from __future__ import annotations

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn


class EMA(AveragedModel):
    """`ema.module` is the averaged copy of `model`, on `device`; `state_dict` includes the update count."""

    def __init__(self, model: nn.Module, decay: float, device: torch.device | None = None):
        super().__init__(model, device=device, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=False)
        self.decay = decay

    @torch.no_grad()
    def update_parameters(self, model: nn.Module) -> None:
        super().update_parameters(model)
        for mine, theirs in zip(self.module.buffers(), model.buffers()):
            mine.copy_(theirs)
