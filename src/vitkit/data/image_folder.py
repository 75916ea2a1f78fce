"""Image folders in torchvision's ImageFolder layout: `root/<class>/<image>`, classes sorted by name.
Unreadable images are reported with their path; a folder without classes or images is refused."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from ..errors import DataError
from .base import LabelledDataset
from .transforms import ToChannels, Transform

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


def find_classes(root: Path, extensions: tuple[str, ...]) -> tuple[list[str], list[tuple[Path, int]]]:
    """Sorted class names and (file, class index) pairs; DataError when there is nothing to use."""
    if not root.is_dir():
        raise DataError(f"data folder {str(root)!r} does not exist (expected root/<class>/<file> folders)")
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        raise DataError(f"data folder {str(root)!r} has no class sub-folders (expected root/<class>/<file>)")
    samples = [(f, i) for i, c in enumerate(classes) for f in sorted((root / c).rglob("*"))
               if f.is_file() and f.suffix.lower() in extensions]
    if not samples:
        raise DataError(f"data folder {str(root)!r} has no files with extensions {', '.join(extensions)}")
    return classes, samples


def open_image(path: str | Path):
    """An image file -> an RGB PIL image (decoded, uint8); DataError naming the file if it cannot be decoded."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            return img.convert("RGB")
    except Exception as e:  # PIL raises several types for missing, truncated or unknown files
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise DataError(f"cannot read image {str(path)!r} ({reason})") from e


def read_image(path: str | Path, in_chans: int = 3) -> Tensor:
    """An image file -> (in_chans, H, W) floats in [0, 1]; DataError naming the file if it cannot be decoded.
    One channel is the grey level, three are RGB, any other count replicates the grey level."""
    from torchvision.transforms.v2 import functional as TF

    x = TF.to_dtype(TF.pil_to_tensor(open_image(path)), torch.float32, scale=True)  # (3, H, W) in [0, 1]
    return ToChannels(in_chans)(x)


class ImageFolder(LabelledDataset):
    """(image after `transform`, class index) for every image under root/<class>/. The transform gets the
    decoded RGB PIL image (see `create_transform`); without one, items are (in_chans, H, W) floats in [0, 1]."""

    def __init__(self, root: str | Path, transform: Transform | None = None, in_chans: int = 3,
                 extensions: tuple[str, ...] = IMAGE_EXTENSIONS):
        self.root = Path(root)
        self.classes, self.samples = find_classes(self.root, extensions)
        self.targets = [t for _, t in self.samples]
        self.transform, self.in_chans = transform, in_chans

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        path, target = self.samples[i]
        if self.transform is None:
            return read_image(path, self.in_chans), target
        return self.transform(open_image(path)), target
