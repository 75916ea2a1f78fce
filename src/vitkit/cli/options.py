"""Flag value types and the flags several commands share: model overrides, --bf16, progress."""

from __future__ import annotations

import argparse
import ast
import re
from collections.abc import Callable

from ..errors import ConfigError


def _number(kind: type, low: float | None = None, strict: bool = False, what: str = "") -> Callable[[str], float]:
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what or kind.__name__}, got {text!r}") from None
        if low is not None and (value <= low if strict else value < low):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text}")
        return value
    return parse


integer = _number(int, what="an integer")
positive_int = _number(int, 0, strict=True, what="a positive integer")
non_negative_int = _number(int, 0, what="a non-negative integer")
positive_float = _number(float, 0, strict=True, what="a positive number")
non_negative_float = _number(float, 0, what="a non-negative number")


def number_list(kind: type, count: int | None = None) -> Callable[[str], tuple]:
    """`A,B,...` as a tuple of `kind` (exactly `count` of them when given)."""
    what = f"{count or 'one or more'} comma-separated {'integers' if kind is int else 'numbers'}"

    def parse(text: str) -> tuple:
        try:
            values = tuple(kind(v) for v in text.strip("[]() ").split(","))
        except ValueError:
            values = ()
        if not values or (count is not None and len(values) != count):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return values
    return parse


_BARE = re.compile(r"[A-Za-z_][\w.\-]*")


def parse_override(text: str) -> tuple[str, object]:
    """`key=value` with a Python/JSON literal value (`depth=4`, `img_size=[32,48]`, `qkv_bias=false`); a bare
    word is a string (`global_pool=avg`)."""
    key, sep, raw = text.partition("=")
    key, raw = key.strip(), raw.strip()
    if not sep or not key.isidentifier():
        raise ConfigError(f"--override expects key=value (e.g. depth=4), got {text!r}")
    lowered = {"true": True, "false": False, "null": None, "none": None}
    if raw.lower() in lowered:
        return key, lowered[raw.lower()]
    try:
        return key, ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        if _BARE.fullmatch(raw):
            return key, raw
        raise ConfigError(f"--override {key}: cannot parse the value {raw!r} (expected a number, list, "
                          "true/false or a word)") from None


def overrides_dict(items: list[str] | None) -> dict:
    return dict(parse_override(t) for t in items or [])


def add_overrides(p: argparse.ArgumentParser) -> None:
    p.add_argument("--override", action="append", metavar="KEY=VALUE",
                   help="model config override, repeatable (e.g. --override depth=4 --override img_size=32)")


def add_progress(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-progress", dest="progress", action="store_false",
                   help="no progress bar (there is none anyway when stderr is not a terminal)")


def add_bf16(p) -> None:
    p.add_argument("--bf16", action="store_true", help="same as --precision bf16")
