"""`vitkit visualize CKPT --out FILE.png`: position tables, a query's attention per layer and head, or rollout."""

from __future__ import annotations

import argparse

from ..errors import ConfigError
from .command import Command, Output
from .model_input import add_model_args, load_model, model_paths, read_inputs, resolve_checkpoint
from .options import non_negative_float


def _query(text: str) -> tuple[int, ...] | None:
    if text == "cls":
        return None
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'cls' or patch coordinates like 3,5 or 1,3,5, got {text!r}") from None


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_model_args(p)
    p.add_argument("--what", choices=("pos-embed", "attention", "rollout"), default="pos-embed",
                   help="position tables; a query's attention per layer and head; or attention rollout of --input")
    p.add_argument("--input", help="image or video file for --what attention / rollout")
    p.add_argument("--data", help="the training dataset, for --input's preprocessing (as in predict)")
    p.add_argument("--query", type=_query, default=None,
                   help="for --what attention: 'cls' (the class token; the mean of all tokens without one) or a patch "
                   "y,x (images) / t,y,x (videos) on the first layer's token grid (default: cls)")
    p.add_argument("--discard-ratio", type=non_negative_float, default=0.0,
                   help="rollout: drop this fraction of the lowest attention weights per layer (default %(default)s)")
    p.add_argument("--gif", help="rollout: also write the frames as an animated GIF")
    p.add_argument("--out", required=True, help="PNG file to write")


def paths(args) -> list:
    return [*model_paths(args), Output(args.out, "--out")]


def run(args) -> int:
    from ..tools import visualize as vis

    model = load_model(args)
    if args.what == "pos-embed":
        vis.plot_position_tables(model, args.out)
    else:
        if not args.input:
            raise ConfigError(f"visualize --what {args.what} needs --input IMAGE (or VIDEO for a video model)")
        x, _ = read_inputs(args, model, [args.input])
        layers = vis.record(model, x)
        if args.what == "attention":
            vis.plot_attention(layers, args.out, args.query)
        else:
            vis.plot_rollout(layers, x[0], args.out, args.discard_ratio)
            if args.gif:
                vis.save_gif(layers, x[0], args.gif, args.discard_ratio)
                print(f"wrote {args.gif}")
    print(f"wrote {args.out}")
    return 0


COMMAND = Command("plot position tables, attention maps or attention rollout", add_arguments, run, paths,
                  resolve_checkpoint)
