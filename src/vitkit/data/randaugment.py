"""RandAugment with timm's semantics (Cubuk et al., arXiv 1909.13719, as timm's `rand_augment_transform` runs it
for DeiT, Swin, CvT and MViT: `rand-m9-mstd0.5-inc1`), on uint8 tensors so it also runs on video clips.

timm's string: `rand` then dash-separated sections, in any order —
  m<M>     magnitude on timm's 0–10 scale (default 10)
  n<N>     operations drawn per image, with replacement (default 2)
  p<P>     probability of applying each drawn operation (default 0.5)
  mstd<S>  Gaussian noise on the magnitude, drawn per operation (S > 100: uniform in [0, M]); then clipped to [0, mmax]
  mmax<X>  the top of the magnitude range (default 10)
  inc<0|1> the "increasing" operation set, whose strength grows with the magnitude (default 0)
Each drawn operation draws its own magnitude and, for the signed ones (rotate, shear, translate, the enhance
factors of the increasing set), a sign with probability ½ each.

One call makes one set of draws (operations, whether each applies, magnitudes, signs) and applies it to the
whole input, so a clip's frames — a (T, C, H, W) batch — are augmented alike. Draws come from torch's global
generator, which vitkit's loaders seed per sample. The operations follow Pillow's arithmetic (what timm calls)
exactly, the geometric ones included (Pillow's affine sampler, re-done on tensors).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as F

from ..errors import ConfigError

GRAMMAR = ("rand[-m<0-10>][-n<ops>][-p<prob>][-mstd<std>][-mmax<top>][-inc<0|1>] (timm's RandAugment string, "
           "e.g. rand-m9-mstd0.5-inc1 or rand-m7-n4-mstd0.5-inc1), N,M for rand-mM-nN, or none")
_SECTION = re.compile(r"(mstd|mmax|inc|m|n|p)(\d+(?:\.\d*)?)$")


@dataclass(frozen=True)
class RandAugmentSpec:
    """A parsed timm RandAugment string."""

    magnitude: float = 10.0   # M, on the 0–10 scale
    num_ops: int = 2          # N
    prob: float = 0.5         # per-operation probability
    mstd: float = 0.0         # σ of the magnitude noise (inf: uniform in [0, M])
    mmax: float = 10.0        # magnitudes are clipped to [0, mmax]
    increasing: bool = False  # timm's _RAND_INCREASING_TRANSFORMS rather than _RAND_TRANSFORMS

    def __str__(self) -> str:
        parts = [f"m{self.magnitude:g}", f"n{self.num_ops}"]
        parts += [f"p{self.prob:g}"] if self.prob != 0.5 else []
        parts += [f"mstd{self.mstd if math.isfinite(self.mstd) else 101:g}"] if self.mstd else []
        parts += [f"mmax{self.mmax:g}"] if self.mmax != 10 else []
        parts += ["inc1"] if self.increasing else []
        return "-".join(["rand", *parts])


def parse_randaugment(text: str | Sequence[int] | RandAugmentSpec | None) -> RandAugmentSpec | None:
    """timm's `rand-...` string, "N,M" (exactly rand-mM-nN) or an (N, M) pair -> RandAugmentSpec; None, "",
    "none" or "off" -> None; anything else is a ConfigError stating the grammar."""
    if text is None or isinstance(text, RandAugmentSpec):
        return text
    if isinstance(text, str) and text.strip().lower() in ("", "none", "off"):
        return None
    if not isinstance(text, str) or "," in text:
        try:
            n, m = (int(v) for v in (text.split(",") if isinstance(text, str) else text))
        except (TypeError, ValueError):
            raise ConfigError(f"--aa expects {GRAMMAR}; got {text!r}") from None
        text = f"rand-m{m}-n{n}"
    sections = text.strip().split("-")
    values: dict[str, float] = {}
    for s in sections[1:]:
        match = _SECTION.match(s)
        if match is None or match.group(1) in values:
            raise ConfigError(f"--aa expects {GRAMMAR}; got {text!r}")
        values[match.group(1)] = float(match.group(2))
    if sections[0] != "rand":
        raise ConfigError(f"--aa expects {GRAMMAR}; got {text!r}")
    mstd = values.get("mstd", 0.0)
    spec = RandAugmentSpec(magnitude=values.get("m", 10.0), num_ops=int(values.get("n", 2)),
                           prob=values.get("p", 0.5), mstd=math.inf if mstd > 100 else mstd,
                           mmax=values.get("mmax", 10.0), increasing=bool(values.get("inc", 0)))
    if not (spec.num_ops >= 1 and 0 <= spec.magnitude <= spec.mmax and 0 <= spec.prob <= 1 and
            values.get("inc", 0) in (0, 1) and float(spec.num_ops) == values.get("n", 2)):
        raise ConfigError(f"--aa {text!r} is out of range: expected n >= 1 operations, a magnitude m in 0..mmax "
                          f"(default 10), p in [0, 1] and inc 0 or 1")
    return spec


# ---- the operations: (uint8 image (..., C, H, W), level argument, context) -> uint8 image -------------------------

def _luma(x: Tensor) -> Tensor:
    """Pillow's RGB -> L conversion (ITU-R 601-2, fixed point with rounding): (..., 3, H, W) -> (..., 1, H, W)."""
    if x.shape[-3] == 1:
        return x
    r, g, b = x.int().unbind(-3)
    return ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16).unsqueeze(-3).to(torch.uint8)


