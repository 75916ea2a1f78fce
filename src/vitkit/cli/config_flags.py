"""Flags made from `TrainConfig`'s fields (train/config.py): the flag's name, value type, choices and help come
from the field and its metadata, and the help ends with the field's default, so no default is written twice."""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from typing import Any

from ..train.config import NON_NEGATIVE, POSITIVE, TrainConfig
from .options import integer, non_negative_float, non_negative_int, number_list, positive_float, positive_int

NUMBER_TYPES = {(int, POSITIVE): positive_int, (int, NON_NEGATIVE): non_negative_int, (int, None): integer,
                (float, POSITIVE): positive_float, (float, NON_NEGATIVE): non_negative_float, (float, None): float}


def field_default(f: dataclasses.Field) -> Any:
    return f.default_factory() if f.default is dataclasses.MISSING else f.default


def flag_name(f: dataclasses.Field) -> str:
    """`--field-name`, the metadata's `flag`, or `--no-field-name` for a switch that is on by default."""
    name = f.name.replace("_", "-")
    if f.metadata.get("flag"):
        return f.metadata["flag"]
    return f"--no-{name}" if field_default(f) is True and not f.metadata.get("negatable") else f"--{name}"


def value_type(hint: Any, check: str | None):
    """The argparse type of a field annotated `hint` (`X | None` counts as X); None for strings."""
    options = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        hint = options[0]
    if typing.get_origin(hint) is tuple:
        kinds = typing.get_args(hint)
        return number_list(kinds[0], None if Ellipsis in kinds else len(kinds))
    return NUMBER_TYPES.get((hint, check))


def help_text(f: dataclasses.Field, default: Any) -> str:
    """The field's help and its default: `(default 30)`, or for an unset one what unset means."""
    text = f.metadata["help"]
    if isinstance(default, bool) or f.metadata.get("shown", True) is False:
        return text
    if default in (None, ()):
        shown = f.metadata.get("unset")
        suffix = f"(default: {shown})" if shown else ""
    else:
        suffix = f"(default {format(default, 'g') if isinstance(default, float) else default})"
    return f"{text} {suffix}".strip().replace("%", "%%")


def add_config_flags(parser: argparse.ArgumentParser, names: typing.Iterable[str] | None = None,
                     defaults: dict | None = None, groups: dict | None = None, cls: type | None = None) -> None:
    """One flag per field of `cls` named in `names` (all but those filled by hand-written flags when None).
    `defaults` None: the flags carry no default (the parser's argument_default); else each flag defaults to
    its field's default or to `defaults[name]`. `groups` maps a field's metadata `group` to an argument group;
    `cls` is TrainConfig unless given."""
    cls = cls or TrainConfig
    hints = typing.get_type_hints(cls)
    wanted = set(names) if names is not None else None
    for f in dataclasses.fields(cls):
        if (wanted is not None and f.name not in wanted) or (wanted is None and "via" in f.metadata):
            continue
        default = field_default(f) if defaults is None else defaults.get(f.name, field_default(f))
        target = (groups or {}).get(f.metadata.get("group"), parser)
        kwargs = {} if defaults is None else {"default": default}
        if hints[f.name] is bool:
            action = argparse.BooleanOptionalAction if f.metadata.get("negatable") else \
                "store_false" if field_default(f) else "store_true"
            target.add_argument(flag_name(f), dest=f.name, action=action, help=help_text(f, default), **kwargs)
            continue
        kind = value_type(hints[f.name], f.metadata.get("check"))
        kwargs.update({k: f.metadata[k] for k in ("choices", "metavar") if k in f.metadata})
        target.add_argument(flag_name(f), dest=f.name, type=kind, help=help_text(f, default), **kwargs)
        for flag, metavar, more in f.metadata.get("also", ()):
            target.add_argument(flag, dest=f.name, type=kind, metavar=metavar, help=more)
