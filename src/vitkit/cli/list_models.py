"""`vitkit list [PATTERN]`: the registered model names."""

from __future__ import annotations

import argparse

from ..errors import ConfigError
from .command import Command


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("pattern", nargs="?", default="*", help="shell-style pattern, e.g. 'deit*'")


def run(args) -> int:
    from ..registry import list_models

    names = list_models(args.pattern)
    if not names:
        raise ConfigError(f"no registered model matches {args.pattern!r}")
    print("\n".join(names))
    return 0


COMMAND = Command("list registered models", add_arguments, run)