def _blend(degenerate: Tensor, x: Tensor, factor: float) -> Tensor:
    """Pillow's Image.blend (ImageEnhance): degenerate + factor·(x − degenerate) in float32, truncated and
    clipped to uint8."""
    d = degenerate.float()
    return (d + torch.tensor(factor, dtype=torch.float32) * (x.float() - d)).clamp(0, 255).to(torch.uint8)


def _contrast(x: Tensor, factor: float, _ctx) -> Tensor:
    # Pillow: a flat image at the rounded mean of the L histogram (per image of the batch)
    mean = _luma(x).flatten(-3).float().mean(-1).add(0.5).floor()  # (...)
    return _blend(mean[..., None, None, None].expand_as(x), x, factor)


def _color(x: Tensor, factor: float, _ctx) -> Tensor:
    return _blend(_luma(x).expand_as(x), x, factor)


def _brightness(x: Tensor, factor: float, _ctx) -> Tensor:
    return _blend(torch.zeros_like(x), x, factor)


def _sharpness(x: Tensor, factor: float, _ctx) -> Tensor:
    # Pillow's SMOOTH filter (3×3, centre 5, total 13, rounded), the one-pixel border left as it is
    kernel = torch.ones(3, 3)
    kernel[1, 1] = 5
    flat = x.reshape(-1, 1, *x.shape[-2:]).float()  # (..., C, H, W) -> (·, 1, H, W)
    smooth = torch.nn.functional.conv2d(flat, kernel[None, None]).div(13).add(0.5).floor()
    degenerate = flat.clone()
    degenerate[..., 1:-1, 1:-1] = smooth
    return _blend(degenerate.reshape(x.shape), x, factor)


def _posterize(x: Tensor, bits: int, _ctx) -> Tensor:
    # timm's increasing posterize keeps 4 - int(0.4·M) bits: 0 at M = 10, which Pillow >= 12 refuses; keeping no
    # bit is a black image (the mask's limit), so that case is defined here instead of failing
    if bits >= 8:
        return x
    return x & (0xFF << (8 - bits) & 0xFF)


def _solarize(x: Tensor, threshold: int, _ctx) -> Tensor:
    return x if threshold > 255 else torch.where(x >= threshold, 255 - x, x)


def _solarize_add(x: Tensor, add: int, _ctx) -> Tensor:
    return torch.where(x < 128, (x.int() + add).clamp(max=255).to(torch.uint8), x)


def _auto_contrast(x: Tensor, _level, _ctx) -> Tensor:
    # Pillow's autocontrast (cutoff 0): per channel, lo -> 0 and hi -> 255 by the lut int(i·scale + offset)
    # (truncated; Pillow's lut rounds the scale to no decimals), channels with hi <= lo untouched
    lo = x.amin((-2, -1), keepdim=True).double()
    hi = x.amax((-2, -1), keepdim=True).double()
    scale = 255.0 / (hi - lo).clamp(min=1)
    out = (x.double() * scale - lo * scale).floor().clamp(0, 255).to(torch.uint8)
    return torch.where(hi > lo, out, x)


def _equalize(x: Tensor, _level, _ctx) -> Tensor:
    return F.equalize(x)


def _invert(x: Tensor, _level, _ctx) -> Tensor:
    return 255 - x


