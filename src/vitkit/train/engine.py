"""The epoch loop, readable top to bottom: `train_one_epoch` and `evaluate` take every input explicitly.

One optimiser step is `accum_steps` micro-batches: each is moved to the device, run under autocast, its loss
divided by the number of micro-batches in the step and back-propagated (DDP's gradient all-reduce only on the
last one, through `no_sync`); then the gradients are unscaled (fp16), clipped, stepped, and the EMA and the
schedule follow. `loss_fn(model, criterion, images, targets)` is the seam data augmentations hook into:
targets may be class indices (B,) or soft probabilities (B, K) (mixup/cutmix)."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import VitkitError
from .distributed import DistInfo, all_sum, autocast, sync_scalar
from .losses import DistillationLoss


class DivergedError(VitkitError):
    """The loss or the gradient became NaN or infinite; training stops and the last good checkpoint is kept."""


def step_seed(seed: int, epoch: int, step: int, rank: int) -> int:
    """The seed of one optimiser step's dropout / drop-path draws: a function of (seed, epoch, step, rank) only,
    so a run resumed at any step repeats what an uninterrupted run draws there."""
    return (((seed * 1_000_003 + epoch) * 1_000_003 + step) * 1_009 + rank) % (2**63)


def progress_bar(enabled: bool, description: str, total: int):
    """(a rich Progress, its task): a transient bar on stderr when `enabled` and stderr is a terminal, else silent."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        TextColumn("{task.fields[info]}"), transient=True, console=console,
                        disable=not (enabled and console.is_terminal))  # a bar only where it can redraw
    return progress, progress.add_task(description, total=total, info="")


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
    micro-batches in its step); the epoch's last step may hold fewer than `accum_steps`. A resumed epoch's
    loader starts at a step boundary, so counting from it groups as the whole epoch does."""
    for k, batch in enumerate(loader):
        first = k - k % accum_steps
        size = min(accum_steps, num_batches - first)
        yield batch, k == first, k - first == size - 1, size


def train_one_epoch(model: nn.Module, loader: Iterable, criterion: nn.Module, optimizer: torch.optim.Optimizer,
                    scheduler=None, epoch: int = 0, clip_grad: float | None = None, precision: str = "fp32",
                    progress: bool = False, *, device: torch.device | None = None, accum_steps: int = 1,
                    scaler: torch.amp.GradScaler | None = None, ema: nn.Module | None = None,
                    ema_source: nn.Module | None = None, info: DistInfo | None = None, seed: int | None = None,
                    start_step: int = 0, totals: dict | None = None,
                    on_step: Callable[[int, dict], None] | None = None) -> dict[str, float]:
    """One pass over `loader` (the rest of the epoch after `start_step` optimiser steps when resuming); returns
    {"train_loss", "lr", "grad_norm", "skipped_steps", "samples", "train_time"}.

    `model` is what is called (DDP / DistillHeads wrapped); `ema` (an AveragedModel) is updated from
    `ema_source` (the bare model) after every optimiser step. With `seed`, each step's random draws are seeded
    by `step_seed`. `on_step(step, totals)` runs after every optimiser step (mid-epoch checkpoints); `totals`
    carries the running sums, so a resumed epoch reports what an uninterrupted one does. Raises DivergedError,
    on every rank, when any rank's loss or the gradient norm (fp32 / bf16; fp16's scaler skips such steps itself)
    is not finite, before the optimiser touches the weights."""
    info = info or DistInfo()
    device = device or next(model.parameters()).device
    params = [p for g in optimizer.param_groups for p in g["params"]]
    t = dict(totals or {"loss_sum": 0.0, "count": 0, "skipped": 0, "grad_norm": 0.0, "time": 0.0})
    model.train()
    step, start = start_step, time.perf_counter()
    bar, task = progress_bar(progress, f"epoch {epoch}", len(loader))
    with bar:
        for batch, first, last, size in _groups(loader, len(loader), accum_steps):
            images, targets = to_device(batch, device)
            if seed is not None and first:
                torch.manual_seed(step_seed(seed, epoch, step, info.rank))
            sync = contextlib.nullcontext() if last or not hasattr(model, "no_sync") else model.no_sync()
            with sync:
                with autocast(device, precision):
                    loss = loss_fn(model, criterion, images, targets)
                value = sync_scalar(loss, info)  # agreed by all ranks before any backward
                if not math.isfinite(value):
                    raise DivergedError(f"the training loss became {value} at epoch {epoch}, step {step}; "
                                        "try a lower --lr or more --warmup-epochs")
                loss = loss / size
                (scaler.scale(loss) if scaler is not None else loss).backward()
            t["loss_sum"] += value * len(images)
            t["count"] += len(images)
            if not last:
                continue
            if scaler is not None:
                scaler.unscale_(optimizer)
            norm = nn.utils.clip_grad_norm_(params, clip_grad or math.inf)
            norm = norm.full_tensor() if hasattr(norm, "full_tensor") else norm  # FSDP: a DTensor over the ranks
            t["grad_norm"] = float(norm)
            if scaler is None and not math.isfinite(t["grad_norm"]):  # the same on every rank: grads are all-reduced
                raise DivergedError(f"the gradient norm became {t['grad_norm']} at epoch {epoch}, step {step} while "
                                    "the loss was finite; the weights were left as they were before this step")
            if scaler is not None:
                scale = scaler.get_scale()
                scaler.step(optimizer)
                scaler.update()
                t["skipped"] += int(scaler.get_scale() < scale)  # a step with inf/NaN gradients was skipped
            else:
                optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if ema is not None:
                ema.update_parameters(ema_source if ema_source is not None else model)
            if scheduler is not None:
                scheduler.step()
            step += 1
            bar.update(task, advance=size, info=f"loss {t['loss_sum'] / t['count']:.4f}")
            if on_step is not None:
                t["time"] += time.perf_counter() - start
                start = time.perf_counter()
                on_step(step, t)
    t["time"] += time.perf_counter() - start
    return {"train_loss": t["loss_sum"] / max(t["count"], 1), "lr": optimizer.param_groups[0]["lr"],
            "grad_norm": t["grad_norm"], "skipped_steps": t["skipped"], "samples": t["count"],
            "train_time": t["time"]}


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
