"""Video folders: `root/<class>/<video file>`, decoded with PyAV. Each item is `num_frames` frames taken every
`frame_stride` frames from a clip centred in the video (from the start when the container does not know its
frame count), resized to `img_size`, as a (3, T, H, W) float tensor normalised with ImageNet statistics.
Videos too short for the clip and files PyAV cannot decode raise DataError naming the file."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import DataError
from .base import LabelledDataset
from .image_folder import find_classes
from .transforms import IMAGENET_MEAN, IMAGENET_STD, Transform

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg")


class VideoNormalize:
    """(C, T, H, W) -> (x - mean) / std per channel."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]):
        self.mean = torch.tensor(mean).view(-1, 1, 1, 1)
        self.std = torch.tensor(std).view(-1, 1, 1, 1)

    def __call__(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.std

    def __repr__(self) -> str:
        return f"VideoNormalize({self.mean.flatten().tolist()}, {self.std.flatten().tolist()})"


def resize_video(x: Tensor, size: int | tuple[int, int]) -> Tensor:
    """(C, T, H, W) -> (C, T, h, w): bilinear per frame, antialiased when shrinking."""
    size = (size, size) if isinstance(size, int) else tuple(size)
    if tuple(x.shape[-2:]) == size:
        return x
    shrink = x.shape[-2] > size[0] or x.shape[-1] > size[1]
    y = F.interpolate(x.transpose(0, 1), size=size, mode="bilinear", align_corners=False, antialias=shrink)
    return y.transpose(0, 1)  # (T, C, h, w) -> (C, T, h, w)


def read_clip(path: str | os.PathLike, num_frames: int, frame_stride: int) -> Tensor:
    """Decode `num_frames` RGB frames, `frame_stride` apart, from a clip centred in the video: (3, T, H, W) uint8."""
    import av

    needed = (num_frames - 1) * frame_stride + 1
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise DataError(f"video {str(path)!r} has no video stream")
            stream = container.streams.video[0]
            total = stream.frames  # 0 when the container does not record it
            start = max(0, (total - needed) // 2) if total >= needed else 0
            keep, n = [], 0
            for n, frame in enumerate(container.decode(stream), start=1):
                i = n - 1 - start
                if i >= 0 and i % frame_stride == 0:
                    keep.append(torch.from_numpy(frame.to_ndarray(format="rgb24")))
                    if len(keep) == num_frames:
                        break
    except DataError:
        raise
    except Exception as e:  # PyAV raises many error types (InvalidDataError, ValueError, ...) for a bad file
        detail = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise DataError(f"video {str(path)!r} could not be decoded ({detail}); expected a readable video file") from e
    if len(keep) < num_frames:
        raise DataError(f"video {str(path)!r} has {n} frames, fewer than the {needed} needed for {num_frames} frames "
                        f"at stride {frame_stride}")
    return torch.stack(keep).permute(3, 0, 1, 2)  # (T, H, W, 3) -> (3, T, H, W)


def read_video(path: str | os.PathLike, num_frames: int, img_size: int | tuple[int, int],
               frame_stride: int = 2) -> Tensor:
    """A video file -> its centred clip as (3, T, img_size, img_size) floats in [0, 1] (what VideoFolder feeds its
    transform); DataError naming the file if it is too short or cannot be decoded."""
    clip = read_clip(path, num_frames, frame_stride).float().div_(255)  # (3, T, H, W) uint8 -> [0, 1]
    return resize_video(clip, img_size)


class VideoFolder(LabelledDataset):
    """(clip (3, num_frames, img_size, img_size), label) pairs from `root/<class>/<video>`; classes sorted by name.

    Args:
        root: folder with one sub-folder of video files per class.
        num_frames: T, frames per clip.
        frame_stride: take every `frame_stride`-th frame (a clip spans (T - 1)·stride + 1 frames).
        img_size: frames are resized to img_size × img_size.
        transform: applied to the (3, T, H, W) float clip in [0, 1]; default: ImageNet mean/std normalisation.
    """

    def __init__(self, root: str | os.PathLike, num_frames: int = 8, frame_stride: int = 2, img_size: int = 224,
                 transform: Transform | None = None):
        if num_frames < 1 or frame_stride < 1:
            raise DataError(f"num_frames and frame_stride must be at least 1, got {num_frames} and {frame_stride}")
        self.root, self.num_frames, self.frame_stride, self.img_size = Path(root), num_frames, frame_stride, img_size
        self.classes, samples = find_classes(self.root, VIDEO_EXTENSIONS)
        self.samples = [(str(f), label) for f, label in samples]
        self.targets = [label for _, label in self.samples]
        self.transform = transform if transform is not None else VideoNormalize(IMAGENET_MEAN, IMAGENET_STD)

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        path, label = self.samples[i]
        return self.transform(read_video(path, self.num_frames, self.img_size, self.frame_stride)), label
