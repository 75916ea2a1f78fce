"""The epoch loop, readable top to bottom: `train_epoch(state, loader, epoch, callbacks)` runs one pass, with
everything a step needs in one `TrainState`; `evaluate` scores a model.

One optimiser step is `accum_steps` micro-batches: each is moved to the device, run under autocast, its loss
divided by the number of micro-batches in the step and back-propagated (DDP's gradient all-reduce only on the
last one, through `no_sync`); then the gradients are unscaled (fp16), clipped, stepped, and the EMA and the
schedule follow. The host reads the losses and gradient norms only at sync points (`train/meter.py`): every
`log_interval` optimiser steps, before a checkpoint and at the epoch's end; a non-finite step raises
DivergedError there, and never reaches the weights in between. `loss_fn(model, criterion, images, targets)` is
the seam data augmentations hook into: targets may be class indices (B,) or soft probabilities (B, K)
(mixup/cutmix)."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .callbacks import Callback, ProgressBar, progress_bar
from .distributed import DistInfo, all_sum, autocast
from .losses import DistillationLoss
from .meter import DivergedError, StepMeter, UpdateGuard

__all__ = ["CallWith", "DistillHeads", "DivergedError", "TrainState", "evaluate", "loss_fn", "progress_bar", "step_seed",
           "train_epoch", "train_one_epoch"]


@dataclass
class TrainState:
    """What the step loop works with; the Trainer (train/run.py) builds it from a TrainConfig."""

    model: nn.Module                      # what is called: DDP / DistillHeads / compiled wrapper
    criterion: nn.Module                  # (outputs, targets) -> loss, or a DistillationLoss
    optimizer: torch.optim.Optimizer
    scheduler: object | None = None       # stepped after every optimiser step
    precision: str = "fp32"               # fp32 | bf16 | fp16 (fp16 with `scaler`)
    device: torch.device | None = None    # None: the model's
    clip_grad: float | None = None        # global gradient-norm clip
    accum_steps: int = 1                  # micro-batches per optimiser step
    scaler: torch.amp.GradScaler | None = None
    ema: nn.Module | None = None          # an EMA (AveragedModel) updated after every optimiser step ...
    ema_source: nn.Module | None = None   # ... from this bare model (None: `model`)
    info: DistInfo = dataclasses.field(default_factory=DistInfo)
    seed: int | None = None               # seeds each step's random draws by `step_seed`
    log_interval: int = 1                 # optimiser steps between sync points


def step_seed(seed: int, epoch: int, step: int, rank: int) -> int:
    """The seed of one optimiser step's dropout / drop-path draws: a function of (seed, epoch, step, rank) only,
    so a run resumed at any step repeats what an uninterrupted run draws there."""
    return (((seed * 1_000_003 + epoch) * 1_000_003 + step) * 1_009 + rank) % (2**63)


def loss_fn(model: nn.Module, criterion: nn.Module, images: Tensor, targets: Tensor) -> Tensor:
    """The training loss of one micro-batch: images (B, ...), targets (B,) labels or (B, K) probabilities.
    With a DistillationLoss the model may return (cls_logits, dist_logits) and the teacher sees the images."""
    outputs = model(images)
    return criterion(images, outputs, targets) if isinstance(criterion, DistillationLoss) else criterion(outputs, targets)


def to_device(batch: tuple[Tensor, Tensor], device: torch.device) -> tuple[Tensor, Tensor]:
    non_blocking = device.type == "cuda"  # the loader pins memory there
    return tuple(t.to(device, non_blocking=non_blocking) for t in batch)


def _groups(loader: Iterable, num_batches: int, accum_steps: int):
    """Micro-batches grouped into optimiser steps: yields (micro-batch, first of its step, last of its step,
    micro-batches in its step, last of the epoch); the epoch's last step may hold fewer than `accum_steps`. A
    resumed epoch's loader starts at a step boundary, so counting from it groups as the whole epoch does."""
    for k, batch in enumerate(loader):
        first = k - k % accum_steps
        size = min(accum_steps, num_batches - first)
        yield batch, k == first, k - first == size - 1, size, k == num_batches - 1


