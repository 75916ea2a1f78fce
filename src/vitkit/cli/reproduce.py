"""`vitkit reproduce [CLAIM ...]`: the review's claims, run by tools/reproduce.py into a report folder (or the report
rebuilt from its raw results with --from-raw). The flags and the command live in tools/reproduce.py, so
`python -m vitkit.tools.reproduce` is the same command."""

from __future__ import annotations

import argparse

from .command import Command, Output


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..tools.reproduce import add_arguments as reproduce_arguments

    reproduce_arguments(p)


def paths(args) -> list:
    return [Output(args.out, "--out", folder=True)]


def run(args) -> int:
    from ..tools.reproduce import command

    return command(args)


COMMAND = Command("run the review's claims (experiments/) and write reports/review/", add_arguments, run, paths)
