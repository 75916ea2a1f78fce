"""`vitkit eval CKPT`: top-1 / top-5 / loss of a checkpoint on a dataset split (video: over T×S views)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import DataError
from .command import Command
from .config_flags import add_config_flags
from .model_input import add_model_args, add_serving_args, model_paths, resolve_checkpoint, serving_model
from .options import add_progress, non_negative_int, positive_int


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_model_args(p)
    p.add_argument("--data", default="digits", help="'digits', 'moving-digits' or a folder")
    p.add_argument("--split", choices=("train", "val", "test"), default="test")
    p.add_argument("--batch-size", type=positive_int, default=256, help="clips per forward (with --test-views, a "
                   "video's views count: batch 8 at 4x3 is 8 clips, the views of one video chunked to fit) (default %(default)s)")
    p.add_argument("--workers", type=non_negative_int, help="DataLoader worker processes (default: the machine's "
                   "cores for folders, 0 for the bundled sets)")
    p.add_argument("--test-views", metavar="TxS", help="video models: T temporal clips x S spatial crops per video, "
                   "logits averaged (e.g. 4x3; default: the training run's test_views, else 1x1)")
    add_progress(p)
    add_config_flags(p, ("frame_stride", "sampling"), defaults={})  # as the training run read its clips
    add_serving_args(p)


def run_setting(checkpoint: str, key: str):
    """A setting of the training run that wrote `checkpoint` (its folder's config.yaml), or None."""
    from ..train.config import load_config

    saved = Path(checkpoint).parent / "config.yaml"
    return load_config(saved).get(key) if saved.is_file() else None


def run(args) -> int:
    from torch.utils.data import DataLoader

    from ..data import build_dataset, default_workers, model_data_config
    from ..data.video_folder import ViewAverage, parse_views
    from ..train.engine import evaluate

    model, device, precision = serving_model(args)
    views = parse_views(args.test_views or run_setting(args.checkpoint, "test_views") or "1x1")
    data = build_dataset(args.data, args.split, model.input_shape(), augment=False, data_cfg=model_data_config(model),
                         frame_stride=args.frame_stride, sampling=args.sampling, test_views=views)
    if data.num_classes != model.num_classes:
        raise DataError(f"the model predicts {model.num_classes} classes but {args.data!r} has {data.num_classes}")
    per_video = views[0] * views[1]
    if per_video > 1:
        model = ViewAverage(model, max_clips=args.batch_size)
    workers = default_workers(args.data) if args.workers is None else args.workers
    loader = DataLoader(data, max(1, args.batch_size // per_video), num_workers=workers,
                        pin_memory=device.type == "cuda")
    m = evaluate(model, loader, precision, device, progress=args.progress)
    shown = f", {views[0]}x{views[1]} views" if views != (1, 1) else ""
    print(f"{args.checkpoint} on {args.data} {args.split} ({len(data)} samples{shown}): top-1 {m['acc1']:.2f}%  "
          f"top-5 {m['acc5']:.2f}%  loss {m['loss']:.4f}")
    return 0


COMMAND = Command("accuracy of a checkpoint on a dataset split", add_arguments, run, model_paths, resolve_checkpoint)