def train_epoch(state: TrainState, loader: Iterable, epoch: int, callbacks: Sequence[Callback] = (),
                start_step: int = 0, totals: dict | None = None) -> dict[str, float]:
    """One pass over `loader` (the rest of the epoch after `start_step` optimiser steps when resuming, `totals`
    then carrying the epoch's running sums); returns {"train_loss", "lr", "grad_norm", "skipped_steps",
    "samples", "train_time"}. Raises DivergedError, on every rank, at the sync point after a non-finite loss or
    gradient norm (fp32 / bf16; fp16's scaler skips such steps itself); the weights are those before that step."""
    s = state
    device = s.device or next(s.model.parameters()).device
    params = [p for g in s.optimizer.param_groups for p in g["params"]]
    guard = UpdateGuard(params) if s.log_interval > 1 and s.scaler is None else None
    meter = StepMeter(s.info, epoch, totals, callbacks)
    s.model.train()
    step, clock = start_step, time.perf_counter()
    for cb in callbacks:
        cb.on_train_begin(epoch, len(loader))
    try:
        for batch, first, last, size, final in _groups(loader, len(loader), s.accum_steps):
            if s.seed is not None and first:
                torch.manual_seed(step_seed(s.seed, epoch, step, s.info.rank))
            _forward_backward(s, to_device(batch, device), last, size, meter)
            if not last:
                continue
            _optimizer_step(s, params, meter, step, guard, closing=final or (step + 1) % s.log_interval == 0)
            step += 1
            meter.totals["time"] += time.perf_counter() - clock  # a checkpoint's writing is not training time
            for cb in callbacks:
                cb.on_step(epoch, step, meter)
            clock = time.perf_counter()
        meter.sync()
    finally:
        for cb in callbacks:
            cb.on_train_end(epoch)
    t = meter.totals
    t["time"] += time.perf_counter() - clock
    return {"train_loss": t["loss_sum"] / max(t["count"], 1), "lr": s.optimizer.param_groups[0]["lr"],
            "grad_norm": t["grad_norm"], "skipped_steps": t["skipped"], "samples": t["count"], "train_time": t["time"]}


def _forward_backward(s: TrainState, batch: tuple[Tensor, Tensor], last: bool, size: int, meter: StepMeter) -> None:
    """One micro-batch: its loss (kept on the device by `meter`) divided by the step's micro-batches, backward."""
    images, targets = batch
    sync = contextlib.nullcontext() if last or not hasattr(s.model, "no_sync") else s.model.no_sync()
    with sync:
        with autocast(images.device, s.precision):
            loss = loss_fn(s.model, s.criterion, images, targets)
        meter.add_loss(loss, len(images))
        loss = loss / size
        (s.scaler.scale(loss) if s.scaler is not None else loss).backward()


def _optimizer_step(s: TrainState, params: list, meter: StepMeter, step: int, guard: UpdateGuard | None,
                    closing: bool) -> None:
    """Unscale, clip, record; at a sync point (`closing`) check on the host before stepping, else step under
    the guard; then the EMA and the schedule."""
    if s.scaler is not None:
        s.scaler.unscale_(s.optimizer)
    norm = nn.utils.clip_grad_norm_(params, s.clip_grad or math.inf)
    norm = norm.full_tensor() if hasattr(norm, "full_tensor") else norm  # FSDP: a DTensor over the ranks
    meter.add_step(step, s.optimizer.param_groups[0]["lr"], norm, check_norm=s.scaler is None)
    if guard is not None and not closing:
        guard.mark(meter.step_losses(), norm)
    if closing:
        meter.sync()  # raises before this step touches the weights
        if guard is not None:
            guard.reset()
    if s.scaler is not None:
        scale = s.scaler.get_scale()
        s.scaler.step(s.optimizer)
        s.scaler.update()
        meter.totals["skipped"] += int(s.scaler.get_scale() < scale)  # a step with inf/NaN gradients was skipped
    elif guard is not None and not closing:
        guard.step(s.optimizer)
    else:
        s.optimizer.step()
    s.optimizer.zero_grad(set_to_none=True)
    if s.ema is not None:
        s.ema.update_parameters(s.ema_source if s.ema_source is not None else s.model)
    if s.scheduler is not None:
        s.scheduler.step()


