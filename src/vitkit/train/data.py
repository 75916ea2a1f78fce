"""Training and validation loaders for a run: this rank's share of a seeded shuffle (DistributedSampler, also
with one process, so one process × batch 16 sees the same samples per step as 2 ranks × batch 8), a resumable
position inside the epoch, per-sample augmentation seeds, and validation split across ranks without padding.

`build_loaders` is the seam the data pipeline extends (samplers, batch-level mixing)."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import islice

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler, Subset

from .distributed import DistInfo


class SeededSamples(Dataset):
    """Seeds torch's generator from (seed, epoch, rank, index) before reading a sample, so its augmentation is
    the same whichever worker reads it and whether or not the epoch was resumed half-way."""

    def __init__(self, dataset: Dataset, seed: int, rank: int):
        self.dataset, self.seed, self.rank, self.epoch = dataset, seed, rank, 0
        self.num_classes = getattr(dataset, "num_classes", None)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        torch.manual_seed((((self.seed * 1_000_003 + self.epoch) * 1_009 + self.rank) * 10_000_019 + index) % 2**63)
        return self.dataset[index]


class ResumableSampler(Sampler):
    """A sampler's order for the epoch, from its `skip`-th index on (a resumed epoch skips what was trained)."""

    def __init__(self, sampler: DistributedSampler):
        self.sampler, self.skip = sampler, 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        self.sampler.set_epoch(epoch)
        self.skip = skip

    def __iter__(self):
        return islice(iter(self.sampler), self.skip, None)

    def __len__(self) -> int:
        return max(0, len(self.sampler) - self.skip)


@dataclass
class Loaders:
    train: DataLoader
    val: DataLoader
    sampler: ResumableSampler
    samples: SeededSamples
    batch_size: int

    def start_epoch(self, epoch: int, step: int = 0, accum_steps: int = 1) -> None:
        """Position the training loader at optimiser step `step` of `epoch`."""
        self.samples.epoch = epoch
        self.sampler.set_epoch(epoch, step * accum_steps * self.batch_size)


def build_loaders(train_set: Dataset, val_set: Dataset, batch_size: int, info: DistInfo, seed: int = 0,
                  workers: int = 0, pin_memory: bool = False) -> Loaders:
    """Per-rank loaders; the last partial batch of an epoch is dropped when a full one exists."""
    samples = SeededSamples(train_set, seed, info.rank)
    # drop_last: every rank gets the same number of samples (DDP needs equal step counts)
    sampler = ResumableSampler(DistributedSampler(samples, info.world_size, info.rank, shuffle=True, seed=seed,
                                                  drop_last=info.enabled))
    per_rank = len(sampler)
    train = DataLoader(samples, batch_size, sampler=sampler, num_workers=workers, pin_memory=pin_memory,
                       drop_last=per_rank > batch_size)
    # validation: rank r takes samples r, r + world, ... (no padding, so nothing is counted twice)
    shard = Subset(val_set, range(info.rank, len(val_set), info.world_size)) if info.enabled else val_set
    val = DataLoader(shard, max(batch_size, 256), num_workers=workers, pin_memory=pin_memory)
    return Loaders(train, val, sampler, samples, batch_size)
