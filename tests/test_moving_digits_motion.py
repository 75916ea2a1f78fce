"""moving-digits' "motion" task (order decides half of the classes) and its options that keep models from
saturating (distractors, pixel noise, redrawn labels): the order-blind ceiling it documents is what a set-of-frames
oracle scores, reversal maps each order class onto its partner, and the default clips are unchanged."""

from itertools import pairwise

import pytest
import torch

from vitkit.data.moving_digits import (
    _MOTION_STEPS,
    DISTRACTOR_LEVEL,
    MOTIONS,
    MovingDigits,
    order_aware_ceiling,
    order_blind_ceiling,
    order_decided,
)
from vitkit.errors import DataError


def _displacements(frames: torch.Tensor) -> list[tuple[int, int]]:
    """Where each frame's digit sits relative to frame 0's (circular cross-correlation peak): [(dy, dx)] mod H."""
    F = torch.fft.fft2(frames.double())  # (T, H, W)
    corr = torch.fft.ifft2(F * F[:1].conj()).real  # (T, H, W): peak at each frame's shift from frame 0
    return [divmod(int(c.argmax()), frames.shape[-1]) for c in corr]


def _set_oracle(frames: torch.Tensor) -> int:
    """The best guess from the frames as an unordered set: the axis of the displacements (the sign of a motion
    needs the order, so a time-reversal pair gets its first class), still, or jumping when they lie on no axis."""
    frames = frames[torch.randperm(len(frames))]  # the order is thrown away
    H = frames.shape[-1]
    d = _displacements(frames)
    axes = {0: all(dy == 0 for dy, _ in d), 2: all(dx == 0 for _, dx in d),
            4: all(dy == dx for dy, dx in d), 5: all(dy == (-dx) % H for dy, dx in d)}
    if all(v == (0, 0) for v in d):
        return MOTIONS.index("still")
    return next((c for c, on in axes.items() if on), MOTIONS.index("jumping"))


def test_the_ceilings_are_computed_from_the_motion_tables():
    assert order_blind_ceiling("direction") == 0.5  # every direction's reversal is another direction
    assert order_blind_ceiling("motion") == 0.75 and order_decided("motion") == (0, 1, 2, 3)
    assert order_blind_ceiling("digit") == 1.0 and order_decided("digit") == ()
    assert order_blind_ceiling("motion", 0.1) == pytest.approx(0.9 * 0.75 + 0.1 / 8)
    assert order_aware_ceiling("motion", 0.1) == pytest.approx(0.9 + 0.1 / 8)
    assert order_aware_ceiling("digit", 0.2) == pytest.approx(0.8 + 0.2 / 10)


def test_a_set_of_frames_oracle_scores_the_documented_ceiling():
    torch.manual_seed(0)
    ds = MovingDigits("test", num_frames=6, img_size=32, in_chans=1, size=400, label="motion")
    guesses = [_set_oracle(ds.clip(i)[0]) for i in range(len(ds))]
    labels = [ds.clip(i)[1] for i in range(len(ds))]
    assert labels == [i % 8 for i in range(400)]  # balanced, no label noise by default
    hits = sum(g == y for g, y in zip(guesses, labels))
    assert hits / len(ds) == order_blind_ceiling("motion")
    order_free = [i for i in range(400) if labels[i] not in order_decided("motion")]
    assert all(guesses[i] == labels[i] for i in order_free)  # the set alone tells these four classes


def test_each_motion_is_drawn_and_reversal_maps_order_classes_onto_their_partners():
    ds = MovingDigits("val", num_frames=5, img_size=32, in_chans=1, size=64, label="motion")
    H = 32
    for i in range(len(ds)):
        clip, label = ds.clip(i)
        d = _displacements(clip)
        step = _MOTION_STEPS[label]
        if step is None:  # jumping: the frames do not move by one constant step
            assert len({((b[0] - a[0]) % H, (b[1] - a[1]) % H) for a, b in pairwise(d)}) > 1
            continue
        speed = max(abs(v) if v <= H // 2 else H - v for v in d[1])
        assert all(p == ((t * step[0] * speed) % H, (t * step[1] * speed) % H) for t, p in enumerate(d)), (i, d)
        if label in order_decided("motion"):  # played backwards: the partner's motion, same speed
            partner = _MOTION_STEPS.index((-step[0], -step[1]))
            back = _displacements(clip.flip(0))
            assert all(p == ((t * _MOTION_STEPS[partner][0] * speed) % H, (t * _MOTION_STEPS[partner][1] * speed) % H)
                       for t, p in enumerate(back))


def test_default_clips_are_the_ones_drawn_before_the_options():
    """Recorded with the generator before the motion task and its options existed (vitkit main, a2134a6)."""
    for kw, sums, labels in ((dict(split="train"), [16011.772, 10097.955, 8102.505], [0, 7, 7]),
                             (dict(split="test", label="digit", img_size=48, num_frames=5),
                              [27956.289, 33366.055, 22716.412], [6, 8, 8])):
        ds = MovingDigits(size=40, in_chans=1, **kw)
        got = [ds.clip(i) for i in (0, 7, 39)]
        assert [round(float((c * torch.arange(ds.img_size)).sum()), 3) for c, _ in got] == sums
        assert [y for _, y in got] == labels


def test_distractors_noise_and_label_noise():
    clean = MovingDigits("train", in_chans=1, size=800, label="motion")
    busy = MovingDigits("train", in_chans=1, size=800, label="motion", distractors=1, noise=0.3, label_noise=0.2,
                        transform=lambda x: x)
    frames, _ = busy.clip(3)
    target, _ = clean.clip(3)
    assert torch.equal(torch.maximum(frames, target), frames)  # the labelled digit is drawn as before
    extra = frames[frames != target]  # where the distractor shows: at most half as bright
    assert extra.numel() > 0 and extra.max() <= DISTRACTOR_LEVEL + 1e-6
    noisy = busy[3][0][0]  # (T, H, W): clip plus noise, no transform
    assert (noisy - frames).std().item() == pytest.approx(0.3, abs=0.02)
    redrawn = sum(busy.clip(i)[1] != i % 8 for i in range(800)) / 800
    assert redrawn == pytest.approx(0.2 * 7 / 8, abs=0.04)  # a redrawn label keeps its class 1 time in 8
    again = MovingDigits("train", in_chans=1, size=800, label="motion", distractors=1, noise=0.3, label_noise=0.2,
                         transform=lambda x: x)
    assert torch.equal(again[3][0], busy[3][0]) and again.clip(5)[1] == busy.clip(5)[1]  # seeded


def test_bad_options_are_one_sentence():
    with pytest.raises(DataError, match="moving-digits distractors must be at least 0, got -1"):
        MovingDigits("train", distractors=-1)
    with pytest.raises(DataError, match="label_noise within 0..1, got 0.0 and 1.5"):
        MovingDigits("train", label_noise=1.5)
    with pytest.raises(DataError, match="noise must be at least 0"):
        MovingDigits("train", noise=-0.1)
