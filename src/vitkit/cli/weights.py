"""`vitkit weights [PATTERN]`: the published weights by tag (hub/cli.py prints them)."""

from __future__ import annotations

import argparse

from .command import Command


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("pattern", nargs="?", default="*", help="shell-style pattern over tags and names, e.g. 'swin*'")


def run(args) -> int:
    from ..hub.cli import list_tags

    return list_tags(args.pattern)


COMMAND = Command("list the published weights by tag, with accuracy and size", add_arguments, run)
