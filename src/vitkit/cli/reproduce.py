"""`vitkit reproduce [CLAIM ...]`: the review's claims, run by tools/reproduce.py into a report folder."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import ConfigError
from .command import Command, Output


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("claims", nargs="*", metavar="CLAIM", help="claims to run (C1 ... C10; default: all)")
    p.add_argument("--quick", action="store_true", help="tiny budgets: every claim in about a minute")
    p.add_argument("--list", action="store_true", help="list the claims and exit")
    p.add_argument("--seeds", help="comma-separated seeds (default: each claim's own, one seed with --quick)")
    p.add_argument("--out", default="reports/review", help="report folder (README.md, one PNG and JSON per claim)")


def paths(args) -> list:
    return [Output(args.out, "--out", folder=True)]


def run(args) -> int:
    from ..tools.reproduce import load_claims, run_claims, select

    claims = load_claims()
    if args.list:
        print("\n".join(f"{cid}  {m.TITLE}" for cid, m in claims.items()))
        return 0
    ids = select(claims, args.claims)
    seeds = None
    if args.seeds:
        try:
            seeds = [int(s) for s in args.seeds.split(",")]
        except ValueError:
            raise ConfigError(f"--seeds expects comma-separated integers, got {args.seeds!r}") from None
    run_claims(ids, Path(args.out), quick=args.quick, seeds=seeds)
    print(f"report: {Path(args.out) / 'README.md'}")
    return 0


COMMAND = Command("run the review's claims (experiments/) and write reports/review/", add_arguments, run, paths)
