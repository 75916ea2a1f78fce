"""Sharded training checkpoints for FSDP runs, with `torch.distributed.checkpoint` (DCP): every rank writes its own
shards of the model, optimiser and EMA into one folder; rank 0 adds the rest of the training state (epoch and
step, schedule, grad scaler, history, settings, RNG) as `extra.pt`.

Atomic as a whole: the folder is written as `sharded/.NAME.tmp`, renamed to `sharded/NAME` once every rank's
shards and the metadata are on disk, and only then does `last.sharded` (a one-line JSON pointer, replaced
atomically) name it; the previous folder is removed last. A run killed mid-save leaves the pointer on the
previous complete checkpoint. DCP stores each tensor with its global shape, so a checkpoint loads at any world
size (resharding), also into one process without a process group. The folders must be on storage every rank
sees (a shared filesystem), as DCP's metadata lists every rank's files.
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path

import torch
from torch import nn

from ..errors import CheckpointError
from ..io import atomic_write
from .distributed import DistInfo, barrier
from .state import FORMAT, _disk_full, disk_full_message, rng_states

POINTER = "last.sharded"
FOLDER = "sharded"


def _dcp():
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint import state_dict as sd

    # one process without a process group is a supported case here (1-process runs, convert), not a slip
    warnings.filterwarnings("ignore", message="torch.distributed is disabled, unavailable or uninitialized")
    return dcp, sd


def _tensor_state(model: nn.Module, optimizer: torch.optim.Optimizer | None, ema) -> dict:
    """The tensors DCP saves and loads in place: model, optimiser (keyed by parameter names) and EMA weights,
    as this rank's shards (DTensors) under FSDP, whole tensors otherwise."""
    _, sd = _dcp()
    state = {"model": sd.get_model_state_dict(model)}
    if optimizer is not None:
        state["optimizer"] = sd.get_optimizer_state_dict(model, optimizer)
    if ema is not None:
        state["ema"] = sd.get_model_state_dict(ema.module)
    return state


def save_sharded_state(out: Path, model: nn.Module, optimizer, scheduler, epoch: int, history: list[dict],
                       settings: dict, info: DistInfo, *, step: int = 0, totals: dict | None = None, scaler=None,
                       ema=None, write=None) -> Path:
    """Write the training state as a sharded checkpoint under `out` (every rank calls this); returns its folder.
    `write(tensors, folder)` replaces DCP's save (tests use it to fail mid-save)."""
    from torch.distributed.checkpoint.api import CheckpointException  # a BaseException

    dcp, _ = _dcp()
    name = f"epoch{epoch + 1:04d}-step{step:06d}"
    root = out / FOLDER
    tmp, final = root / f".{name}.tmp", root / name
    if info.is_main:
        for leftover in root.glob(".*.tmp"):  # of saves killed half-way
            shutil.rmtree(leftover, ignore_errors=True)
        tmp.mkdir(parents=True)
    barrier(info)
    try:
        (write or (lambda tensors, folder: dcp.save(tensors, checkpoint_id=folder)))(_tensor_state(model, optimizer, ema),
                                                                                      tmp)
        if info.is_main:
            _finish(out, tmp, final, model, scheduler, epoch, history, settings, info, step, totals, scaler, ema)
    except (Exception, CheckpointException) as e:  # DCP gathers every rank's failure into one exception
        if info.is_main:
            shutil.rmtree(tmp, ignore_errors=True)
        if any(_disk_full(x) for x in _causes(e)):
            raise CheckpointError(disk_full_message(tmp)) from e
        raise
    barrier(info)
    return final


def _causes(e: BaseException) -> list[BaseException]:
    """`e`, its causes, and the per-rank failures of a DCP CheckpointException."""
    found, todo = [], [e]
    while todo:
        x = todo.pop()
        found.append(x)
        todo += [c for c in (x.__cause__, x.__context__) if c is not None and c not in found]
        todo += [pair[0] for pair in getattr(x, "failures", {}).values()]  # DCP's (exception, traceback) per rank
    return found


