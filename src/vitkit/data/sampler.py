"""Repeated augmentation (Hoffer et al., arXiv 1901.09335; DeiT §6 and its `samplers.RASampler`): each image
appears `num_repeats` times in an epoch's index list, the copies spread over the ranks so that each rank
augments its own copy, and the shards are what DeiT's sampler gives for the same (epoch, ranks).

The epoch's permutation depends on the epoch only (DeiT's `g.manual_seed(self.epoch)`, plus `seed`, 0 by
default), so all ranks agree on it. DeiT keeps the epoch's length at the dataset's size rounded down to a
multiple of 256 (`selected_round=256`; then an epoch sees about N / num_repeats distinct images, each
num_repeats times); `selected_round=0` keeps the whole repeated list (every image num_repeats times per epoch).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sized

import torch
from torch.utils.data import Sampler

from ..errors import ConfigError


class RepeatedAugSampler(Sampler[int]):
    """Indices of one rank's shard of an epoch with every index repeated `num_repeats` times."""

    def __init__(self, dataset: Sized, num_replicas: int = 1, rank: int = 0, num_repeats: int = 3,
                 shuffle: bool = True, seed: int = 0, selected_round: int = 256):
        if num_repeats < 1:
            raise ConfigError(f"--repeated-aug must be at least 1, got {num_repeats}")
        if not 0 <= rank < num_replicas:
            raise ConfigError(f"rank {rank} is outside the {num_replicas} processes of the run")
        self.n, self.num_replicas, self.rank, self.num_repeats = len(dataset), num_replicas, rank, num_repeats
        self.shuffle, self.seed, self.epoch = shuffle, seed, 0
        self.num_samples = math.ceil(self.n * num_repeats / num_replicas)
        self.total_size = self.num_samples * num_replicas
        if not selected_round:
            self.num_selected = self.num_samples
        elif self.n >= selected_round:
            self.num_selected = min(self.n // selected_round * selected_round // num_replicas, self.num_samples)
        else:  # DeiT's rounding would give an empty epoch: one pass's worth, as timm does
            self.num_selected = min(math.ceil(self.n / num_replicas), self.num_samples)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        if self.shuffle:
            g = torch.Generator()
            g.manual_seed(self.seed + self.epoch)
            order = torch.randperm(self.n, generator=g)
        else:
            order = torch.arange(self.n)
        indices = order.repeat_interleave(self.num_repeats).tolist()  # i, i, i, j, j, j, ...
        indices += indices[:self.total_size - len(indices)]  # pad to a multiple of the ranks
        return iter(indices[self.rank:self.total_size:self.num_replicas][:self.num_selected])

    def __len__(self) -> int:
        return self.num_selected
