"""What the commands that run a checkpoint share (eval, predict, visualize, export): the checkpoint argument
(positional or --checkpoint), the model it gives, the device and precision it runs in, and its inputs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import CheckpointError, ConfigError
from .command import Input, dataset
from .config_flags import add_config_flags
from .options import add_bf16, add_overrides, overrides_dict


def add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", nargs="?", help="required: a vitkit .safetensors (rebuilds its model), or any "
                   "weights file with --model; or give it as --checkpoint PATH")
    p.add_argument("--checkpoint", dest="checkpoint_flag", metavar="PATH",
                   help="the checkpoint, as a flag instead of the first argument")
    p.add_argument("--model", help="registered name, for weights files without vitkit metadata")
    add_overrides(p)


def resolve_checkpoint(args):
    """One checkpoint, positional or `--checkpoint` (with the flag, predict's first positional is a file)."""
    flag, positional = args.checkpoint_flag, args.checkpoint
    if flag and positional:
        if not hasattr(args, "files"):
            raise ConfigError(f"vitkit {args.command}: the checkpoint is given twice ({positional!r} and "
                              f"--checkpoint {flag!r}); give it once")
        args.files.insert(0, positional)
    args.checkpoint = flag or positional
    if not args.checkpoint:
        raise ConfigError(f"vitkit {args.command}: the following arguments are required: checkpoint "
                          "(as the first argument or --checkpoint PATH)")
    if hasattr(args, "files") and not args.files:
        raise ConfigError(f"vitkit {args.command}: no input files given (usage: vitkit {args.command} CHECKPOINT "
                          "FILE [FILE ...])")
    return args


def model_paths(args) -> list:
    """The checkpoint (a published tag is fetched, not read), then --input, the files and --data."""
    from ..registry import is_weights_name

    found = [] if is_weights_name(args.checkpoint) else [Input(args.checkpoint, "checkpoint", CheckpointError)]
    if getattr(args, "input", None):
        found.append(Input(args.input, "--input"))
    found += [Input(f, "input file") for f in getattr(args, "files", None) or []]
    return found + dataset(args)


def model_from(path: str, model_name: str | None, overrides: dict):
    """A model from a published tag, a foreign weights file with its registered name, or a vitkit checkpoint."""
    from ..registry import create_model, is_weights_name, load_checkpoint

    if is_weights_name(path):
        return create_model(path, pretrained=True, **overrides)
    if model_name:
        return create_model(model_name, checkpoint=path, **overrides)
    return load_checkpoint(path, **overrides)


def load_model(args):
    return model_from(args.checkpoint, args.model, overrides_dict(args.override)).eval()


def device_and_precision(args):
    """(torch.device, precision) from --device / --precision / --bf16, checked (one sentence if unusable)."""
    from ..routes import emulated_bf16_warning, inference_precision, processor
    from ..train.distributed import check_precision, resolve_device

    device = resolve_device(args.device)
    precision = "bf16" if args.bf16 else args.precision
    check_precision(precision, device)
    if precision == "auto":
        precision = str(inference_precision(processor(device)).value)
    warning = emulated_bf16_warning(processor(device), precision)
    if warning:
        print(f"note: {warning}", file=sys.stderr)
    return device, precision


def add_serving_args(p: argparse.ArgumentParser) -> None:
    """--device / --precision (train's, but fp32 unless asked) / --bf16 and --fast, for the commands that run a
    model (eval, predict, profile)."""
    add_config_flags(p, ("device", "precision"), defaults={"precision": "fp32"})
    add_bf16(p)
    p.add_argument("--fast", action="store_true", help="through vitkit.optimize_for_inference (bf16 where the "
                   "device has it, weights cast once)")


def serving_model(args):
    """(the checkpoint's model on its device, through the fast path with --fast, device, precision)."""
    from ..tools.fast import optimize_for_inference

    device, precision = device_and_precision(args)
    model = load_model(args).to(device)
    return (optimize_for_inference(model) if args.fast else model), device, precision


def read_inputs(args, model, files: list[str]):
    """(batch, class names or None): image or video files preprocessed for `model` as `predict` does — the
    model's own data config (size, interpolation, crop, mean/std), --data or the checkpoint's data.json."""
    from ..data import model_data_config, prediction_inputs
    from ..hub import class_names

    x, classes = prediction_inputs(files, model.input_shape(), args.data, Path(args.checkpoint).parent,
                                   model_data_config(model))
    return x, classes or class_names(model)  # a published tag's ImageNet / Kinetics names
