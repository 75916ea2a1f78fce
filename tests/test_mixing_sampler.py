"""Mixup / CutMix batches and soft targets, and the repeated-augmentation sampler against DeiT's (timm's copy)."""

from collections import Counter

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.transforms import v2

from vitkit.data.mixing import BatchMix, MixCollate
from vitkit.data.sampler import RepeatedAugSampler
from vitkit.errors import ConfigError


def _batch(B=6, K=5, video=False):
    g = torch.Generator().manual_seed(1)
    shape = (B, 3, 4, 8, 8) if video else (B, 3, 8, 8)
    return torch.rand(shape, generator=g), torch.arange(B) % K


@pytest.mark.parametrize("mixup,cutmix", [(0.8, 0.0), (0.0, 1.0), (0.8, 1.0)])
def test_targets_are_distributions_and_mixing_follows_the_inputs(mixup, cutmix):
    x, y = _batch()
    mix = BatchMix(5, mixup, cutmix, mix_prob=1.0, switch_prob=0.5)
    for seed in range(5):
        torch.manual_seed(seed)
        xm, t = mix(x, y)
        assert xm.shape == x.shape and t.shape == (6, 5)
        assert torch.allclose(t.sum(1), torch.ones(6))
        # v2 pairs each sample with the batch rolled by one: the weight on the own label is lambda
        lam = t[0, y[0]].item() if y[0] != y[-1] else None
        if lam is not None and cutmix == 0:
            assert torch.allclose(xm, lam * x + (1 - lam) * x.roll(1, 0), atol=1e-6)


def test_mixing_matches_torchvisions_for_the_same_generator():
    x, y = _batch()
    for ours, ref in ((BatchMix(5, mixup_alpha=0.8), v2.MixUp(alpha=0.8, num_classes=5)),
                      (BatchMix(5, cutmix_alpha=1.0), v2.CutMix(alpha=1.0, num_classes=5))):
        torch.manual_seed(3)
        a = ours(x, y)
        torch.manual_seed(3)
        b = ref(x, y)
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    # both on: one draw picks CutMix with probability switch_prob, then v2's own draws follow
    both = BatchMix(5, 0.8, 1.0, switch_prob=0.5)
    for seed in range(6):
        torch.manual_seed(seed)
        a = both(x, y)
        torch.manual_seed(seed)
        ref = v2.CutMix(alpha=1.0, num_classes=5) if torch.rand(()).item() < 0.5 else v2.MixUp(alpha=0.8, num_classes=5)
        b = ref(x, y)
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_mix_prob_zero_gives_one_hot_and_videos_share_the_box_over_frames():
    x, y = _batch()
    xm, t = BatchMix(5, cutmix_alpha=1.0, mix_prob=0.0)(x, y)
    assert torch.equal(xm, x) and torch.equal(t, F.one_hot(y, 5).float())
    xv, yv = _batch(video=True)
    torch.manual_seed(0)
    xm, t = BatchMix(5, cutmix_alpha=1.0)(xv, yv)
    assert xm.shape == xv.shape
    pasted = xm != xv  # (B, C, T, H, W): the CutMix box is the same on every frame
    assert pasted.any() and torch.equal(pasted, pasted[:, :, :1].expand_as(pasted))


def test_soft_target_cross_entropy_composes_label_smoothing_like_timm():
    """torch's CrossEntropyLoss(label_smoothing=eps) on mixed targets equals timm's SoftTargetCrossEntropy on
    timm's mixup_target (smooth each one-hot, then mix)."""
    timm_mix = pytest.importorskip("timm.data.mixup")
    from timm.loss import SoftTargetCrossEntropy

    logits = torch.randn(6, 5, generator=torch.Generator().manual_seed(0))
    y = torch.tensor([0, 1, 2, 3, 4, 0])
    lam, eps = 0.3, 0.1
    ours_target = lam * F.one_hot(y, 5).float() + (1 - lam) * F.one_hot(y.flip(0), 5).float()
    ref_target = timm_mix.mixup_target(y, 5, lam=lam, smoothing=eps)  # pairs with the batch flipped
    assert torch.allclose(nn.CrossEntropyLoss(label_smoothing=eps)(logits, ours_target),
                          SoftTargetCrossEntropy()(logits, ref_target), atol=1e-6)


def test_mix_collate_and_bad_values():
    data = [(torch.rand(3, 8, 8), i % 3) for i in range(4)]
    x, t = MixCollate(BatchMix(3, mixup_alpha=1.0))(data)
    assert x.shape == (4, 3, 8, 8) and t.shape == (4, 3)
    with pytest.raises(ConfigError, match=r"--mix-prob must be a probability in \[0, 1\], got 1.5"):
        BatchMix(3, 0.8, mix_prob=1.5)
    with pytest.raises(ConfigError, match=r"--switch-prob must be a probability in \[0, 1\], got -0.1"):
        BatchMix(3, 0.8, switch_prob=-0.1)
    with pytest.raises(ConfigError, match="--mixup alpha must be non-negative"):
        BatchMix(3, -1.0)


# --- repeated augmentation ------------------------------------------------------------------------------------
def test_every_index_appears_k_times_over_the_ranks():
    n, k, world = 50, 3, 2
    shards = [RepeatedAugSampler(range(n), world, r, num_repeats=k, selected_round=0) for r in range(world)]
    for s in shards:
        s.set_epoch(4)
    counts = Counter(i for s in shards for i in s)
    assert set(counts) == set(range(n)) and set(counts.values()) == {k}
    assert all(len(list(s)) == len(s) == n * k // world for s in shards)
    # the copies of one image go to different ranks (each rank augments its own copy)
    first = [list(s)[:6] for s in shards]
    assert first[0][0] == first[1][0] == first[0][1]


@pytest.mark.parametrize("n,world", [(600, 2), (1000, 4), (100, 2), (257, 3)])
def test_shards_match_deits_sampler(n, world):
    from timm.data.distributed_sampler import RepeatAugSampler  # DeiT's RASampler, as timm carries it

    for epoch in (0, 3):
        for rank in range(world):
            ours = RepeatedAugSampler(range(n), world, rank, num_repeats=3)
            ref = RepeatAugSampler(range(n), world, rank, num_repeats=3)
            ours.set_epoch(epoch)
            ref.set_epoch(epoch)
            assert list(ours) == list(ref) and len(ours) == len(ref)


def test_sampler_bad_values():
    with pytest.raises(ConfigError, match="--repeated-aug must be at least 1"):
        RepeatedAugSampler(range(4), num_repeats=0)
