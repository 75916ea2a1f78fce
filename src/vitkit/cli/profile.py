"""`vitkit profile MODEL [MODEL ...]`: parameters, GMACs, throughput and memory, optionally swept over a size."""

from __future__ import annotations

import argparse
import sys

from ..errors import ConfigError
from .command import Command
from .model_input import add_serving_args, device_and_precision
from .options import add_overrides, add_progress, overrides_dict, positive_int


def _sweep(text: str) -> tuple[str, list[int]]:
    key, sep, raw = text.partition("=")
    try:
        values = [int(v) for v in raw.split(",")]
    except ValueError:
        values = []
    if not sep or not values or min(values) <= 0:
        raise argparse.ArgumentTypeError(f"expected KEY=N1,N2,... (e.g. img_size=112,224,448), got {text!r}")
    return key.strip(), values


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("models", nargs="+", help="registered names or shell patterns (e.g. 'deit_*')")
    p.add_argument("--batch-size", type=positive_int, default=1, help="batch size for throughput")
    p.add_argument("--no-throughput", action="store_true", help="parameters and GMACs only (no compute)")
    p.add_argument("--memory", action="store_true", help="also the peak activation memory of one step")
    p.add_argument("--train", action="store_true", help="throughput and memory of a training step (fwd + bwd)")
    p.add_argument("--sweep", type=_sweep, help="KEY=N1,N2,...: profile at every img_size (or num_frames)")
    p.add_argument("--plot", help="with --sweep: draw GMACs, params, throughput and memory against the size (PNG)")
    add_progress(p)
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print the rows as JSON instead of a table")
    out.add_argument("--csv", action="store_true", help="print the rows as CSV instead of a table")
    add_serving_args(p)
    add_overrides(p)


def _model_names(patterns: list[str]) -> list[str]:
    from ..registry import list_models

    names: list[str] = []
    for pattern in patterns:
        found = list_models(pattern) if any(ch in pattern for ch in "*?[") else [pattern]
        if not found:
            raise ConfigError(f"no registered model matches {pattern!r}")
        names += found
    return names


def _check_builds(names: list[str], sweep: tuple | None, overrides: dict) -> None:
    """Unknown names and overrides fail here, with one sentence, before any timing."""
    import torch

    from ..registry import create_model

    key, values = sweep or (None, [None])
    for name in names:
        for v in values:
            with torch.device("meta"):
                create_model(name, **overrides, **({key: v} if key else {}))


def _rows(args, names: list[str], options: dict) -> list[dict]:
    from ..tools.profile import profile_model, sweep

    if not args.sweep:
        return [profile_model(n, **options) for n in names]
    from ..train.engine import progress_bar

    key, values = args.sweep
    bar, task = progress_bar(args.progress, f"sweep {key}", len(names) * len(values))
    with bar:
        return sweep(names, key, values, on_row=lambda row: bar.update(task, advance=1, info=row["model"]), **options)


def _print_table(args, rows: list[dict], precision: str) -> None:
    from rich.console import Console
    from rich.table import Table

    key = args.sweep[0] if args.sweep else None
    step = "training steps" if args.train else "samples"
    table = Table(title=f"vitkit profile (GMACs per sample; throughput in {step}/s, this machine)")
    cols = ([(key, key, str)] if key else []) + [
        ("model", "model", str), ("input", "input", str), ("params (M)", "params_m", "{:.2f}".format),
        ("GMACs", "gmacs", "{:.3f}".format)]
    if not args.no_throughput:
        cols.append((f"samples/s (batch {args.batch_size}, {precision})", "samples_per_s", "{:.1f}".format))
    if args.memory:
        cols.append(("peak MB", "peak_mem_mb", "{:.1f}".format))
    for title, _, _ in cols:
        table.add_column(title, justify="left" if title in ("model", "input") else "right", no_wrap=title == "model")
    for r in rows:
        table.add_row(*[fmt(r[k]) for _, k, fmt in cols])
    Console(width=None if sys.stdout.isatty() else 120).print(table)  # logs/pipes: room for full names


def run(args) -> int:
    from ..tools.profile import plot_sweep

    names = _model_names(args.models)
    overrides = overrides_dict(args.override)
    if args.plot and not args.sweep:
        raise ConfigError("profile --plot draws a sweep; add --sweep img_size=... (or num_frames=...)")
    _check_builds(names, args.sweep, overrides)
    device, precision = device_and_precision(args)
    rows = _rows(args, names, dict(batch_size=args.batch_size, throughput=not args.no_throughput, memory=args.memory,
                                   device=device, precision=precision, train=args.train, fast=args.fast, **overrides))
    if args.plot:
        plot_sweep(rows, args.sweep[0], args.plot)
    if args.json:
        import json

        print(json.dumps(rows, indent=1))
    elif args.csv:
        import csv

        w = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    else:
        _print_table(args, rows, precision)
        if args.plot:
            print(f"wrote {args.plot}")
    return 0


COMMAND = Command("parameters, GMACs and throughput of one or many models", add_arguments, run)
