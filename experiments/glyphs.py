"""Generated characters: a data set that grows in content, not only in views (C1).

Each item is one character (a digit 0-9, or a capital letter A-Z) drawn in one of the text fonts matplotlib
ships (22 files: DejaVu Sans / Serif / Mono and STIX in their weights and slants, Computer Modern roman, bold,
sans, italic, typewriter and math italic), then given its own random affine warp (rotation, anisotropic scale,
shear, shift), an elastic distortion (a smooth random displacement field), a stroke weight (thinner or bolder),
a contrast and pixel noise. The font and every draw of item i come from a generator seeded by (seed, split,
block of i) alone, so item i depends only on (seed, split, i): a set of n items is the first n of any larger
one, the splits share no draws, and classes are balanced (item i has class i mod K).

The fonts are shared by the splits: a test item is a new warp, distortion and stroke of a font the training set
also holds, not a new font.
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

CHARSETS = {"digits": "0123456789", "letters": "ABCDEFGHIJKLMNOPQRSTUVWXYZ"}
SPLITS = {"train": 0, "val": 1, "test": 2}
SYMBOL_FONTS = ("cmex10", "cmsy10", "LastResortHE-Regular")  # map character codes to symbols, not letters
BASE = 40   # side of the rendered glyph tables (pixels)
BLOCK = 512  # items drawn from one generator


def font_files() -> list[Path]:
    """matplotlib's bundled text fonts that hold every digit and capital letter (sorted by name)."""
    import matplotlib
    from matplotlib.ft2font import FT2Font

    found = []
    for path in sorted((Path(matplotlib.get_data_path()) / "fonts" / "ttf").glob("*.ttf")):
        font = FT2Font(str(path))
        if path.stem not in SYMBOL_FONTS and all(font.get_char_index(ord(c)) for c in "".join(CHARSETS.values())):
            found.append(path)
    return found


def _render(path: Path, char: str) -> Tensor:
    """One character of one font, white on black, centred in a (BASE, BASE) square with a margin, in [0, 1]."""
    import numpy as np
    from matplotlib.ft2font import FT2Font

    font = FT2Font(str(path))
    font.set_size(48, 72)
    font.set_text(char, 0.0)
    font.draw_glyphs_to_bitmap(antialiased=True)
    img = torch.from_numpy(np.asarray(font.get_image()).astype("float32") / 255.0)
    rows, cols = img.amax(1).nonzero()[:, 0], img.amax(0).nonzero()[:, 0]  # crop to the ink
    img = img[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    side = int(max(img.shape) * 1.25)  # the ink fills 80 % of the longer side
    top, left = (side - img.shape[0]) // 2, (side - img.shape[1]) // 2
    img = F.pad(img, [left, side - img.shape[1] - left, top, side - img.shape[0] - top])
    return F.interpolate(img[None, None], size=(BASE, BASE), mode="area")[0, 0]


@lru_cache(maxsize=4)
def glyph_table(charset: str = "digits") -> Tensor:
    """(fonts, classes, BASE, BASE): every font's drawing of every character of the set."""
    return torch.stack([torch.stack([_render(p, c) for c in CHARSETS[charset]]) for p in font_files()])


def _block(table: Tensor, seed: int, split: int, block: int, img_size: int) -> Tensor:
    """Items block·BLOCK ... (block + 1)·BLOCK − 1: (BLOCK, 1, S, S) in [0, 1]."""
    fonts, classes = table.shape[:2]
    g = torch.Generator().manual_seed(((seed * 1_000_003 + split) * 1_000_003 + block) % 2**63)
    n = BLOCK
    u = lambda *shape: torch.rand(*shape, generator=g) * 2 - 1  # uniform in [-1, 1]
    font = torch.randint(0, fonts, (n,), generator=g)
    label = (block * n + torch.arange(n)) % classes
    angle, shear = u(n) * math.radians(15), u(n) * 0.25
    scale = (1.0 + 0.15 * u(n, 2)) * (1.0 + 0.1 * u(n, 1))  # per axis, around the glyph's own size
    shift = u(n, 2) * 0.12
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.stack([torch.stack([cos / scale[:, 0], (-sin + shear) / scale[:, 0], shift[:, 0]], 1),
                         torch.stack([sin / scale[:, 1], cos / scale[:, 1], shift[:, 1]], 1)], 1)  # (n, 2, 3)
    side = 2 * img_size  # drawn at twice the size, then averaged down (antialiasing)
    grid = F.affine_grid(theta, [n, 1, side, side], align_corners=False)  # (n, side, side, 2)
    field = F.interpolate(u(n, 2, 4, 4) * 0.06, size=(side, side), mode="bicubic", align_corners=True)
    x = F.grid_sample(table[font, label][:, None], grid + field.permute(0, 2, 3, 1), align_corners=False)
    weight = torch.randint(0, 3, (n, 1, 1, 1), generator=g)  # 0: thinner, 1: as drawn, 2: bolder
    thin, bold = -F.max_pool2d(-x, 3, 1, 1), F.max_pool2d(x, 3, 1, 1)  # erosion, dilation
    x = x + 0.5 * ((weight == 0) * (thin - x) + (weight == 2) * (bold - x))
    x = F.avg_pool2d(x, 2) * (0.6 + 0.4 * torch.rand(n, 1, 1, 1, generator=g))  # (n, 1, S, S), a contrast
    return (x + 0.05 * torch.randn(x.shape, generator=g)).clamp(0, 1)


def glyphs(n: int, split: str = "train", seed: int = 0, img_size: int = 16,
           charset: str = "digits") -> tuple[Tensor, Tensor]:
    """n generated characters as (n, 1, S, S) images normalised to [-1, 1] and (n,) labels (item i: class i mod
    K); item i depends only on (seed, split, i)."""
    table = glyph_table(charset)
    blocks = [_block(table, seed, SPLITS[split], b, img_size) for b in range(math.ceil(n / BLOCK))]
    x = torch.cat(blocks)[:n] if blocks else torch.zeros(0, 1, img_size, img_size)
    return (x - 0.5) / 0.5, torch.arange(n) % table.shape[1]
