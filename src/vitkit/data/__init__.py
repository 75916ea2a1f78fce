"""Datasets: the bundled digits, generated moving digits (video), image folders and video folders.

`build_dataset(spec, split, input_shape)` picks one from a short spec: "digits", "moving-digits", or a folder
path (image or video folder by the model's input shape: (C, H, W) or (C, T, H, W)). A folder with `train/`,
`val/` (and optionally `test/`) sub-folders uses the one named by `split`; any other folder is used as it is
for every split."""

from __future__ import annotations

from pathlib import Path

from torch.utils.data import Dataset

from ..errors import ConfigError, DataError
from .config import create_transform, data_config, model_data_config
from .digits import DIGITS_MEAN, DIGITS_STD, Digits, digits_transform
from .image_folder import ImageFolder, open_image, read_image
from .transforms import imagenet_stats, parse_randaugment

SPLITS = ("train", "val", "test")
BUILTIN = ("digits", "moving-digits")


def _split_folder(root: Path, split: str) -> Path:
    if (root / "train").is_dir():
        if (root / split).is_dir():
            return root / split
        if split == "test" and (root / "val").is_dir():
            return root / "val"
        raise DataError(f"data folder {str(root)!r} has a train/ sub-folder but no {split}/ (expected train/ and val/)")
    return root


def default_workers(spec: str, local_ranks: int = 1) -> int:
    """DataLoader workers when none are asked for: this process's share of the cores (the cores ÷ the ranks on
    this node, at least 1) for files to decode; none for the in-memory bundled and generated sets (workers would
    only add start-up time there)."""
    import os

    if spec in BUILTIN:
        return 0
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // max(1, local_ranks))


def default_config(input_shape: tuple[int, ...]) -> dict:
    """The data config of a model without one: ImageNet statistics, bicubic, the shorter side to the input size
    then a centre crop."""
    mean, std = imagenet_stats(input_shape[0])
    cfg = {"input_size": (input_shape[0], *input_shape[-2:]), "interpolation": "bicubic", "mean": tuple(mean),
           "std": tuple(std), "crop_pct": 1.0, "crop_mode": "center"}
    if len(input_shape) == 4:
        cfg["num_frames"] = input_shape[1]
    return cfg


def build_dataset(spec: str, split: str, input_shape: tuple[int, ...], augment: bool | None = None,
                  data_cfg: dict | None = None, randaugment: str | None = None, reprob: float = 0.0,
                  frame_stride: int = 2, sampling: str = "stride", test_views: tuple[int, int] = (1, 1),
                  train_options: dict | None = None) -> Dataset:
    """A dataset of (input, label) pairs whose inputs have `input_shape` ((C, H, W) or (C, T, H, W)).

    `augment` defaults to split == "train". Folders are preprocessed with `data_cfg` (the model's
    `data_config`; default `default_config(input_shape)`): DeiT's training pipeline with `randaugment` (timm's string)
    and random erasing `reprob`, or the config's evaluation resize and crop. Digits keep their flip-free
    affine augmentation. Video folders take `frame_stride`, `sampling` ("stride" / "uniform") and, for
    evaluation, `test_views` (temporal clips, spatial crops): items become (views, C, T, H, W) stacks.
    `train_options` (scale_jitter, aspect_jitter, color_augment) go to a folder's training pipeline."""
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    train = split == "train" if augment is None else augment
    video = len(input_shape) == 4
    C, size = input_shape[0], tuple(input_shape[-2:])
    views = test_views[0] * test_views[1]
    if views > 1 and (train or not video):
        raise ConfigError(f"--test-views {test_views[0]}x{test_views[1]} is for evaluating video models; "
                          "expected 1x1 for image models and training")
    if spec == "digits":
        if video:
            raise DataError("the digits set holds images but the model takes videos; use --data moving-digits")
        if size[0] != size[1]:
            raise DataError(f"the digits set is square but the model takes {size[0]}×{size[1]} images")
        return Digits(split, img_size=size[0], in_chans=C, transform=digits_transform(train, C, randaugment, reprob))
    if spec == "moving-digits":
        if not video:
            raise DataError("moving-digits holds videos but the model takes images; use --data digits")
        if views > 1:
            raise ConfigError("test views need a video folder; moving-digits clips are exactly num_frames long")
        try:
            from .moving_digits import MovingDigits
        except ImportError as e:
            raise DataError("the moving-digits dataset is not available in this installation") from e
        return MovingDigits(split, num_frames=input_shape[1], img_size=size[0], in_chans=C)
    root = Path(spec)
    if not root.exists():
        raise DataError(f"unknown dataset {spec!r}: expected {' or '.join(BUILTIN)}, or an existing folder")
    if not root.is_dir():
        raise DataError(f"dataset {spec!r} is a file; expected a folder in the layout root/<class>/<file>")
    folder = _split_folder(root, split)
    cfg = data_cfg if data_cfg is not None else default_config(input_shape)
    if video:
        try:
            from .video_folder import VideoFolder, multi_view_transform
        except ImportError as e:
            raise DataError("video folders are not available in this installation") from e
        if C != 3:
            raise DataError(f"video folders hold RGB videos but the model takes {C} channels (expected in_chans=3)")
        transform = (multi_view_transform(cfg, test_views[1]) if test_views[1] > 1 else
                     create_transform(cfg, train, randaugment=randaugment, reprob=reprob, **(train_options or {})))
        return VideoFolder(folder, num_frames=input_shape[1], frame_stride=frame_stride, img_size=size[0],
                           transform=transform, sampling=sampling, train=train, temporal_views=test_views[0])
    transform = create_transform(cfg, train, randaugment=randaugment, reprob=reprob, **(train_options or {}))
    return ImageFolder(folder, transform=transform, in_chans=C)


