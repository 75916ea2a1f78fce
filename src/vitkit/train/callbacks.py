"""What a run does around its steps, one small object each: the progress bar and epoch lines, the per-step log
(`steps.csv`), the per-epoch metrics (`metrics.csv`), TensorBoard scalars, `curves.png`, the checkpoints (atomic
`last.pt` at epoch ends and every `save_every` optimiser steps, the best weights) and the EMA's evaluation.

A callback overrides only the hooks it needs. The step loop (`engine.train_epoch`) calls the step hooks:
`on_train_begin(epoch, batches)`, `on_step(epoch, step, meter)` after every optimiser step (`meter.sync()` gives
host numbers, at the cost of a sync), `on_sync(rows)` with the per-step rows reduced at a sync point, and
`on_train_end(epoch)` (also when the epoch fails). `meter.sync()` is a collective under DDP / FSDP: a callback
that calls it must run on every rank. The Trainer (`train/run.py`) calls the run hooks:
`on_fit_start(trainer)`, `on_evaluate(trainer, row)` after the model's validation (the row may gain columns),
`on_epoch_end(trainer, row)` and `on_fit_end(trainer)`. Callbacks run in the order they are registered."""

from __future__ import annotations

import csv
from pathlib import Path

from ..errors import ConfigError
from ..io import atomic_write

METRIC_FIELDS = ("epoch", "train_loss", "val_loss", "val_acc1", "val_acc5", "val_ema_acc1", "lr", "grad_norm",
                 "skipped_steps", "samples_per_s", "epoch_time")
STEP_FIELDS = ("epoch", "step", "loss", "lr", "grad_norm")


class Callback:
    """No-op hooks; subclasses override what they use (see the module docstring for when each runs)."""

    def on_fit_start(self, trainer) -> None: ...
    def on_train_begin(self, epoch: int, batches: int) -> None: ...
    def on_step(self, epoch: int, step: int, meter) -> None: ...
    def on_sync(self, rows: list[dict]) -> None: ...
    def on_train_end(self, epoch: int) -> None: ...
    def on_evaluate(self, trainer, row: dict) -> None: ...
    def on_epoch_end(self, trainer, row: dict) -> None: ...
    def on_fit_end(self, trainer) -> None: ...


def progress_bar(enabled: bool, description: str, total: int):
    """(a rich Progress, its task): a transient bar on stderr when `enabled` and stderr is a terminal, else silent."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        TextColumn("{task.fields[info]}"), transient=True, console=console,
                        disable=not (enabled and console.is_terminal))  # a bar only where it can redraw
    return progress, progress.add_task(description, total=total, info="")


class ProgressBar(Callback):
    """A bar over the epoch's micro-batches (the mean loss of its steps so far, at sync points) and, with `say`,
    one line per epoch."""

    def __init__(self, say=None, epochs: int | None = None):
        self.say, self.epochs, self.bar, self.task, self.losses = say, epochs, None, None, []

    def on_train_begin(self, epoch: int, batches: int) -> None:
        self.bar, self.task = progress_bar(True, f"epoch {epoch}", batches)
        self.bar.start()
        self.losses = []

    def on_step(self, epoch: int, step: int, meter) -> None:
        self.bar.update(self.task, completed=meter.batches)

    def on_sync(self, rows: list[dict]) -> None:
        self.losses += [r["loss"] for r in rows]
        if self.bar is not None and self.losses:
            self.bar.update(self.task, info=f"loss {sum(self.losses) / len(self.losses):.4f}")

    def on_train_end(self, epoch: int) -> None:
        if self.bar is not None:
            self.bar.stop()
        self.bar = None

    def on_epoch_end(self, trainer, row: dict) -> None:
        if self.say is None:
            return
        ema = f"  EMA {row['val_ema_acc1']:.2f}%" if row.get("val_ema_acc1") is not None else ""
        self.say(f"epoch {row['epoch'] + 1}/{self.epochs}  loss {row['train_loss']:.4f}  val acc {row['val_acc1']:.2f}%"
                 f"{ema}  ({row['epoch_time']:.1f}s)")


class StepLog(Callback):
    """`steps.csv`: one row per optimiser step (epoch, step in the epoch, loss, lr, gradient norm), appended at
    each sync point. A resumed run first drops the rows after its checkpoint (they are trained again)."""

    def __init__(self, path: Path):
        self.path, self.file, self.writer = path, None, None

    def on_fit_start(self, trainer) -> None:
        start = (trainer.start_epoch, trainer.start_step)
        kept = []
        if trainer.cfg.resume and self.path.is_file():
            with open(self.path, newline="") as f:
                kept = [r for r in csv.DictReader(f) if _complete(r) and (int(r["epoch"]), int(r["step"])) < start]
        self.file = open(self.path, "w", newline="")  # noqa: SIM115 (open for the whole run, closed at its end)
        self.writer = csv.DictWriter(self.file, fieldnames=STEP_FIELDS, extrasaction="ignore")
        self.writer.writeheader()
        self.writer.writerows(kept)
        self.file.flush()

    def on_sync(self, rows: list[dict]) -> None:
        if self.writer is not None:
            self.writer.writerows(rows)
            self.file.flush()

    def on_fit_end(self, trainer) -> None:
        if self.file is not None:
            self.file.close()
        self.file = self.writer = None


def _complete(row: dict) -> bool:
    """A row a killed run wrote whole (the last line may be cut)."""
    try:
        [float(row[k]) for k in STEP_FIELDS]
    except (TypeError, ValueError):  # a missing (None) or cut value
        return False
    return True


def write_metrics(path: Path, history: list[dict]) -> None:
    def write(tmp):
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=METRIC_FIELDS, extrasaction="ignore")
            w.writeheader()
            w.writerows(history)

    atomic_write(path, write)


class MetricsCSV(Callback):
    """`metrics.csv`: the run's history, rewritten atomically after every epoch."""

    def __init__(self, path: Path):
        self.path = path

    def on_epoch_end(self, trainer, row: dict) -> None:
        write_metrics(self.path, trainer.history)


