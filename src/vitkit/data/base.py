"""What every vitkit dataset shares: (input, label) items over named classes."""

from __future__ import annotations

from collections.abc import Sequence

from torch.utils.data import Dataset


class LabelledDataset(Dataset):
    """(input, label) pairs; `classes` names the labels, `targets` holds each item's label."""

    classes: Sequence[str]
    targets: Sequence[int]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def __len__(self) -> int:
        return len(self.targets)