def _pil_affine(x: Tensor, matrix: Sequence[float], ctx) -> Tensor:
    """Pillow's Image.transform(AFFINE, matrix) on (..., C, H, W) uint8: output pixel (i, j) samples the input at
    (a·(j + ½) + b·(i + ½) + c, d·(j + ½) + e·(i + ½) + f) with Pillow's own bilinear / bicubic (a = −1) filters,
    edge clamping and truncation; samples that land outside the image take the fill colour."""
    H, W = x.shape[-2:]
    a, b, c, d, e, f = matrix
    i, j = torch.meshgrid(torch.arange(H, dtype=torch.float64) + 0.5, torch.arange(W, dtype=torch.float64) + 0.5,
                          indexing="ij")
    xin, yin = a * j + b * i + c, d * j + e * i + f  # (H, W) each
    inside = (xin >= 0) & (xin < W) & (yin >= 0) & (yin < H)
    if ctx.interpolation == InterpolationMode.NEAREST:
        taps, x0, y0, dx, dy = 1, xin.floor().long(), yin.floor().long(), None, None
    else:
        taps = 4 if ctx.interpolation == InterpolationMode.BICUBIC else 2
        x0, y0 = (xin - 0.5).floor(), (yin - 0.5).floor()
        dx, dy = xin - 0.5 - x0, yin - 0.5 - y0
        x0, y0 = x0.long() - int(taps == 4), y0.long() - int(taps == 4)
    flat = x.reshape(*x.shape[:-2], H * W).double()  # (..., C, H·W)
    cols = [(x0 + k).clamp(0, W - 1) for k in range(taps)]
    rows = []
    for k in range(taps):  # the first row is clamped; a later row outside the image repeats the one before it
        r = y0 + k
        rows.append(r.clamp(0, H - 1) if k == 0 else torch.where((r >= 0) & (r < H), r, rows[-1]))
    lines = [_pil_kernel([flat[..., (r * W + col).flatten()].reshape(*x.shape[:-2], H, W) for col in cols], dx)
             for r in rows]
    out = _pil_kernel(lines, dy)
    out = out.clamp(0, 255).trunc().to(torch.uint8)  # Pillow truncates (after clipping, for bicubic)
    fill = torch.tensor(ctx.fill(x), dtype=torch.uint8).view(-1, 1, 1)
    return torch.where(inside, out, fill)


def _pil_kernel(v: list[Tensor], t: Tensor | None) -> Tensor:
    """Pillow's 1-D interpolation of taps v at the fraction t, in its order of operations."""
    if len(v) == 1:
        return v[0]
    if len(v) == 2:
        return v[0] + (v[1] - v[0]) * t
    v1, v2, v3, v4 = v
    p2, p3, p4 = -v1 + v3, 2 * (v1 - v2) + v3 - v4, -v1 + v2 - v3 + v4
    return v2 + t * (p2 + t * (p3 + t * p4))


def _rotate(x: Tensor, degrees: float, ctx) -> Tensor:
    # Pillow's Image.rotate: about the image centre (W/2, H/2), counter-clockwise, its matrix rounded to 15 places
    H, W = x.shape[-2:]
    angle = -math.radians(degrees % 360.0)
    a, b = round(math.cos(angle), 15), round(math.sin(angle), 15)
    cx, cy = W / 2, H / 2
    return _pil_affine(x, (a, b, a * -cx + b * -cy + cx, -b, a, -b * -cx + a * -cy + cy), ctx)


def _shear_x(x: Tensor, factor: float, ctx) -> Tensor:
    return _pil_affine(x, (1, factor, 0, 0, 1, 0), ctx)


def _shear_y(x: Tensor, factor: float, ctx) -> Tensor:
    return _pil_affine(x, (1, 0, 0, factor, 1, 0), ctx)


def _translate_x(x: Tensor, pct: float, ctx) -> Tensor:
    return _pil_affine(x, (1, 0, pct * x.shape[-1], 0, 1, 0), ctx)


def _translate_y(x: Tensor, pct: float, ctx) -> Tensor:
    return _pil_affine(x, (1, 0, 0, 0, 1, pct * x.shape[-2]), ctx)


# ---- timm's level -> argument maps (M on 0–10; `sign` is the op's random sign) ------------------------------------

def _signed(scale: float):
    return lambda m, sign: sign * m / 10 * scale


def _enhance(m: float, _sign) -> float:
    return m / 10 * 1.8 + 0.1


def _enhance_increasing(m: float, sign) -> float:
    return max(0.1, 1.0 + sign * m / 10 * 0.9)


