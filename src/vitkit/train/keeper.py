"""The files a run keeps, whichever way it trains: the training state (`last.pt`, one file rank 0 writes, for
single-process and DDP runs; a sharded `last.sharded` checkpoint every rank writes, for FSDP runs), the best K
weights by validation top-1 (`--checkpoint-hist K`: `checkpoint-<epoch>.safetensors`, the metric in each file's
metadata, as timm's CheckpointSaver keeps `checkpoint-<epoch>` files beside `last`), `best.safetensors` (the best
epoch's weights) and the final `model.safetensors`."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from ..checkpoint import load_state_dict, save_checkpoint
from .distributed import DistInfo
from .fsdp import full_state_dict
from .sharded_state import POINTER, load_sharded_state, save_sharded_state
from .state import load_training_state, save_training_state


def resume_file(out: Path, sharded: bool) -> Path:
    """Where a run in `out` resumes from: its `last.sharded` pointer (FSDP) or its `last.pt`."""
    return out / (POINTER if sharded else "last.pt")


def _ranked(history: list[dict], out: Path) -> list[dict]:
    """Epochs with a kept weights file, best first (top-1, then the later epoch on a tie)."""
    rows = [r for r in history if (out / hist_name(r["epoch"])).is_file()]
    return sorted(rows, key=lambda r: (r["val_acc1"], r["epoch"]), reverse=True)


def hist_name(epoch: int) -> str:
    return f"checkpoint-{epoch + 1}.safetensors"


class Keeper:
    """Writes and reads a run's checkpoints; every rank calls each method (the sharded and gathered paths are
    collectives), rank 0 alone writes single files."""

    def __init__(self, out: Path, info: DistInfo, sharded: bool, model: nn.Module, optimizer, scheduler, scaler,
                 ema, settings: dict, hist: int = 0):
        self.out, self.info, self.sharded, self.hist, self.settings = out, info, sharded, hist, settings
        self.model, self.optimizer, self.scheduler, self.scaler, self.ema = model, optimizer, scheduler, scaler, ema

    @property
    def last(self) -> Path:
        return resume_file(self.out, self.sharded)

    def save(self, epoch: int, history: list[dict], step: int = 0, totals: dict | None = None) -> None:
        args = (self.model, self.optimizer, self.scheduler, epoch, history, self.settings)
        kw = dict(step=step, totals=totals, scaler=self.scaler, ema=self.ema)
        if self.sharded:
            save_sharded_state(self.out, *args, self.info, **kw)
        elif self.info.is_main:
            save_training_state(self.last, *args, **kw)

    def resume(self) -> dict:
        """Load the model, optimiser, schedule, scaler and EMA in place; returns the state's other entries."""
        if self.sharded:
            state = load_sharded_state(self.last, self.model, self.optimizer, self.ema)
        else:
            state = load_training_state(self.last)
            load_state_dict(self.model, state["model"], str(self.last))
            self.optimizer.load_state_dict(state["optimizer"])
            if self.ema is not None and state.get("ema"):
                self.ema.load_state_dict(state["ema"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        return state

    def read(self) -> dict:
        """The saved state's settings and position without loading any weights (for the settings check)."""
        if self.sharded:
            from .sharded_state import read_extra, sharded_folder

            return read_extra(sharded_folder(self.last))
        return load_training_state(self.last)

    def epoch_end(self, epoch: int, history: list[dict]) -> None:
        """After epoch `epoch`'s evaluation: the best `hist` weights files and best.safetensors."""
        row = history[-1]
        best = max(history, key=lambda r: (r["val_acc1"], r["epoch"]))
        if not self.hist and best is not row:
            return
        state = full_state_dict(self.model)
        if not self.info.is_main:
            return
        meta = {"vitkit_epoch": str(epoch + 1), "vitkit_val_acc1": str(row["val_acc1"]),
                "vitkit_val_loss": str(row["val_loss"])}
        if best is row:
            save_checkpoint(self.model, self.out / "best.safetensors", meta, state)
        if self.hist:
            save_checkpoint(self.model, self.out / hist_name(epoch), meta, state)
            for dropped in _ranked(history, self.out)[self.hist:]:
                (self.out / hist_name(dropped["epoch"])).unlink()

    def final(self, model: nn.Module) -> None:
        """model.safetensors: `model`'s weights (the trained or the EMA copy, gathered when sharded)."""
        state = full_state_dict(model)
        if self.info.is_main:
            save_checkpoint(model, self.out / "model.safetensors", state_dict=state)
