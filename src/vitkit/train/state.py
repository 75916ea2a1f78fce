"""Training checkpoints (`last.pt`): model, optimiser, scheduler, grad scaler, EMA weights, the position in
the data (completed epoch, and optimiser steps done in the next one for mid-epoch checkpoints, with the
epoch's running sums), RNG states, metrics history and the run's settings, written atomically so a crash
mid-write (even SIGKILL) never loses the previous one."""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import pickle
import random
import shutil
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..checkpoint import holds_objects, pickled_objects
from ..errors import CheckpointError
from ..io import atomic_write

FORMAT = "vitkit-train-state-1"


def rng_states() -> dict:
    """torch, numpy and Python generator states, as tensors and plain values (loadable with weights_only)."""
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    return {"torch": torch.get_rng_state(), "numpy": [name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss],
            "python": random.getstate()}


def set_rng_states(states: dict) -> None:
    torch.set_rng_state(states["torch"])
    name, keys, pos, has_gauss, gauss = states["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    random.setstate(states["python"])


def save_training_state(path: str | os.PathLike, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler,
                        epoch: int, history: list[dict], settings: dict, *, step: int = 0, totals: dict | None = None,
                        scaler=None, ema: nn.Module | None = None) -> None:
    """`epoch` is the last completed epoch (0-based, -1 before the first); `step` the optimiser steps already
    done in epoch `epoch + 1` (0 at an epoch boundary) and `totals` that partial epoch's running sums;
    `settings` are the run's options, checked on resume."""
    state = {
        "format": FORMAT,
        "model_name": getattr(model, "model_name", None),
        "model_config": json.dumps(dataclasses.asdict(model.config)) if hasattr(model, "config") else None,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "epoch": epoch,
        "step": step,
        "totals": dict(totals or {}),
        "scaler": scaler.state_dict() if scaler is not None else None,
        "ema": ema.state_dict() if ema is not None else None,
        "rng": rng_states(),
        "history": history,
        "settings": settings,
    }
    write_or_explain(Path(path), lambda tmp: torch.save(state, tmp))


def _disk_full(e: BaseException) -> bool:
    """ENOSPC, also as torch.save reports it (a RuntimeError from its zip writer: 'unexpected pos ...')."""
    if isinstance(e, OSError):
        return e.errno in (errno.ENOSPC, errno.EDQUOT)
    return isinstance(e, RuntimeError) and any(s in str(e) for s in ("unexpected pos", "failed writing", "No space left"))


def write_or_explain(path: Path, write) -> None:
    """`atomic_write(path, write)`; a full disk becomes one sentence naming the file and the free space (the
    temporary file is gone and the previous checkpoint untouched, as the rename never happened)."""
    try:
        atomic_write(path, write)
    except (OSError, RuntimeError) as e:
        if not _disk_full(e):
            raise
        raise CheckpointError(disk_full_message(path)) from e


def disk_full_message(path: Path) -> str:
    free = shutil.disk_usage(path.parent).free
    return (f"the disk is full: writing {str(path)!r} failed with {free / 2**20:.1f} MiB free on {str(path.parent)!r}; "
            "the previous checkpoint is kept (free some space or choose another --out, then --resume)")


def load_training_state(path: str | os.PathLike) -> dict:
    """The dict written by `save_training_state`; CheckpointError (one sentence) if missing or unusable."""
    p = Path(path)
    if p.is_dir():
        p = p / "last.pt"
    if not p.is_file():
        raise CheckpointError(f"cannot resume: {str(p)!r} does not exist (expected a last.pt written by vitkit train)")
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if not holds_objects(p, e):
            raise CheckpointError(f"cannot resume: {str(p)!r} could not be read (UnpicklingError)") from e
        raise CheckpointError(f"cannot resume: {pickled_objects(p)}") from e
    except Exception as e:  # corrupt or truncated file: torch raises several types
        raise CheckpointError(f"cannot resume: {str(p)!r} could not be read ({type(e).__name__})") from e
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"cannot resume: {str(p)!r} is not a vitkit training checkpoint")
    return state
