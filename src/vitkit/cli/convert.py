"""`vitkit convert WEIGHTS --out FILE`: a foreign (or sharded) weights file as a vitkit checkpoint, or with
`--to` a vitkit one in timm / hf / torchvision layout (hub/cli.py)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import CheckpointError, ConfigError
from .command import Command, Input, Output
from .model_input import model_from
from .options import add_overrides, overrides_dict


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..convert import TARGETS

    p.add_argument("weights", help="a timm / HF / torchvision / official / vitkit weights file, a published tag "
                   "(`vitkit weights`) with --to, or an FSDP run's sharded checkpoint (its folder or last.sharded)")
    p.add_argument("--model", help="the registered vitkit name the weights are for (required to read a foreign file; "
                   "a sharded checkpoint names its model)")
    p.add_argument("--to", choices=TARGETS, help="write the weights in this library's layout instead (hf: config.json "
                   "beside --out)")
    p.add_argument("--ema", action="store_true", help="a sharded checkpoint's EMA weights instead of the model's")
    p.add_argument("--out", required=True, help="file to write: a vitkit .safetensors (weights + name + config), or "
                   "with --to a .safetensors / .pth / .bin in the target's layout")
    add_overrides(p)


def paths(args) -> list:
    """The weights (a published tag is fetched; a folder is a sharded checkpoint) and --out."""
    from ..registry import is_weights_name

    fetched = is_weights_name(args.weights) or Path(args.weights).is_dir()
    return [*([] if fetched else [Input(args.weights, "weights file", CheckpointError)]), Output(args.out, "--out")]


def run(args) -> int:
    from ..checkpoint import load_weights, save_checkpoint
    from ..registry import create_model
    from ..train.sharded_state import is_sharded_checkpoint, load_sharded_weights

    if args.to:
        from ..hub.cli import convert_to

        return convert_to(args, model_from(args.weights, args.model, overrides_dict(args.override)))
    if is_sharded_checkpoint(args.weights):
        model = load_sharded_weights(args.weights, ema=args.ema)
        save_checkpoint(model, args.out)
        print(f"{args.weights} (sharded{', EMA' if args.ema else ''}) -> {args.out} ({model.model_name})")
        return 0
    if not args.model:
        raise ConfigError("vitkit convert: the following arguments are required: --model (the registered name of a "
                          "foreign weights file; a sharded checkpoint names its own model), or --to TARGET to write a "
                          "vitkit checkpoint in another layout")
    model = create_model(args.model, **overrides_dict(args.override))
    source = load_weights(model, args.weights)
    save_checkpoint(model, args.out)
    print(f"{args.weights} ({source} layout) -> {args.out} ({args.model})")
    return 0


COMMAND = Command("convert a foreign weights file into a vitkit checkpoint, or (--to) a vitkit one into timm / hf / "
                  "torchvision", add_arguments, run, paths)
