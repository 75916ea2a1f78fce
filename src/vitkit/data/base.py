"""What every vitkit dataset shares: (input, label) items over named classes."""

from __future__ import annotations

from collections.abc import Sequence

from torch.utils.data import Dataset

from ..errors import DataError


def check_split(dataset: str, split: str, splits: Sequence[str]) -> None:
    """DataError (one sentence) unless `split` is one of the dataset's splits."""
    if split not in splits:
        raise DataError(f"unknown {dataset} split {split!r}; expected one of {', '.join(splits)}")


def check_at_least(dataset: str, name: str, value: int | None, minimum: int, why: str = "") -> None:
    """DataError (one sentence) when a given option is below its minimum; None (not given) is accepted."""
    if value is not None and value < minimum:
        raise DataError(f"{dataset} {name} must be at least {minimum}{f' ({why})' if why else ''}, got {value}")


class LabelledDataset(Dataset):
    """(input, label) pairs; `classes` names the labels, `targets` holds each item's label."""

    classes: Sequence[str]
    targets: Sequence[int]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def __len__(self) -> int:
        return len(self.targets)