def _finish(out: Path, tmp: Path, final: Path, model, scheduler, epoch, history, settings, info, step, totals, scaler,
            ema) -> None:
    """Rank 0, once every shard is written: the rest of the state, the rename, the pointer, the old folder."""
    extra = {"format": FORMAT, "model_name": getattr(model, "model_name", None),
             "model_config": _config_json(model), "scheduler": scheduler.state_dict() if scheduler else None,
             "epoch": epoch, "step": step, "totals": dict(totals or {}), "history": history, "settings": settings,
             "scaler": scaler.state_dict() if scaler is not None else None, "rng": rng_states(),
             "ema_counts": _ema_counts(ema), "world_size": info.world_size}
    torch.save(extra, tmp / "extra.pt")
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    previous = _pointed(out)
    atomic_write(out / POINTER, lambda f: Path(f).write_text(json.dumps({"folder": f"{FOLDER}/{final.name}"})))
    if previous is not None and previous != final:
        shutil.rmtree(previous, ignore_errors=True)


def _config_json(model: nn.Module) -> str | None:
    import dataclasses

    config = getattr(model, "config", None)
    return json.dumps(dataclasses.asdict(config)) if config is not None else None


def _ema_counts(ema) -> dict | None:
    return None if ema is None else {"n_averaged": int(ema.n_averaged), "steps_seen": int(ema.steps_seen)}


def _pointed(out: Path) -> Path | None:
    p = out / POINTER
    if not p.is_file():
        return None
    try:
        return out / json.loads(p.read_text())["folder"]
    except (ValueError, KeyError, TypeError):
        raise CheckpointError(f"{str(p)!r} is not a vitkit sharded-checkpoint pointer (expected JSON with a "
                              "'folder' key)") from None


def sharded_folder(path: str | os.PathLike) -> Path:
    """The checkpoint folder of a run folder, its `last.sharded` pointer, or the folder itself."""
    p = Path(path)
    if p.is_dir() and (p / POINTER).is_file():
        p = p / POINTER
    folder = _pointed(p.parent) if p.name == POINTER else p
    if folder is None or not (folder / ".metadata").is_file() or not (folder / "extra.pt").is_file():
        raise CheckpointError(f"{str(path)!r} is not a complete vitkit sharded checkpoint (expected a run folder, its "
                              f"{POINTER} or a folder with .metadata and extra.pt)")
    return folder


def is_sharded_checkpoint(path: str | os.PathLike) -> bool:
    p = Path(path)
    return p.name == POINTER or (p.is_dir() and ((p / POINTER).is_file() or (p / ".metadata").is_file()))


def read_extra(folder: Path) -> dict:
    try:
        extra = torch.load(folder / "extra.pt", map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for a damaged file
        raise CheckpointError(f"cannot resume: {str(folder / 'extra.pt')!r} could not be read ({type(e).__name__})") from e
    if not isinstance(extra, dict) or extra.get("format") != FORMAT:
        raise CheckpointError(f"cannot resume: {str(folder)!r} is not a vitkit training checkpoint")
    return extra


def load_sharded_state(path: str | os.PathLike, model: nn.Module, optimizer=None, ema=None) -> dict:
    """Load the model, optimiser and EMA in place from a sharded checkpoint (at any world size: DCP reshards;
    every rank calls this) and return the rest of the state (as `load_training_state` does)."""
    dcp, sd = _dcp()
    folder = sharded_folder(path)
    extra = read_extra(folder)
    state = _tensor_state(model, optimizer, ema if ema is not None and extra.get("ema_counts") else None)
    dcp.load(state, checkpoint_id=folder)
    sd.set_model_state_dict(model, state["model"])
    if optimizer is not None:
        sd.set_optimizer_state_dict(model, optimizer, state["optimizer"])
    if "ema" in state:
        sd.set_model_state_dict(ema.module, state["ema"])
        ema.n_averaged.fill_(extra["ema_counts"]["n_averaged"])
        ema.steps_seen.fill_(extra["ema_counts"]["steps_seen"])
    return extra


def load_sharded_weights(path: str | os.PathLike, ema: bool = False) -> nn.Module:
    """The model (or its EMA copy) of a sharded checkpoint, whole, in this process (no process group needed)."""
    from ..registry import create_model

    dcp, _ = _dcp()
    folder = sharded_folder(path)
    extra = read_extra(folder)
    if ema and not extra.get("ema_counts"):
        raise CheckpointError(f"{str(path)!r} holds no EMA weights (the run had no --ema)")
    model = create_model(extra["model_name"], **json.loads(extra["model_config"]))
    key = "ema" if ema else "model"
    state = {key: model.state_dict()}
    dcp.load(state, checkpoint_id=folder)
    model.load_state_dict(state[key])
    return model
