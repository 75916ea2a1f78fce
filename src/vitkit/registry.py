"""Model registry: builders are registered by function name (timm's names where timm has the model)."""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import types
import typing
from collections.abc import Callable
from typing import TypeVar

from torch import nn

from .errors import ConfigError

_MODELS: dict[str, Callable[..., nn.Module]] = {}
C = TypeVar("C")


def register_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Register a builder under its function name; a second builder with the same name is a bug."""
    name = fn.__name__
    if name in _MODELS:
        raise ValueError(f"model {name!r} is registered twice")
    _MODELS[name] = fn
    return fn


def _load_families() -> None:
    from . import models  # noqa: F401  (importing the package registers every family)


def list_models(pattern: str = "*") -> list[str]:
    """Registered names matching a shell-style pattern, sorted."""
    _load_families()
    return sorted(n for n in _MODELS if fnmatch.fnmatch(n, pattern))


def create_model(name: str, checkpoint: str | None = None, **overrides) -> nn.Module:
    """Build a registered model; `overrides` replace config fields; `checkpoint` is any supported weights file."""
    _load_families()
    if name not in _MODELS:
        close = difflib.get_close_matches(name, list(_MODELS), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else "; `vitkit list` shows the registered names."
        raise ConfigError(f"unknown model {name!r}{hint}")
    model = _MODELS[name](**overrides)
    model.model_name = name
    if checkpoint is not None:
        from .checkpoint import load_weights

        load_weights(model, checkpoint)
    return model


def _coerce(value, hint):
    """JSON gives lists where configs hold tuples (possibly nested)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return value if value is None or not args else _coerce(value, args[0])
    if isinstance(value, list) and origin is tuple:
        args = typing.get_args(hint)
        inner = args[0] if args else None
        return tuple(_coerce(v, inner) for v in value) if inner is not None else tuple(value)
    return value


def build_config(base: C, overrides: dict) -> C:
    """`dataclasses.replace` that names the valid keys when one is unknown and turns lists into tuples."""
    fields = {f.name: f for f in dataclasses.fields(base)}
    unknown = sorted(set(overrides) - set(fields))
    if unknown:
        raise ConfigError(
            f"unknown option {', '.join(map(repr, unknown))} for {type(base).__name__}; "
            f"valid options are: {', '.join(sorted(fields))}"
        )
    hints = typing.get_type_hints(type(base))
    clean = {k: _coerce(v, hints.get(k)) for k, v in overrides.items()}
    return dataclasses.replace(base, **clean)
