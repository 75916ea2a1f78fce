"""Model registry: builders are registered by function name (timm's names where timm has the model)."""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import numbers
import types
import typing
from collections.abc import Callable, Sequence
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


def create_model(name: str, checkpoint: str | None = None, features_only: bool = False,
                 out_indices: int | Sequence[int] | None = None, pretrained: bool = False, **overrides) -> nn.Module:
    """Build a registered model; `overrides` replace config fields; `checkpoint` is any supported weights file.
    With `features_only`, a backbone whose forward gives the maps at `out_indices` (timm's rule: an int takes the
    last n levels, a list those levels; default every stage of a hierarchical model, the last 3 blocks of an
    isotropic one), with `feature_info` per output (models/features.py). `name` may be a published checkpoint's
    tag `name.tag` or an alias (`swin_t`, `microsoft/cvt-13`); with `pretrained` its weights are fetched and loaded
    (a bare name takes its default tag) and the model carries their data config (hub/)."""
    if out_indices is not None and not features_only:
        raise ConfigError("out_indices selects backbone outputs; pass features_only=True with it")
    _load_families()
    from .hub import resolve, weights_overrides

    name, weights = resolve(name, pretrained)
    if weights is not None:
        overrides = {**weights_overrides(weights), **overrides}
        if pretrained:
            if checkpoint is not None:
                raise ConfigError("give either pretrained=True or checkpoint=PATH, not both")
            from .hub import fetch

            checkpoint = fetch(weights)  # before the model is built: a download that fails, fails fast
    if name not in _MODELS:
        close = difflib.get_close_matches(name, list(_MODELS), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else "; `vitkit list` shows the registered names."
        raise ConfigError(f"unknown model {name!r}{hint}")
    model = _MODELS[name](**overrides)
    model.model_name = name
    if weights is not None:
        model.pretrained_weights = weights  # its data config and class names travel with the model
    if checkpoint is not None:
        from .checkpoint import load_weights

        load_weights(model, checkpoint)
    if features_only:
        from .models.features import FeatureBackbone

        return FeatureBackbone(model, out_indices)
    return model


class _WrongType(Exception):
    """A value that does not fit a config field's annotation (turned into a ConfigError by build_config)."""


_KINDS = {bool: ("true or false", "true/false values"), int: ("an integer", "integers"),
          float: ("a number", "numbers"), str: ("a string", "strings")}


def _describe(hint, plural: bool = False) -> str:
    """A config annotation in words: `int | tuple[int, int]` -> "an integer or a list of 2 integers"."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join("null" if a is type(None) else _describe(a, plural) for a in args)
    if origin is typing.Literal:
        return "one of " + ", ".join(map(repr, args))
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {_describe(args[0], plural=True)} (e.g. [2, 2])" if args[0] is int else \
                f"a list of {_describe(args[0], plural=True)}"
        if args and len(set(args)) == 1:
            return f"a list of {len(args)} {_describe(args[0], plural=True)}"
        return "a list"
    if hint in _KINDS:
        return _KINDS[hint][plural]
    return f"a {getattr(hint, '__name__', hint)}"


def _typed(value, hint):
    """`value` as the config field annotated `hint` holds it (lists become tuples, whole numbers become floats
    where a float is expected); _WrongType if it does not fit. Annotations other than bool, int, float, str,
    tuples, Literal and their unions (with None) are not checked."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        for alternative in args:
            try:
                return _typed(value, alternative)
            except _WrongType:
                pass
        raise _WrongType
    if origin is typing.Literal:
        if isinstance(value, str) and value in args:
            return value
        raise _WrongType
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise _WrongType
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_typed(v, args[0]) for v in value)
        if args and len(value) != len(args):
            raise _WrongType
        return tuple(_typed(v, a) for v, a in zip(value, args)) if args else tuple(value)
    if hint is type(None):
        if value is None:
            return None
        raise _WrongType
    if hint is bool and isinstance(value, bool):
        return value
    if hint is int and isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    if hint is float and isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    if hint is str and isinstance(value, str):
        return value
    if hint in _KINDS:
        raise _WrongType
    return value


def build_config(base: C, overrides: dict) -> C:
    """`dataclasses.replace` that names the valid keys when one is unknown, and checks each value against its
    field's type (int, float, bool, str, tuple of ints, Literal choices), naming key, value and expected type."""
    fields = {f.name: f for f in dataclasses.fields(base)}
    unknown = sorted(set(overrides) - set(fields))
    if unknown:
        raise ConfigError(
            f"unknown option {', '.join(map(repr, unknown))} for {type(base).__name__}; "
            f"valid options are: {', '.join(sorted(fields))}"
        )
    hints = typing.get_type_hints(type(base))
    clean = {}
    for key, value in overrides.items():
        try:
            clean[key] = _typed(value, hints.get(key))
        except _WrongType:
            raise ConfigError(f"option {key}={value!r} does not fit {type(base).__name__}: expected "
                              f"{_describe(hints[key])}") from None
    return dataclasses.replace(base, **clean)