OPS = {  # name (timm's) -> (operation, level -> argument or None)
    "AutoContrast": (_auto_contrast, None),
    "Equalize": (_equalize, None),
    "Invert": (_invert, None),
    "Rotate": (_rotate, _signed(30.0)),
    "Posterize": (_posterize, lambda m, _s: int(m / 10 * 4)),
    "PosterizeIncreasing": (_posterize, lambda m, _s: 4 - int(m / 10 * 4)),
    "Solarize": (_solarize, lambda m, _s: min(256, int(m / 10 * 256))),
    "SolarizeIncreasing": (_solarize, lambda m, _s: 256 - min(256, int(m / 10 * 256))),
    "SolarizeAdd": (_solarize_add, lambda m, _s: min(128, int(m / 10 * 110))),
    "Color": (_color, _enhance),
    "ColorIncreasing": (_color, _enhance_increasing),
    "Contrast": (_contrast, _enhance),
    "ContrastIncreasing": (_contrast, _enhance_increasing),
    "Brightness": (_brightness, _enhance),
    "BrightnessIncreasing": (_brightness, _enhance_increasing),
    "Sharpness": (_sharpness, _enhance),
    "SharpnessIncreasing": (_sharpness, _enhance_increasing),
    "ShearX": (_shear_x, _signed(0.3)),
    "ShearY": (_shear_y, _signed(0.3)),
    "TranslateXRel": (_translate_x, _signed(0.45)),
    "TranslateYRel": (_translate_y, _signed(0.45)),
}
_SHARED = ("AutoContrast", "Equalize", "Invert", "Rotate")
_GEOMETRY = ("ShearX", "ShearY", "TranslateXRel", "TranslateYRel")
# timm's _RAND_TRANSFORMS and _RAND_INCREASING_TRANSFORMS (the order matters: draws index into it)
RAND_OPS = (*_SHARED, "Posterize", "Solarize", "SolarizeAdd", "Color", "Contrast", "Brightness", "Sharpness",
            *_GEOMETRY)
RAND_INCREASING_OPS = (*_SHARED, "PosterizeIncreasing", "SolarizeIncreasing", "SolarizeAdd", "ColorIncreasing",
                       "ContrastIncreasing", "BrightnessIncreasing", "SharpnessIncreasing", *_GEOMETRY)


@dataclass(frozen=True)
class _Context:
    interpolation: InterpolationMode
    mean: tuple[int, ...]     # fill of the geometric operations, 0–255 per channel (timm: round(255 · mean))

    def fill(self, x: Tensor) -> list[float]:
        mean = self.mean if len(self.mean) == x.shape[-3] else (round(sum(self.mean) / len(self.mean)),)
        return [float(v) for v in mean]


def apply_op(x: Tensor, name: str, magnitude: float, sign: int = 1, interpolation: str = "bicubic",
             fill: Sequence[int] = (128, 128, 128)) -> Tensor:
    """One timm operation at a fixed magnitude (0–10) and sign on a uint8 image or batch (..., C, H, W)."""
    op, level = OPS[name]
    return op(x, level(magnitude, sign) if level is not None else None,
              _Context(InterpolationMode(interpolation), tuple(fill)))


def sample_magnitude(spec: RandAugmentSpec) -> float:
    """One operation's magnitude: M, or M plus Gaussian noise σ = mstd (uniform in [0, M] for mstd = inf),
    clipped to [0, mmax] (timm's AugmentOp)."""
    m = spec.magnitude
    if math.isinf(spec.mstd):
        m = float(torch.rand(())) * m
    elif spec.mstd > 0:
        m = m + spec.mstd * float(torch.randn(()))
    return max(0.0, min(m, spec.mmax))


class RandAugment(nn.Module):
    """timm's RandAugment for uint8 tensors (..., C, H, W) (a PIL image is converted first): N operations drawn
    with replacement, each applied with probability p at its own noisy magnitude. One draw per call, so a clip's
    frames batch (T, C, H, W) gets the same operations."""

    def __init__(self, spec: RandAugmentSpec | str, interpolation: str | InterpolationMode = "bicubic",
                 mean: Sequence[float] = (0.485, 0.456, 0.406)):
        super().__init__()
        self.spec = parse_randaugment(spec)
        self.ops = RAND_INCREASING_OPS if self.spec.increasing else RAND_OPS
        mode = InterpolationMode(interpolation) if isinstance(interpolation, str) else interpolation
        self.ctx = _Context(mode, tuple(min(255, round(255 * v)) for v in mean))

    def draw(self) -> list[tuple[str, float, int]]:
        """The (operation, magnitude, sign) of each operation that applies this time."""
        chosen = []
        for i in torch.randint(len(self.ops), (self.spec.num_ops,)).tolist():
            if self.spec.prob < 1 and float(torch.rand(())) > self.spec.prob:
                continue
            magnitude = sample_magnitude(self.spec)
            chosen.append((self.ops[i], magnitude, -1 if float(torch.rand(())) > 0.5 else 1))
        return chosen

    def forward(self, x):
        if not isinstance(x, Tensor):
            x = F.pil_to_tensor(x)
        for name, magnitude, sign in self.draw():
            op, level = OPS[name]
            x = op(x, level(magnitude, sign) if level is not None else None, self.ctx)
        return x

    def extra_repr(self) -> str:
        return str(self.spec)
