"""An epoch's training metrics without a host sync per micro-batch, and the guard that keeps a non-finite step
out of the weights in between.

Each micro-batch's loss and each optimiser step's gradient norm stay device tensors until a sync point (every
`log_interval` optimiser steps, before a checkpoint, at the epoch's end; timm's `--log-interval`). There the
losses are averaged over the ranks in one all-reduce, everything is read in one device-to-host copy, checked for
finiteness in step order (the first non-finite value raises DivergedError naming its epoch and step, on every
rank, since the values are all-reduced or computed from all-reduced gradients) and folded into the epoch's
running sums exactly as a per-micro-batch `.item()` would have folded them (same float32 values, same order).

Between sync points nothing on the host knows whether a step was finite, so `UpdateGuard` decides on the device,
from a sticky flag `bad` (any of this rank's micro-batch losses or the gradient norm non-finite, now or at an
earlier step since the last sync). A fused optimiser (AdamW's fused kernel, which train/optim.py picks where
it can) takes the flag as its `found_inf`, GradScaler's protocol: the kernel then leaves weights, moments and
step count as they were, at no cost. Any other optimiser steps, and the weights copied before the step are put
back where the flag is set (`torch.where`, which a NaN update cannot leak through, unlike `w + 0 · Δ`); its
moments may absorb the bad step, but the run raises at the next sync point and resumes from its last
checkpoint, which is only ever written after a sync. Either way the weights in memory stay those of the last
finite step. A step that closes an interval is checked on the host before its `optimizer.step()`, so with
`log_interval` 1 the guard never runs and a run is what it was with a check per micro-batch. Under fp16 the
GradScaler skips non-finite steps itself (and syncs to do so)."""

from __future__ import annotations

import math

import torch
import torch.distributed as dist
from torch import Tensor

from ..errors import VitkitError
from .distributed import DistInfo


class DivergedError(VitkitError):
    """The loss or the gradient became NaN or infinite; training stops and the last good checkpoint is kept."""


def new_totals() -> dict:
    """An epoch's running sums (what a mid-epoch checkpoint stores, so a resumed epoch reports the whole one)."""
    return {"loss_sum": 0.0, "count": 0, "skipped": 0, "grad_norm": 0.0, "time": 0.0}


class StepMeter:
    """Pending per-step values on the device, `totals` on the host; `sync()` moves the first into the second.
    `listeners` get each sync's rows (callbacks' `on_sync`); `batches` counts the epoch's micro-batches so far."""

    def __init__(self, info: DistInfo, epoch: int, totals: dict | None = None, listeners=()):
        self.info, self.epoch, self.listeners = info, epoch, list(listeners)
        self.totals = dict(totals or new_totals())
        self.batches = 0
        self._losses: list[Tensor] = []   # () float32 per micro-batch, this rank's
        self._sizes: list[int] = []       # samples per micro-batch
        self._steps: list[tuple[int, float, int, bool]] = []  # (step, lr, micro-batches, check the norm)
        self._norms: list[Tensor] = []    # () per step, computed from all-reduced gradients
        self._stepped = 0                 # pending micro-batches that belong to an added step

    def add_loss(self, loss: Tensor, samples: int) -> None:
        self._losses.append(loss.detach().float().reshape(()))
        self._sizes.append(samples)
        self.batches += 1

    def add_step(self, step: int, lr: float, norm: Tensor, check_norm: bool) -> None:
        micro = len(self._losses) - self._stepped  # the micro-batches since the previous step
        self._stepped = len(self._losses)
        self._steps.append((step, lr, micro, check_norm))
        self._norms.append(norm.detach().float().reshape(()))

    def step_losses(self) -> Tensor:
        """(micro-batches,) this rank's losses of the step being added last (for the guard)."""
        n = self._steps[-1][2]
        return torch.stack(self._losses[len(self._losses) - n:])

    def sync(self) -> list[dict]:
        """Reduce, read and check the pending steps; returns their rows (epoch, step, loss, lr, grad_norm)."""
        if not self._steps:
            return []
        losses, norms = self._read()
        rows, k = [], 0
        for (step, lr, n, check), norm in zip(self._steps, norms):
            loss_sum, count = 0.0, 0
            for value, size in zip(losses[k:k + n], self._sizes[k:k + n]):
                if not math.isfinite(value):
                    raise DivergedError(f"the training loss became {value} at epoch {self.epoch}, step {step}; "
                                        "try a lower --lr or more --warmup-epochs")
                self.totals["loss_sum"] += value * size
                self.totals["count"] += size
                loss_sum, count = loss_sum + value * size, count + size
            k += n
            self.totals["grad_norm"] = norm
            if check and not math.isfinite(norm):
                raise DivergedError(f"the gradient norm became {norm} at epoch {self.epoch}, step {step} while the "
                                    "loss was finite; the weights were left as they were before this step")
            rows.append({"epoch": self.epoch, "step": step, "loss": loss_sum / max(count, 1), "lr": lr,
                         "grad_norm": norm})
        self._losses, self._sizes, self._steps, self._norms, self._stepped = [], [], [], [], 0
        for listener in self.listeners:
            listener.on_sync(rows)
        return rows

    def _read(self) -> tuple[list[float], list[float]]:
        """(rank-mean loss per micro-batch, norm per step) in one all-reduce and one copy to the host."""
        losses = torch.stack(self._losses)
        if self.info.enabled:  # a NaN on one rank makes the mean non-finite on all ranks
            dist.all_reduce(losses, op=dist.ReduceOp.SUM)
            losses = losses / self.info.world_size
        values = torch.cat([losses, torch.stack([n.to(losses.device) for n in self._norms])]).tolist()
        return values[:len(self._losses)], values[len(self._losses):]


def _local(p: Tensor) -> Tensor:
    """A parameter's local data (its shard under FSDP)."""
    return p.to_local() if hasattr(p, "to_local") else p


class UpdateGuard:
    """Keeps the weights from taking an optimiser step while `bad` (see the module docstring)."""

    def __init__(self, params: list[Tensor]):
        self.params, self.copies, self.bad = params, None, None

    def mark(self, losses: Tensor, norm: Tensor) -> None:
        """Fold one step's finiteness into the flag (device ops only)."""
        bad = ~(torch.isfinite(losses).all() & torch.isfinite(norm))
        self.bad = bad if self.bad is None else self.bad | bad.to(self.bad.device)

    def reset(self) -> None:
        """After a sync point found every pending step finite."""
        self.bad = None

    @torch.no_grad()
    def step(self, optimizer: torch.optim.Optimizer) -> None:
        """`optimizer.step()` that changes nothing while `bad` is set."""
        if getattr(optimizer, "_step_supports_amp_scaling", False):  # fused: the kernel skips on found_inf
            optimizer.found_inf = self.bad.float()
            try:
                optimizer.step()
            finally:
                del optimizer.found_inf
            return
        local = [_local(p) for p in self.params]
        if self.copies is None:
            self.copies = [torch.empty_like(p) for p in local]
        torch._foreach_copy_(self.copies, local)
        optimizer.step()
        flags = {}
        for p, copy in zip(local, self.copies):
            flag = flags.setdefault(p.device, self.bad.to(p.device))
            torch.where(flag, copy, p, out=p)