def data_info(spec: str, dataset: Dataset, in_chans: int, data_cfg: dict | None = None) -> dict:
    """What prediction needs to preprocess a file like the training data did, and the class names. Folders
    were normalised with `data_cfg`'s statistics (the model's data config; default ImageNet's)."""
    if spec in BUILTIN:
        mean, std = _builtin_stats(spec, in_chans)
    elif data_cfg is not None:
        mean, std = list(data_cfg["mean"]), list(data_cfg["std"])
    else:
        mean, std = imagenet_stats(in_chans)
    classes = list(getattr(dataset, "classes", None) or range(getattr(dataset, "num_classes", 0)))
    return {"data": spec, "classes": [str(c) for c in classes], "mean": mean, "std": std}


def _builtin_stats(spec: str, in_chans: int) -> tuple[list[float], list[float]]:
    if spec == "moving-digits":
        from .moving_digits import MOVING_DIGITS_MEAN, MOVING_DIGITS_STD

        return [MOVING_DIGITS_MEAN] * in_chans, [MOVING_DIGITS_STD] * in_chans
    return [DIGITS_MEAN] * in_chans, [DIGITS_STD] * in_chans


def prediction_config(input_shape: tuple[int, ...], data: str | None = None, checkpoint_dir: Path | None = None,
                      data_cfg: dict | None = None) -> tuple[dict, list[str] | None]:
    """(data config, class names or None) to preprocess files for a model: from `data` ("digits", a folder...),
    else the data.json a training run wrote next to its checkpoint, else `data_cfg` (the model's own)."""
    import json

    C = input_shape[0]
    cfg = dict(data_cfg) if data_cfg is not None else default_config(input_shape)
    info_file = checkpoint_dir / "data.json" if checkpoint_dir is not None else None
    if data is not None:
        if data not in BUILTIN and not Path(data).is_dir():
            raise DataError(f"unknown dataset {data!r}: expected {' or '.join(BUILTIN)}, or an existing folder")
        info = {"data": data, "classes": None}
        if data in BUILTIN:
            mean, std = _builtin_stats(data, C)
            if data == "moving-digits":
                from .moving_digits import MovingDigits

                classes = list(MovingDigits.classes)
            else:
                classes = list(Digits.classes)
            info.update(mean=mean, std=std, classes=classes)
        else:
            info["classes"] = ImageFolder(_split_folder(Path(data), "train")).classes
    elif info_file is not None and info_file.is_file():
        info = json.loads(info_file.read_text())
    else:
        info = {"classes": None}
    if "mean" in info:
        if len(info["mean"]) != C:
            raise DataError(f"the model takes {C} channels but its training data had {len(info['mean'])}")
        cfg.update(mean=tuple(info["mean"]), std=tuple(info["std"]))
    if info.get("data") in BUILTIN:  # generated at the input size: a plain resize, no crop
        cfg.update(interpolation="bilinear", crop_pct=1.0, crop_mode="squash")
    return cfg, info.get("classes")


def prediction_inputs(files: list[str], input_shape: tuple[int, ...], data: str | None = None,
                      checkpoint_dir: Path | None = None, data_cfg: dict | None = None):
    """(batch (B, *input_shape), class names or None) for image/video files, preprocessed as
    `prediction_config` says."""
    import torch

    cfg, classes = prediction_config(input_shape, data, checkpoint_dir, data_cfg)
    transform = create_transform(cfg, train=False)
    batch = []
    for f in files:
        if not Path(f).is_file():
            raise DataError(f"input file {f!r} does not exist")
        if len(input_shape) == 4:
            try:
                from .video_folder import read_clip
            except ImportError as e:
                raise DataError("reading video files is not available in this installation") from e
            batch.append(transform(read_clip(f, num_frames=input_shape[1], frame_stride=2)))
        else:
            batch.append(transform(open_image(f)))
    return torch.stack(batch), classes


__all__ = [
    "Digits",
    "ImageFolder",
    "build_dataset",
    "create_transform",
    "data_config",
    "data_info",
    "default_config",
    "default_workers",
    "digits_transform",
    "model_data_config",
    "parse_randaugment",
    "prediction_config",
    "prediction_inputs",
    "read_image",
]
