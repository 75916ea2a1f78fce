"""Small checks the families' `validate_config` functions are made of; each raises ConfigError with one sentence.

Written on branch i9b for ViViT and TimeSformer with the same names and messages as the checks helper i9a adds
to `models/base.py`; at merge these imports move to `.base` and this file goes.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..errors import ConfigError
from .base import to_2tuple


def check_divisible(name: str, value: int, by_name: str, by: int, expected: str | None = None) -> None:
    """value % by == 0, e.g. a width and its head count."""
    if value % by:
        raise ConfigError(f"{name} {value} is not divisible by {by_name} {by}; "
                          f"{expected or f'choose {by_name} dividing {name}'}")


def check_choice(name: str, value: str, choices: Iterable[str]) -> None:
    """value is one of the accepted strings."""
    choices = tuple(choices)
    if value not in choices:
        raise ConfigError(f"{name} must be {', '.join(map(repr, choices[:-1]))} or {choices[-1]!r}, got {value!r}")


def check_patch_multiple(img_size: int | tuple[int, int], patch_size: int) -> None:
    """Both sides of the image the model is built for are multiples of the patch size."""
    if any(s % patch_size for s in to_2tuple(img_size)):
        raise ConfigError(f"img_size {img_size} is not a multiple of patch_size {patch_size}; choose an image size "
                          f"whose sides the patch size divides")
