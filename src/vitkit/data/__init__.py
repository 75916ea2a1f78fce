"""Datasets: the bundled digits, generated moving digits (video), image folders and video folders.

`build_dataset(spec, split, input_shape)` picks one from a short spec: "digits", "moving-digits", or a folder
path (image or video folder by the model's input shape: (C, H, W) or (C, T, H, W)). A folder with `train/`,
`val/` (and optionally `test/`) sub-folders uses the one named by `split`; any other folder is used as it is
for every split."""

from __future__ import annotations

from pathlib import Path

from torch.utils.data import Dataset

from ..errors import DataError
from .digits import DIGITS_MEAN, DIGITS_STD, Digits, digits_transform
from .image_folder import ImageFolder, read_image
from .transforms import Normalize, Resize, image_transform, imagenet_stats

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


def build_dataset(spec: str, split: str, input_shape: tuple[int, ...], augment: bool | None = None) -> Dataset:
    """A dataset of (input, label) pairs whose inputs have `input_shape` ((C, H, W) or (C, T, H, W)).
    `augment` defaults to split == "train"."""
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    train = split == "train" if augment is None else augment
    video = len(input_shape) == 4
    C, size = input_shape[0], tuple(input_shape[-2:])
    if spec == "digits":
        if video:
            raise DataError("the digits set holds images but the model takes videos; use --data moving-digits")
        if size[0] != size[1]:
            raise DataError(f"the digits set is square but the model takes {size[0]}×{size[1]} images")
        return Digits(split, img_size=size[0], in_chans=C, transform=digits_transform(train, C))
    if spec == "moving-digits":
        if not video:
            raise DataError("moving-digits holds videos but the model takes images; use --data digits")
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
    if video:
        try:
            from .video_folder import VideoFolder
        except ImportError as e:
            raise DataError("video folders are not available in this installation") from e
        if C != 3:
            raise DataError(f"video folders hold RGB videos but the model takes {C} channels (expected in_chans=3)")
        return VideoFolder(folder, num_frames=input_shape[1], img_size=size[0])
    return ImageFolder(folder, transform=image_transform(size, train, C), in_chans=C)


def data_info(spec: str, dataset: Dataset, in_chans: int) -> dict:
    """What prediction needs to preprocess a file like the training data did, and the class names."""
    mean, std = _builtin_stats(spec, in_chans) if spec in BUILTIN else imagenet_stats(in_chans)
    classes = list(getattr(dataset, "classes", None) or range(getattr(dataset, "num_classes", 0)))
    return {"data": spec, "classes": [str(c) for c in classes], "mean": mean, "std": std}


def _builtin_stats(spec: str, in_chans: int) -> tuple[list[float], list[float]]:
    if spec == "moving-digits":
        from .moving_digits import MOVING_DIGITS_MEAN, MOVING_DIGITS_STD

        return [MOVING_DIGITS_MEAN] * in_chans, [MOVING_DIGITS_STD] * in_chans
    return [DIGITS_MEAN] * in_chans, [DIGITS_STD] * in_chans


def prediction_inputs(files: list[str], input_shape: tuple[int, ...], data: str | None = None,
                      checkpoint_dir: Path | None = None):
    """(batch (B, *input_shape), class names or None) for image/video files. Preprocessing follows `data`
    ("digits", a folder, ...) or the data.json a training run wrote next to its checkpoint."""
    import json

    import torch

    C = input_shape[0]
    info_file = checkpoint_dir / "data.json" if checkpoint_dir is not None else None
    if data is not None:
        info = {"data": data, "classes": None, **dict(zip(("mean", "std"), imagenet_stats(C)))}
        if data not in BUILTIN and not Path(data).is_dir():
            raise DataError(f"unknown dataset {data!r}: expected {' or '.join(BUILTIN)}, or an existing folder")
        if data in BUILTIN:
            mean, std = _builtin_stats(data, C)
            if data == "moving-digits":
                from .moving_digits import MovingDigits

                classes = list(MovingDigits.classes)
            else:
                classes = list(Digits.classes)
            info.update(mean=mean, std=std, classes=classes)
        elif Path(data).is_dir():
            info["classes"] = ImageFolder(_split_folder(Path(data), "train")).classes
    elif info_file is not None and info_file.is_file():
        info = json.loads(info_file.read_text())
    else:
        info = {"classes": None, **dict(zip(("mean", "std"), imagenet_stats(C)))}
    if len(info["mean"]) != C:
        raise DataError(f"the model takes {C} channels but its training data had {len(info['mean'])}")
    normalize = Normalize(info["mean"], info["std"])
    batch = []
    for f in files:
        if not Path(f).is_file():
            raise DataError(f"input file {f!r} does not exist")
        if len(input_shape) == 4:
            try:
                from .video_folder import read_video
            except ImportError as e:
                raise DataError("reading video files is not available in this installation") from e
            clip = read_video(f, num_frames=input_shape[1], img_size=input_shape[-1])  # (C, T, H, W) in [0, 1]
            batch.append((clip - normalize.mean[:, None]) / normalize.std[:, None])
        else:
            batch.append(normalize(Resize(tuple(input_shape[-2:]))(read_image(f, C))))
    return torch.stack(batch), info.get("classes")


__all__ = [
    "Digits",
    "ImageFolder",
    "build_dataset",
    "data_info",
    "digits_transform",
    "image_transform",
    "prediction_inputs",
    "read_image",
]