class TensorBoard(Callback):
    """The epoch's scalars on a SummaryWriter (x = epochs done); closed at the end of the run."""

    KEYS = ("train_loss", "val_loss", "val_acc1", "val_ema_acc1", "lr", "grad_norm", "samples_per_s")

    def __init__(self, writer):
        self.writer = writer

    def on_epoch_end(self, trainer, row: dict) -> None:
        for key in self.KEYS:
            if row[key] is not None:
                self.writer.add_scalar(key, row[key], row["epoch"] + 1)
        self.writer.flush()

    def on_fit_end(self, trainer) -> None:
        self.writer.close()


def plot_curves(path: Path, history: list[dict]) -> None:
    """curves.png: training / validation loss and validation accuracy (raw and EMA) per epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] + 1 for r in history]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
    left.plot(epochs, [r["train_loss"] for r in history], label="train")
    left.plot(epochs, [r["val_loss"] for r in history], label="val")
    left.set(xlabel="epoch", ylabel="loss")
    right.plot(epochs, [r["val_acc1"] for r in history], label="val top-1")
    if any(r.get("val_ema_acc1") is not None for r in history):
        right.plot(epochs, [r.get("val_ema_acc1") for r in history], label="val top-1 (EMA)")
    right.set(xlabel="epoch", ylabel="accuracy (%)")
    for ax in (left, right):
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    plt.close(fig)


class Curves(Callback):
    """`curves.png` once the run has trained."""

    def __init__(self, path: Path):
        self.path = path

    def on_fit_end(self, trainer) -> None:
        if trainer.history:
            plot_curves(self.path, trainer.history)


class Checkpoints(Callback):
    """The training state through the run's Keeper: after every epoch (then the best weights), and every
    `save_every` optimiser steps inside an epoch (after a sync, so a checkpoint never holds an unchecked step).
    Every rank runs it: the sharded and gathered writes are collectives."""

    def __init__(self, keeper, save_every: int, steps: int):
        self.keeper, self.save_every, self.steps, self.trainer = keeper, save_every, steps, None

    def on_fit_start(self, trainer) -> None:
        self.trainer = trainer

    def on_step(self, epoch: int, step: int, meter) -> None:
        if self.save_every and step % self.save_every == 0 and step < self.steps:
            meter.sync()
            self.keeper.save(epoch - 1, self.trainer.history, step, meter.totals)

    def on_epoch_end(self, trainer, row: dict) -> None:
        self.keeper.save(row["epoch"], trainer.history)
        self.keeper.epoch_end(row["epoch"], trainer.history)


class EMAEvaluation(Callback):
    """Validates the EMA weights after the model (on the training device, also when they live in host memory):
    the row's `val_ema_acc1`."""

    def __init__(self, ema):
        self.ema = ema

    def on_evaluate(self, trainer, row: dict) -> None:
        with self.ema.on(trainer.device) as averaged:
            row["val_ema_acc1"] = round(trainer.evaluate(averaged)["acc1"], 3)


class EarlyStopping(Callback):
    """Stops the run after `patience` epochs without a gain of the row's `monitor` (higher is better, e.g.
    `val_acc1`) by more than `min_delta`, and puts the best epoch's weights back into the trainer's model when the
    run ends (a copy kept in host memory; with write=True, model.safetensors still holds the last epoch and
    best.safetensors the best). `best_epoch` and `best` say which epoch and what it scored. Under DDP every rank
    sees the same reduced row, so all stop together."""

    def __init__(self, patience: int, monitor: str = "val_acc1", min_delta: float = 0.0, restore_best: bool = True):
        if patience < 0:
            raise ConfigError(f"patience must be non-negative, got {patience}")
        self.patience, self.monitor, self.min_delta, self.restore_best = patience, monitor, min_delta, restore_best
        self.best, self.best_epoch, self.waited, self.weights = None, None, 0, None

    def on_epoch_end(self, trainer, row: dict) -> None:
        value = row[self.monitor]
        if self.best is None or value > self.best + self.min_delta:
            self.best, self.best_epoch, self.waited = value, row["epoch"], 0
            if self.restore_best:
                self.weights = {k: v.detach().to("cpu", copy=True) for k, v in trainer.model.state_dict().items()}
            return
        self.waited += 1
        if self.waited >= self.patience:
            trainer.should_stop = True

    def on_fit_end(self, trainer) -> None:
        if self.restore_best and self.weights is not None:
            trainer.model.load_state_dict(self.weights)
