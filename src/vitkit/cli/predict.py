"""`vitkit predict CKPT FILE [FILE ...]`: the top-k classes of a checkpoint for image or video files."""

from __future__ import annotations

import argparse

from .command import Command
from .model_input import add_model_args, add_serving_args, model_paths, read_inputs, resolve_checkpoint, serving_model
from .options import positive_int


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_model_args(p)
    p.add_argument("files", nargs="*", metavar="file", help="one or more image (or, for video models, video) files")
    p.add_argument("--topk", type=positive_int, default=5)
    p.add_argument("--data", help="the dataset the model was trained on, for its preprocessing and class names "
                   "(default: read from data.json next to the checkpoint, else ImageNet statistics)")
    add_serving_args(p)


def run(args) -> int:
    import torch

    from ..train.distributed import autocast

    model, device, precision = serving_model(args)
    x, classes = read_inputs(args, model, args.files)
    with torch.no_grad(), autocast(device, precision):
        probs = model(x.to(device)).float().softmax(-1).cpu()
    k = min(args.topk, probs.shape[1])
    top = probs.topk(k, dim=1)
    for f, p, i in zip(args.files, top.values.tolist(), top.indices.tolist()):
        names = [classes[j] if classes and j < len(classes) else str(j) for j in i]
        print(f"{f}: " + ", ".join(f"{n} {q:.3f}" for n, q in zip(names, p)))
    return 0


COMMAND = Command("top-k classes of a checkpoint for image/video files", add_arguments, run, model_paths,
                  resolve_checkpoint)
