"""The video papers' training crops and colours, for (T, C, H, W) frame batches (one draw per clip) or images:

- short-side scale jitter then a random crop — SlowFast's `random_short_side_scale_jitter` as TimeSformer trains
  (TRAIN_JITTER_SCALES [256, 320]: the shorter side uniform in [256, 320], the aspect kept), and DMVR's
  `scale_jitter_augm` as ViViT trains (the shorter side to min_resize 256, then height and width scaled by two
  independent factors uniform in [0.9, 1.33]);
- DMVR's `color_default_augm` (ViViT's `do_color_augment`): with probability p, brightness ± 32/255 (added),
  saturation × [0.6, 1.4] (in HSV), contrast × [0.6, 1.4] (about each frame's channel means), hue ± 0.2, clipped
  to [0, 1]; then, with probability p_drop, grey (ITU-R 601 luma).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as F

from ..errors import ConfigError


def _pair(value, what: str, low: float = 0.0) -> tuple[float, float]:
    try:
        a, b = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ConfigError(f"{what} expects two numbers [min, max], got {value!r}") from None
    if not low < a <= b:
        raise ConfigError(f"{what} expects {low} < min <= max, got {value!r}")
    return a, b


class ShortSideJitter(nn.Module):
    """Resize so the shorter side is uniform in [min_size, max_size] (rounded, aspect kept), then, with
    `aspect_jitter=(lo, hi)`, height and width by independent factors uniform in [lo, hi] (truncated to pixels).
    One draw per call: a clip's (T, C, H, W) frames are resized alike."""

    def __init__(self, short_side: Sequence[float], aspect_jitter: Sequence[float] | None = None,
                 interpolation: InterpolationMode = InterpolationMode.BILINEAR):
        super().__init__()
        self.short_side = _pair(short_side, "scale_jitter (the shorter side's range in pixels)", 0)
        self.aspect_jitter = None if aspect_jitter is None else _pair(aspect_jitter, "aspect_jitter (factors)")
        self.interpolation = interpolation

    def size(self, height: int, width: int) -> list[int]:
        """The drawn output size [h, w] for an input of height × width."""
        lo, hi = self.short_side
        short = round(lo + (hi - lo) * float(torch.rand(())))
        if height <= width:
            h, w = short, int(width * short / height)
        else:
            h, w = int(height * short / width), short
        if self.aspect_jitter is not None:
            lo, hi = self.aspect_jitter
            fh, fw = (lo + (hi - lo) * float(torch.rand(())) for _ in range(2))
            h, w = int(fh * h), int(fw * w)
        return [h, w]

    def forward(self, x):
        H, W = F.get_size(x)
        return F.resize(x, self.size(H, W), interpolation=self.interpolation, antialias=True)

    def extra_repr(self) -> str:
        return f"short_side={self.short_side}, aspect_jitter={self.aspect_jitter}"


def _rgb_to_hsv(x: Tensor) -> Tensor:
    """(..., 3, H, W) RGB in [0, 1] -> HSV in [0, 1]."""
    r, g, b = x.unbind(-3)
    maxc, minc = x.amax(-3), x.amin(-3)
    delta = maxc - minc
    s = torch.where(maxc > 0, delta / maxc.clamp(min=1e-12), torch.zeros_like(maxc))
    d = delta.clamp(min=1e-12)
    h = torch.where(maxc == r, (g - b) / d, torch.where(maxc == g, 2 + (b - r) / d, 4 + (r - g) / d))
    h = torch.where(delta > 0, (h / 6) % 1.0, torch.zeros_like(h))
    return torch.stack((h, s, maxc), -3)


def _hsv_to_rgb(x: Tensor) -> Tensor:
    h, s, v = x.unbind(-3)
    i = torch.floor(h * 6)
    f = h * 6 - i
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    i = i.long() % 6
    choose = lambda *c: torch.stack(c, 0).gather(0, i[None]).squeeze(0)  # the value of each pixel's sector
    return torch.stack((choose(v, q, p, p, t, v), choose(t, v, v, q, p, p), choose(p, p, t, v, v, q)), -3)


class ColourAugment(nn.Module):
    """DMVR's colour augmentation on float frames in [0, 1] (..., 3, H, W); one draw per call (per clip)."""

    def __init__(self, prob: float = 0.8, prob_drop: float = 0.0):
        super().__init__()
        if not (0 <= prob <= 1 and 0 <= prob_drop <= 1):
            raise ConfigError(f"color_augment expects two probabilities [p, p_drop] in [0, 1], got [{prob}, "
                              f"{prob_drop}]")
        self.prob, self.prob_drop = prob, prob_drop

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-3] == 3 and float(torch.rand(())) < self.prob:
            u = torch.rand(4).tolist()
            x = x + (u[0] * 2 - 1) * 32 / 255  # brightness, added
            hsv = _rgb_to_hsv(x.clamp(0, 1))
            hsv = torch.stack((hsv[..., 0, :, :], (hsv[..., 1, :, :] * (0.6 + 0.8 * u[1])).clamp(0, 1),
                               hsv[..., 2, :, :]), -3)
            x = _hsv_to_rgb(hsv)
            mean = x.mean((-2, -1), keepdim=True)  # per frame and channel, as tf.image.adjust_contrast
            x = (x - mean) * (0.6 + 0.8 * u[2]) + mean
            x = F.adjust_hue(x.clamp(0, 1), (u[3] * 2 - 1) * 0.2)
        if x.shape[-3] == 3 and float(torch.rand(())) < self.prob_drop:
            x = F.rgb_to_grayscale(x, num_output_channels=3)
        return x.clamp(0, 1)

    def extra_repr(self) -> str:
        return f"prob={self.prob}, prob_drop={self.prob_drop}"
