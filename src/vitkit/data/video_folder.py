"""Video folders: `root/<class>/<video file>`, decoded with PyAV, seeking to the clip.

Which frames make a clip (`clip_indices`):
- "stride" (TimeSformer, MViT): `num_frames` frames `frame_stride` apart; training draws the start uniformly,
  evaluation centres the clip (or spreads `temporal_views` clips evenly over the video).
- "uniform" (ViViT, TSN-style): the video is cut into `num_frames` equal segments and one frame is taken per
  segment (a random one when training, the middle one — or the view's offset — when evaluating).

Decoding seeks to the key frame before the first wanted frame and decodes forward from there, seeking again
over long gaps, instead of decoding from the start (`read_frames`; frame numbers come from presentation
timestamps). TorchCodec (0.17, the release for this torch) installs from PyPI but needs the system's FFmpeg
shared libraries, which PyAV's wheels carry themselves; PyAV with seeking is what vitkit uses.

The frames go through the transform as one uint8 clip (C, T, H, W) (`create_transform(..., video)`), so a
training crop, flip or RandAugment op is drawn once per clip and applied to all its frames. Test views
(`test_views=(T, S)`: temporal clips × spatial crops along the longer side) make each item a stack of views
(V, C, T, H, W); `ViewAverage` wraps a model to average its logits over them.
Videos too short for the clip and files PyAV cannot decode raise DataError naming the file."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor, nn
from torchvision.transforms import v2

from ..errors import ConfigError, DataError
from .base import LabelledDataset
from .image_folder import find_classes
from .transforms import IMAGENET_MEAN, IMAGENET_STD, ClipLayout, Transform, float_steps, image_pipeline, interpolation_mode

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg")
SAMPLINGS = ("stride", "uniform")
SEEK_GAP = 32  # frames: a longer gap between wanted frames is crossed by seeking, a shorter one by decoding


class VideoNormalize:
    """(C, T, H, W) -> (x - mean) / std per channel."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]):
        self.mean = torch.tensor(mean).view(-1, 1, 1, 1)
        self.std = torch.tensor(std).view(-1, 1, 1, 1)

    def __call__(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.std

    def __repr__(self) -> str:
        return f"VideoNormalize({self.mean.flatten().tolist()}, {self.std.flatten().tolist()})"


def parse_views(text: str | Sequence[int] | None) -> tuple[int, int]:
    """"TxS" (temporal clips × spatial crops, e.g. 4x3) -> (T, S); None -> (1, 1)."""
    if text is None:
        return 1, 1
    try:
        t, s = (int(v) for v in (text.lower().split("x") if isinstance(text, str) else text))
    except (TypeError, ValueError):
        raise ConfigError(f"--test-views expects TxS (temporal clips × spatial crops), e.g. 4x3; got {text!r}") from None
    if t < 1 or s < 1:
        raise ConfigError(f"--test-views needs at least 1 temporal and 1 spatial view, got {t}x{s}")
    return t, s


def clip_indices(total: int, num_frames: int, frame_stride: int = 1, sampling: str = "stride",
                 train: bool = False, view: int = 0, views: int = 1) -> list[int]:
    """Frame numbers of one clip from a `total`-frame video (see the module doc); raises ValueError when the
    video is too short."""
    if sampling == "uniform":
        if total < num_frames:
            raise ValueError(f"has {total} frames, fewer than the {num_frames} needed for uniform sampling")
        seg = total / num_frames
        offsets = torch.rand(num_frames).tolist() if train else [(view + 0.5) / views] * num_frames
        return [min(total - 1, int(seg * (i + o))) for i, o in enumerate(offsets)]
    span = (num_frames - 1) * frame_stride + 1
    if total < span:
        raise ValueError(f"has {total} frames, fewer than the {span} needed for {num_frames} frames at stride "
                         f"{frame_stride}")
    room = total - span
    if views > room + 1:
        raise ValueError(f"has {total} frames, too few for {views} different clips of {span} frames")
    if train:
        start = int(torch.randint(0, room + 1, ()).item())
    elif views == 1:
        start = room // 2
    else:
        start = round(view * room / (views - 1))
    return [start + i * frame_stride for i in range(num_frames)]


def _frame_count(container, stream) -> int:
    """Frames in the stream: the container's count, else duration × rate, else 0 (unknown)."""
    if stream.frames:
        return stream.frames
    rate = stream.average_rate or stream.guessed_rate
    if rate and stream.duration and stream.time_base:
        return int(stream.duration * stream.time_base * rate)
    if rate and container.duration:
        return int(container.duration / 1_000_000 * rate)
    return 0


def _decode_error(path, e: Exception) -> DataError:
    detail = str(e).splitlines()[0] if str(e) else type(e).__name__
    return DataError(f"video {str(path)!r} could not be decoded ({detail}); expected a readable video file")


def _open(path):
    import av

    try:
        container = av.open(str(path))
    except Exception as e:  # PyAV raises many error types (InvalidDataError, ValueError, ...) for a bad file
        raise _decode_error(path, e) from e
    if not container.streams.video:
        container.close()
        raise DataError(f"video {str(path)!r} has no video stream")
    return container, container.streams.video[0]


def video_frame_count(path: str | os.PathLike) -> int:
    """Frames in a video file as its container records them (0 when unknown)."""
    container, stream = _open(path)
    with container:
        return _frame_count(container, stream)


def read_frames(path: str | os.PathLike, indices: Sequence[int], seek: bool = True) -> Tensor:
    """The frames numbered `indices` (0-based, repeats allowed) as (3, T, H, W) uint8. With `seek`, jump to the
    key frame before each run of wanted frames; without, decode from the first frame (the reference)."""
    wanted = sorted(set(indices))
    got: dict[int, Tensor] = {}
    container, stream = _open(path)
    try:
        with container:
            rate, tb = stream.average_rate or stream.guessed_rate, stream.time_base
            first = stream.start_time or 0
            timed = seek and rate and tb

            def number(frame) -> int:
                return round(float((frame.pts - first) * tb * rate))

            k = 0
            while k < len(wanted):
                if timed:
                    container.seek(first + int(wanted[k] / (rate * tb)), stream=stream, backward=True)
                n = -1
                for frame in container.decode(stream):
                    n = number(frame) if timed and frame.pts is not None else n + 1
                    if n < wanted[k]:
                        continue
                    while k < len(wanted) and wanted[k] < n:  # a frame the stream does not have
                        k += 1
                    if k < len(wanted) and n == wanted[k]:
                        got[n] = torch.from_numpy(frame.to_ndarray(format="rgb24"))
                        k += 1
                    if k == len(wanted) or (timed and wanted[k] - n > SEEK_GAP):
                        break
                else:
                    break  # end of stream
    except DataError:
        raise
    except Exception as e:
        raise _decode_error(path, e) from e
    missing = [i for i in wanted if i not in got]
    if missing and timed:  # a container whose seeking lands past the frame: read it from the start instead
        return read_frames(path, indices, seek=False)
    if missing:
        raise DataError(f"video {str(path)!r} ends before frame {missing[0]}; expected at least {wanted[-1] + 1} "
                        "frames")
    return torch.stack([got[i] for i in indices]).permute(3, 0, 1, 2)  # (T, H, W, 3) -> (3, T, H, W)


def read_clip(path: str | os.PathLike, num_frames: int, frame_stride: int = 1, sampling: str = "stride",
              train: bool = False, view: int = 0, views: int = 1) -> Tensor:
    """Decode one clip (see `clip_indices`) as (3, T, H, W) uint8; DataError naming the file when it is too
    short or cannot be decoded."""
    total = video_frame_count(path)
    if total == 0:  # the container does not know: count by decoding (rare: raw streams)
        container, stream = _open(path)
        with container:
            total = sum(1 for _ in container.decode(stream))
    try:
        indices = clip_indices(total, num_frames, frame_stride, sampling, train, view, views)
    except ValueError as e:
        raise DataError(f"video {str(path)!r} {e}") from None
    return read_frames(path, indices)


class SpatialViews(nn.Module):
    """Eval geometry with S crops: the shorter side to floor(size / crop_pct), then S crops of `size` spread
    evenly along the longer side (S=1: the centre crop). (T, C, H, W) -> (S, T, C, size, size)."""

    def __init__(self, size: int, crop_pct: float, interpolation: str, views: int):
        super().__init__()
        self.size, self.views = size, views
        self.resize = v2.Resize(math.floor(size / crop_pct + 1e-6), interpolation=interpolation_mode(interpolation),
                                antialias=True)

    def forward(self, x: Tensor) -> Tensor:
        x = self.resize(x)
        H, W = x.shape[-2:]
        s, S = self.size, self.views
        crops = []
        for k in range(S):
            f = 0.5 if S == 1 else k / (S - 1)
            top, left = (round((H - s) * f), (W - s) // 2) if H > W else ((H - s) // 2, round((W - s) * f))
            crops.append(x[..., top:top + s, left:left + s])
        return torch.stack(crops)


def multi_view_transform(cfg: dict, spatial_views: int) -> Transform:
    """uint8 clip (C, T, H, W) -> (S, C, T, size, size) normalised float crops, for `cfg` (a data config)."""
    size = cfg["input_size"][-1]
    crops = SpatialViews(size, cfg.get("crop_pct", 1.0), cfg.get("interpolation", "bilinear"), spatial_views)
    finish = v2.Compose([v2.ToImage(), *float_steps(cfg["mean"], cfg["std"])])

    def transform(clip: Tensor) -> Tensor:
        views = crops(ClipLayout()(clip))  # (S, T, C, s, s)
        return torch.stack([finish(v).transpose(0, 1) for v in views])  # (S, T, C, s, s) -> (S, C, T, s, s)

    return transform


class ViewAverage(nn.Module):
    """A model over stacks of views: (B, V, C, T, H, W) -> logits (B, K) averaged over the V views (the
    papers' multi-view test); a plain batch (B, C, T, H, W) passes through. `max_clips` bounds the clips of one
    forward (the evaluation batch counts clips, not videos): the B·V clips run in chunks of at most that many."""

    def __init__(self, model: nn.Module, max_clips: int | None = None):
        super().__init__()
        self.model, self.max_clips = model, max_clips
        self.num_classes = getattr(model, "num_classes", None)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 6:
            return self.model(x)
        B, V = x.shape[:2]
        clips = x.flatten(0, 1)  # (B, V, C, T, H, W) -> (B·V, C, T, H, W)
        logits = torch.cat([self.model(chunk) for chunk in clips.split(self.max_clips or len(clips))])
        return logits.view(B, V, -1).mean(1)  # (B·V, K) -> (B, V, K) -> (B, K)


class VideoFolder(LabelledDataset):
    """(clip, label) pairs from `root/<class>/<video>`; classes sorted by name.

    Args:
        root: folder with one sub-folder of video files per class.
        num_frames: T, frames per clip.
        frame_stride: take every `frame_stride`-th frame (a "stride" clip spans (T - 1)·stride + 1 frames).
        img_size: output side when no transform is given.
        transform: applied to the uint8 clip (C, T, H, W) (see `create_transform`); default: a resize to
            img_size and ImageNet normalisation.
        sampling: "stride" or "uniform" (see the module doc).
        train: random temporal offsets (else centred clips / evenly spread views).
        temporal_views: T test clips per video; items are then (T·S, C, T, H, W) stacks when the transform
            gives S spatial views (S, C, T, H, W), else (T, C, T, H, W).
    """

    def __init__(self, root: str | os.PathLike, num_frames: int = 8, frame_stride: int = 2, img_size: int = 224,
                 transform: Transform | None = None, sampling: str = "stride", train: bool = False,
                 temporal_views: int = 1):
        if num_frames < 1 or frame_stride < 1:
            raise DataError(f"num_frames and frame_stride must be at least 1, got {num_frames} and {frame_stride}")
        if sampling not in SAMPLINGS:
            raise ConfigError(f"unknown frame sampling {sampling!r}; expected one of {', '.join(SAMPLINGS)}")
        self.root, self.num_frames, self.frame_stride, self.img_size = Path(root), num_frames, frame_stride, img_size
        self.sampling, self.train, self.temporal_views = sampling, train, temporal_views
        self.classes, samples = find_classes(self.root, VIDEO_EXTENSIONS)
        self.samples = [(str(f), label) for f, label in samples]
        self.targets = [label for _, label in self.samples]
        self.transform = transform if transform is not None else image_pipeline(
            img_size, IMAGENET_MEAN, IMAGENET_STD, train=False, interpolation="bilinear", crop_pct=1.0,
            crop_mode="squash", video=True)

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        path, label = self.samples[i]
        V = self.temporal_views
        clips = [self.transform(read_clip(path, self.num_frames, self.frame_stride, self.sampling, self.train, v, V))
                 for v in range(V)]
        if V == 1 and clips[0].dim() == 4:
            return clips[0], label
        return torch.cat([c if c.dim() == 5 else c[None] for c in clips]), label  # (V, C, T, H, W)


def read_video(path: str | os.PathLike, num_frames: int, img_size: int | tuple[int, int],
               frame_stride: int = 2) -> Tensor:
    """A video file -> its centred clip resized to img_size as (3, T, H, W) floats in [0, 1]; DataError naming
    the file if it is too short or cannot be decoded."""
    clip = read_clip(path, num_frames, frame_stride)  # (3, T, H, W) uint8
    size = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
    frames = v2.functional.resize(ClipLayout()(clip), list(size), antialias=True)  # (T, 3, h, w)
    return ClipLayout()(frames).float().div_(255)