class _EveryStep(Callback):
    """The old `on_step(step, totals)` argument: host totals after every optimiser step."""

    def __init__(self, fn: Callable[[int, dict], None]):
        self.fn = fn

    def on_step(self, epoch: int, step: int, meter) -> None:
        meter.sync()
        self.fn(step, meter.totals)


def train_one_epoch(model: nn.Module, loader: Iterable, criterion: nn.Module, optimizer: torch.optim.Optimizer,
                    scheduler=None, epoch: int = 0, clip_grad: float | None = None, precision: str = "fp32",
                    progress: bool = False, *, state: TrainState | None = None, callbacks: Sequence[Callback] = (),
                    start_step: int = 0, totals: dict | None = None,
                    on_step: Callable[[int, dict], None] | None = None, **fields) -> dict[str, float]:
    """`train_epoch` with its inputs as arguments (vitkit's first step-loop signature): `fields` are TrainState's
    other fields (device, accum_steps, scaler, ema, ema_source, info, seed, log_interval); `progress` shows a
    bar, `on_step(step, totals)` runs after every optimiser step. The Trainer calls it with its `state`, which
    the first four arguments then override (tests wrap this function to interrupt or poison a run)."""
    if state is None:
        state = TrainState(model, criterion, optimizer, scheduler, precision=precision, clip_grad=clip_grad, **fields)
    else:
        assert not fields, f"pass {sorted(fields)} in the state"
        state = dataclasses.replace(state, model=model, criterion=criterion, optimizer=optimizer, scheduler=scheduler)
    callbacks = [*callbacks, *([ProgressBar()] if progress else []), *([_EveryStep(on_step)] if on_step else [])]
    return train_epoch(state, loader, epoch, callbacks, start_step, totals)


@torch.no_grad()
def evaluate(model: nn.Module, loader: Iterable, precision: str = "fp32", device: torch.device | None = None,
             info: DistInfo | None = None, progress: bool = False) -> dict[str, float]:
    """Mean cross-entropy and top-1 / top-5 accuracy (%) of `model` (B, ...) -> (B, K) logits over `loader`.
    Under DDP each rank passes its own shard; sums of losses, hits and counts are all-reduced, so the result
    is exactly the single-process one. `progress`: a bar over the batches (on a terminal)."""
    info = info or DistInfo()
    device = device or next(model.parameters()).device
    model.eval()
    loss_sum, correct1, correct5, n = 0.0, 0, 0, 0
    bar, task = progress_bar(progress, "eval", len(loader))
    with bar:
        for batch in loader:
            loss_sum, correct1, correct5, n = (a + b for a, b in zip((loss_sum, correct1, correct5, n),
                                                                      _scores(model, batch, precision, device)))
            bar.update(task, advance=1, info=f"top-1 {100.0 * correct1 / max(n, 1):.2f}%")
    loss_sum, correct1, correct5, n = all_sum([loss_sum, correct1, correct5, n], info, device)
    n = max(n, 1)
    return {"loss": loss_sum / n, "acc1": 100.0 * correct1 / n, "acc5": 100.0 * correct5 / n}


def _scores(model: nn.Module, batch, precision: str, device: torch.device) -> tuple[float, int, int, int]:
    """(summed cross-entropy, top-1 hits, top-5 hits, samples) of one evaluation batch."""
    x, y = to_device(batch, device)
    with autocast(device, precision):
        logits = model(x)
    logits = logits.float()
    top = logits.topk(min(5, logits.shape[1]), dim=1).indices
    return (F.cross_entropy(logits, y, reduction="sum").item(), (top[:, 0] == y).sum().item(),
            (top == y[:, None]).any(dim=1).sum().item(), len(y))


class DistillHeads(nn.Module):
    """Calls `forward_distill` through `forward`, so DDP sees the call: (B, ...) -> (cls_logits, dist_logits)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self.model.forward_distill(x)


class CallWith(nn.Module):
    """Calls `fn(model, x)` through `forward` (a caller's choice of heads), so DDP sees the call and the model's
    parameters stay the module's own: (B, ...) -> whatever `fn` returns (logits, or (cls, dist) logits)."""

    def __init__(self, model: nn.Module, fn: Callable[[nn.Module, Tensor], object]):
        super().__init__()
        self.model, self.fn = model, fn

    def forward(self, x: Tensor):
        return self.fn(self.model, x)
