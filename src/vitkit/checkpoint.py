"""Weights files: vitkit's own safetensors (weights + model name and config as metadata, so a file rebuilds
its model by itself), and any supported foreign format, recognised by its keys and converted on load."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import torch
from torch import Tensor, nn

from .errors import CheckpointError
from .io import atomic_write

_atomic_write = atomic_write  # the old private name, still imported by train/

_WRAPPERS = ("model", "state_dict", "model_state", "module", "model_ema")


def save_checkpoint(model: nn.Module, path: str | os.PathLike) -> None:
    """Save weights (safetensors) with {model name, config} as metadata; written atomically."""
    from safetensors.torch import save_file

    name = getattr(model, "model_name", None)
    config = getattr(model, "config", None)
    if name is None or config is None:
        raise CheckpointError("save_checkpoint needs a model built by vitkit.create_model (it has no name/config)")
    meta = {"vitkit_model": name, "vitkit_config": json.dumps(dataclasses.asdict(config))}
    tensors = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=meta))


def _unwrap(obj) -> dict[str, Tensor]:
    while isinstance(obj, dict) and not any(isinstance(v, Tensor) for v in obj.values()):
        key = next((k for k in _WRAPPERS if k in obj), None)
        if key is None:
            break
        obj = obj[key]
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, Tensor) for v in obj.values()):
        raise ValueError("no state dict (a mapping of names to tensors) found in it")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def read_state_dict(path: str | os.PathLike) -> tuple[dict[str, Tensor], dict[str, str]]:
    """(state dict, metadata) from a .safetensors / .pth / .pt / .bin / .ckpt file; CheckpointError if unusable."""
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"checkpoint {str(p)!r} does not exist (expected a .safetensors or .pth weights file)")
    try:
        if p.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(p), framework="pt") as f:
                meta = f.metadata() or {}
                return {k: f.get_tensor(k) for k in f.keys()}, meta  # noqa: SIM118 (safe_open is no dict)
        return _unwrap(torch.load(p, map_location="cpu", weights_only=True)), {}
    except CheckpointError:
        raise
    except Exception as e:  # torch/safetensors raise many types for a corrupt file
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise CheckpointError(f"checkpoint {str(p)!r} could not be read: {reason}") from e


def load_weights(model: nn.Module, path: str | os.PathLike) -> str:
    """Load any supported weights file into `model` (converted and resized as needed); returns the source."""
    from .convert import to_vitkit

    state_dict, _ = read_state_dict(path)
    state_dict, source = to_vitkit(state_dict, model)
    load_state_dict(model, state_dict, str(path))
    return source


def load_state_dict(model: nn.Module, state_dict: dict[str, Tensor], origin: str = "state dict") -> None:
    """Strict load after the model adapts sizes (position tables); one-sentence CheckpointError on mismatch."""
    if hasattr(model, "adapt_state_dict"):
        state_dict = model.adapt_state_dict(dict(state_dict))
    own = model.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    shapes = [f"{k} {tuple(state_dict[k].shape)} vs {tuple(v.shape)}" for k, v in own.items()
              if k in state_dict and state_dict[k].shape != v.shape]
    name = getattr(model, "model_name", None) or type(model).__name__
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys (e.g. {', '.join(unexpected[:3])})")
        if shapes:
            parts.append(f"{len(shapes)} shape mismatches (e.g. {'; '.join(shapes[:2])})")
        raise CheckpointError(f"{origin} does not match model {name}: {'; '.join(parts)}")
    model.load_state_dict(state_dict, strict=True)
