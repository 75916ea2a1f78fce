"""The epoch loop, readable top to bottom: `train_one_epoch` and `evaluate` take every input explicitly."""

from __future__ import annotations

import contextlib
import math
import time

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader

from ..errors import VitkitError
from .losses import DistillationLoss


class DivergedError(VitkitError):
    """The loss became NaN or infinite; training stops and the last good checkpoint is kept."""


def autocast(bf16: bool):
    """bf16 autocast on the CPU (its fast low-precision path; fp16 has none there) or a no-op."""
    return torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()


def _progress(enabled: bool, description: str, total: int):
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        TextColumn("{task.fields[info]}"), transient=True, console=console,
                        disable=not (enabled and console.is_terminal))  # a bar only where it can redraw
    return progress, progress.add_task(description, total=total, info="")


def train_one_epoch(model: nn.Module, loader: DataLoader, criterion: nn.Module, optimizer: torch.optim.Optimizer,
                    scheduler=None, epoch: int = 0, clip_grad: float | None = None, bf16: bool = False,
                    progress: bool = False) -> dict[str, float]:
    """One pass over `loader`; returns {"train_loss", "lr", "train_time"}.

    `model` is called once per batch; with a DistillationLoss its output may be (cls_logits, dist_logits)
    (wrap a distilled student in `DistillHeads`) and the criterion also gets the inputs for the teacher.
    Raises DivergedError on a non-finite loss before the optimiser touches the weights."""
    model.train()
    distill = isinstance(criterion, DistillationLoss)
    total, count, start = 0.0, 0, time.perf_counter()
    bar, task = _progress(progress, f"epoch {epoch}", len(loader))
    with bar:
        for step, (x, y) in enumerate(loader):
            with autocast(bf16):
                outputs = model(x)
                loss = criterion(x, outputs, y) if distill else criterion(outputs, y)
            value = loss.item()
            if not math.isfinite(value):
                raise DivergedError(f"the training loss became {value} at epoch {epoch}, step {step}; "
                                    "try a lower --lr or more --warmup-epochs")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if clip_grad:
                nn.utils.clip_grad_norm_(model.parameters(), clip_grad)
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            total += value * len(y)
            count += len(y)
            bar.update(task, advance=1, info=f"loss {total / count:.4f}")
    return {"train_loss": total / max(count, 1), "lr": optimizer.param_groups[0]["lr"],
            "train_time": time.perf_counter() - start}


@torch.no_grad()
def evaluate(model: nn.Module, loader: DataLoader, bf16: bool = False) -> dict[str, float]:
    """Mean cross-entropy and top-1 / top-5 accuracy (%) of `model` (B, ...) -> (B, K) logits over `loader`."""
    model.eval()
    loss_sum, correct1, correct5, n = 0.0, 0, 0, 0
    for x, y in loader:
        with autocast(bf16):
            logits = model(x)
        logits = logits.float()
        loss_sum += F.cross_entropy(logits, y, reduction="sum").item()
        top = logits.topk(min(5, logits.shape[1]), dim=1).indices
        correct1 += (top[:, 0] == y).sum().item()
        correct5 += (top == y[:, None]).any(dim=1).sum().item()
        n += len(y)
    n = max(n, 1)
    return {"loss": loss_sum / n, "acc1": 100.0 * correct1 / n, "acc5": 100.0 * correct5 / n}


class DistillHeads(nn.Module):
    """Calls `forward_distill` through `forward`, so DDP sees the call: (B, ...) -> (cls_logits, dist_logits)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self.model.forward_distill(x)
