"""Learning-rate schedule stepped once per optimiser step: linear warm-up (from 0 or timm's --warmup-lr), then
cosine decay to a floor, or (TimeSformer's steps_with_relative_lrs) a step decay at milestones."""

from __future__ import annotations

import math

import torch


class WarmupCosine:
    """lr(s) = base · (w + (1 − w)·s'/W) for s' = s + 1 ≤ W, then min + (base − min) · ½(1 + cos(π·(s' − W)/(S − W)))
    with w = warmup_ratio and min = base · min_lr_ratio; with `milestones` (optimiser steps) the lr after the
    warm-up is base · decay_rate^(milestones passed) instead of the cosine.

    Steps are optimiser steps (not epochs), so short runs on small data still warm up smoothly. Each param
    group keeps its own base lr; `state_dict` holds the step count only, so resuming continues the curve."""

    def __init__(self, optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int,
                 min_lr_ratio: float = 0.01, warmup_ratio: float = 0.0, milestones: tuple[int, ...] = (),
                 decay_rate: float = 0.1):
        assert total_steps >= 1 and 0 <= warmup_steps <= total_steps
        self.optimizer = optimizer
        self.warmup_steps, self.total_steps, self.min_lr_ratio = warmup_steps, total_steps, min_lr_ratio
        self.warmup_ratio, self.milestones, self.decay_rate = warmup_ratio, tuple(milestones), decay_rate
        self.base_lrs = [g.setdefault("initial_lr", g["lr"]) for g in optimizer.param_groups]
        self.step_count = 0
        self._apply()

    def factor(self, step: int) -> float:
        s = step + 1
        if s <= self.warmup_steps:
            return self.warmup_ratio + (1 - self.warmup_ratio) * s / self.warmup_steps
        if self.milestones:
            return self.decay_rate ** sum(step >= m for m in self.milestones)
        span = max(1, self.total_steps - self.warmup_steps)
        progress = min(1.0, (s - self.warmup_steps) / span)
        return self.min_lr_ratio + (1 - self.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    def _apply(self) -> None:
        f = self.factor(self.step_count)
        for g, base in zip(self.optimizer.param_groups, self.base_lrs):
            g["lr"] = base * f

    def step(self) -> None:
        self.step_count += 1
        self._apply()

    def get_last_lr(self) -> list[float]:
        return [g["lr"] for g in self.optimizer.param_groups]

    def state_dict(self) -> dict:
        return {"step_count": self.step_count, "base_lrs": list(self.base_lrs)}

    def load_state_dict(self, state: dict) -> None:
        self.step_count, self.base_lrs = state["step_count"], list(state["base_lrs"])
        self._apply()
