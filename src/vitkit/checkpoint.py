"""Weights files: vitkit's own safetensors (weights + model name and config as metadata, so a file rebuilds
its model by itself), and any supported foreign format, recognised by its keys and converted on load."""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
from pathlib import Path

import torch
from torch import Tensor, nn

from .errors import CheckpointError
from .io import atomic_write

_WRAPPERS = ("model", "state_dict", "model_state", "module", "model_ema")


def save_checkpoint(model: nn.Module, path: str | os.PathLike, metadata: dict[str, str] | None = None,
                    state_dict: dict[str, Tensor] | None = None) -> None:
    """Save weights (safetensors) with {model name, config} and `metadata` as metadata; written atomically.
    `state_dict` replaces the model's own (the gathered weights of a sharded model)."""
    from safetensors.torch import save_file

    name = getattr(model, "model_name", None)
    config = getattr(model, "config", None)
    if name is None or config is None:
        raise CheckpointError("save_checkpoint needs a model built by vitkit.create_model (it has no name/config)")
    meta = {"vitkit_model": name, "vitkit_config": json.dumps(dataclasses.asdict(config)), **(metadata or {})}
    tensors = {k: v.detach().contiguous() for k, v in (model.state_dict() if state_dict is None else state_dict).items()}
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
    except pickle.UnpicklingError as e:
        if holds_objects(p, e):
            raise CheckpointError(pickled_objects(p)) from e
        raise CheckpointError(f"checkpoint {str(p)!r} could not be read: it is neither safetensors nor a torch.save "
                              "file of tensors") from e
    except Exception as e:  # torch/safetensors raise many types for a corrupt file
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise CheckpointError(f"checkpoint {str(p)!r} could not be read: {reason}") from e


def holds_objects(path: Path, error: pickle.UnpicklingError) -> bool:
    """Whether torch's weights-only unpickler refused a real pickle (a global it does not allow, or a raw pickle
    stream) rather than bytes that are no pickle at all."""
    with open(path, "rb") as f:
        raw_pickle = f.read(1) == b"\x80"  # the PROTO opcode that starts pickles of protocol 2 and up
    return raw_pickle or "Unsupported global" in str(error)


def pickled_objects(path: Path) -> str:
    """The sentence for a pickle that holds more than tensors (torch's weights-only unpickler refused it)."""
    return (f"{str(path)!r} holds Python objects besides tensors, and vitkit loads weights only (it never runs code "
            "from a checkpoint); save a plain state dict of tensors (or .safetensors) instead")


def non_finite(state_dict: dict[str, Tensor]) -> list[str]:
    """Names of the floating-point tensors holding NaN or ±inf."""
    return [k for k, v in state_dict.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]


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
    bad = non_finite(state_dict)
    if bad:
        raise CheckpointError(f"{origin} holds NaN or infinite values in {len(bad)} tensors ({', '.join(bad[:5])}"
                              f"{', ...' if len(bad) > 5 else ''}); it cannot be used (the run that wrote it diverged)")
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
