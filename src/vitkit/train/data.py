"""Training and validation loaders for a run: this rank's share of a seeded shuffle (DistributedSampler, also
with one process, so one process × batch 16 sees the same samples per step as 2 ranks × batch 8; or DeiT's
repeated-augmentation sampler), a resumable position inside the epoch, per-sample augmentation seeds, per-batch
Mixup/CutMix seeds, and validation split across ranks without padding.

Every random draw of the data pipeline is a function of (seed, epoch, rank, position in the rank's epoch order):
the same whichever worker makes it and whether or not the epoch was resumed half-way."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import islice

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler, Subset

from ..data.mixing import BatchMix, MixCollate
from ..data.sampler import RepeatedAugSampler
from .distributed import DistInfo


class SeededSamples(Dataset):
    """Reads `dataset[index]` for a key (position, index) after seeding torch's generator from (seed, epoch, rank,
    position), so a sample's augmentation is fixed by where it sits in the epoch (repeated-augmentation copies
    of one image, at different positions, are augmented differently). A batch read through `__getitems__` then
    seeds the generator from its first position, for the draws of the collate (Mixup/CutMix)."""

    def __init__(self, dataset: Dataset, seed: int, rank: int):
        self.dataset, self.seed, self.rank, self.epoch = dataset, seed, rank, 0
        self.num_classes = getattr(dataset, "num_classes", None)

    def __len__(self) -> int:
        return len(self.dataset)

    def _seed(self, position: int, stream: int) -> None:
        key = (((self.seed * 1_000_003 + self.epoch) * 1_009 + self.rank) * 10_000_019 + position) * 2 + stream
        # the CPU generator alone (what data pipelines draw from): torch.manual_seed also queues a seeding of every
        # accelerator's generators, recording a stack trace each time where none is initialised (~1 ms a sample)
        torch.default_generator.manual_seed(key % 2**63)

    def __getitem__(self, key: tuple[int, int]):
        position, index = key
        self._seed(position, 0)
        return self.dataset[index]

    def __getitems__(self, keys: list[tuple[int, int]]) -> list:
        items = [self[key] for key in keys]
        self._seed(keys[0][0], 1)  # the collate that follows in this process draws from here
        return items


class ResumableSampler(Sampler):
    """A sampler's order for the epoch as (position, index) keys, from position `skip` on (a resumed epoch skips
    what was trained), up to position `stop` (a run whose step budget ends inside this epoch)."""

    def __init__(self, sampler: DistributedSampler | RepeatedAugSampler):
        self.sampler, self.skip, self.stop = sampler, 0, None

    def set_epoch(self, epoch: int, skip: int = 0, stop: int | None = None) -> None:
        self.sampler.set_epoch(epoch)
        self.skip, self.stop = skip, stop

    def __iter__(self):
        return islice(enumerate(self.sampler), self.skip, self.stop)

    def __len__(self) -> int:
        end = len(self.sampler) if self.stop is None else min(self.stop, len(self.sampler))
        return max(0, end - self.skip)


@dataclass
class Loaders:
    train: DataLoader
    val: DataLoader
    sampler: ResumableSampler
    samples: SeededSamples
    batch_size: int

    def start_epoch(self, epoch: int, step: int = 0, accum_steps: int = 1, stop: int | None = None) -> None:
        """Position the training loader at optimiser step `step` of `epoch`, ending before step `stop` if given."""
        self.samples.epoch = epoch
        per_step = accum_steps * self.batch_size
        self.sampler.set_epoch(epoch, step * per_step, None if stop is None else stop * per_step)


def build_loaders(train_set: Dataset, val_set: Dataset, batch_size: int, info: DistInfo, seed: int = 0,
                  workers: int = 0, pin_memory: bool = False, repeated_aug: int = 1,
                  mix: BatchMix | None = None, val_batch_size: int | None = None) -> Loaders:
    """Per-rank loaders; the last partial batch of an epoch is dropped when a full one exists. `repeated_aug`
    > 1 samples with DeiT's RepeatedAugSampler; `mix` (Mixup/CutMix) runs as the training loader's collate;
    validation batches hold `val_batch_size` samples (default: the training batch)."""
    samples = SeededSamples(train_set, seed, info.rank)
    if repeated_aug > 1:
        order = RepeatedAugSampler(samples, info.world_size, info.rank, repeated_aug, seed=seed)
    else:  # drop_last: every rank gets the same number of samples (DDP needs equal step counts)
        order = DistributedSampler(samples, info.world_size, info.rank, shuffle=True, seed=seed, drop_last=info.enabled)
    sampler = ResumableSampler(order)
    per_rank = len(sampler)
    train = DataLoader(samples, batch_size, sampler=sampler, num_workers=workers, pin_memory=pin_memory,
                       drop_last=per_rank > batch_size, collate_fn=MixCollate(mix) if mix is not None else None)
    # validation: rank r takes samples r, r + world, ... (no padding, so nothing is counted twice)
    shard = Subset(val_set, range(info.rank, len(val_set), info.world_size)) if info.enabled else val_set
    val = DataLoader(shard, val_batch_size or batch_size, num_workers=workers, pin_memory=pin_memory)
    return Loaders(train, val, sampler, samples, batch_size)
