"""The command-line side of published weights: `vitkit weights [PATTERN]` and `vitkit convert CKPT --to TARGET`."""

from __future__ import annotations

import fnmatch

import torch

from ..errors import ConfigError
from . import LEFT_OUT, list_weights


def list_tags(pattern: str) -> int:
    """Print one line per tag matching `pattern`: tag, source, published top-1, parameters, fp32 size, file."""
    from ..registry import create_model
    from ..tools.profile import count_params

    rows = list_weights(pattern)
    if not rows:
        raise ConfigError(f"no published weights match {pattern!r}; `vitkit weights` lists them all")
    width = max(len(w.tag) for w in rows)
    print(f"{'tag':<{width}}  {'source':<11}  {'top-1':>6}  {'params':>8}  {'size':>9}  file")
    for w in rows:
        with torch.device("meta"):
            n = count_params(create_model(w.tag))
        top1 = "-" if w.top1 is None else f"{w.top1:.2f}"
        print(f"{w.tag:<{width}}  {w.source:<11}  {top1:>6}  {n / 1e6:>7.1f}M  {n * 4 / 2**20:>7.0f}MB  {w.where}")
    for name, why in LEFT_OUT.items():
        if fnmatch.fnmatch(name, pattern):
            print(f"not listed: {name}: {why}")
    return 0


def convert_to(args, model) -> int:
    """`vitkit convert CKPT --to TARGET --out FILE`: `model` is CKPT's (a vitkit checkpoint, a foreign file with
    --model, or a published tag), built by the CLI."""
    from ..convert.export import export_notes, export_weights

    written = export_weights(model.eval(), args.to, args.out)
    for note in export_notes(model, args.to):
        print(f"note: {note}")
    print(f"{args.weights} ({model.model_name}) -> {args.to}: {', '.join(map(str, written))}")
    return 0
