"""moving-digits labelled by what moves (digit) shows the same clips as when labelled by how it moves."""

import pytest
import torch

from vitkit.data.digits import Digits
from vitkit.data.moving_digits import MovingDigits
from vitkit.errors import DataError


def test_digit_labels_name_the_digit_in_the_same_clips():
    by_motion = MovingDigits("test", num_frames=3, img_size=16, in_chans=1, size=20)
    by_digit = MovingDigits("test", num_frames=3, img_size=16, in_chans=1, size=20, label="digit")
    assert by_digit.num_classes == 10 and by_motion.num_classes == 8
    test = Digits("test", img_size=8, in_chans=1)  # the native 8×8 sprites that img_size 16 draws unscaled
    sprites, classes = test.images[:, 0], test.targets
    for i in range(20):
        (xm, direction), (xd, digit) = by_motion[i], by_digit[i]
        assert torch.equal(xm, xd) and direction == i % 8
        frame = by_digit.clip(i)[0][0]  # (H, W), the sprite somewhere on it, wrapping around the borders
        drawn = {int(classes[k]) for dy in range(16) for dx in range(16)
                 for k in (sprites == frame.roll((-dy, -dx), (0, 1))[:8, :8]).flatten(1).all(1).nonzero().flatten()}
        assert digit in drawn


def test_unknown_label_is_one_sentence():
    with pytest.raises(DataError, match="unknown moving-digits label 'speed'"):
        MovingDigits("test", label="speed")
