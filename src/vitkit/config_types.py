"""Config type checking: `build_config` replaces fields of a frozen config dataclass with user values (CLI
`--override`, YAML, keyword overrides), checking each against its field's annotation and naming what was
expected in one sentence."""

from __future__ import annotations

import dataclasses
import numbers
import types
import typing
from typing import TypeVar

from .errors import ConfigError

C = TypeVar("C")


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
