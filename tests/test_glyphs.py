"""C1's generated characters (experiments/glyphs.py): item i depends only on (seed, split, i), classes are
balanced, and the items are distinct drawings (no two alike, within a set or across splits and seeds)."""

import sys

import torch

from vitkit.tools.reproduce import experiments_dir

sys.path.insert(0, str(experiments_dir()))
import glyphs as G  # experiments/ is not a package: its modules import each other by name


def test_the_fonts_are_matplotlibs_text_fonts():
    names = [p.stem for p in G.font_files()]
    assert len(names) >= 20 and "DejaVuSans" in names and "cmr10" in names
    assert not set(G.SYMBOL_FONTS) & set(names)
    table = G.glyph_table("digits")
    assert table.shape == (len(names), 10, G.BASE, G.BASE)
    flat = table.flatten(2)  # every font draws ten different shapes, and no two fonts draw a digit alike
    assert all(torch.cdist(f, f).add(torch.eye(10) * 1e9).min() > 1.0 for f in flat)
    assert all(torch.cdist(flat[:, k], flat[:, k]).add(torch.eye(len(names)) * 1e9).min() > 0.1 for k in range(10))


def test_item_i_depends_on_seed_split_and_i_alone():
    x, y = G.glyphs(700, "train", seed=3)
    again, _ = G.glyphs(700, "train", seed=3)
    prefix, prefix_y = G.glyphs(600, "train", seed=3)  # a smaller set is the first items of a larger one
    assert torch.equal(x, again) and torch.equal(x[:600], prefix) and torch.equal(y[:600], prefix_y)
    assert x.shape == (700, 1, 16, 16) and x.min() >= -1 and x.max() <= 1
    other_seed, _ = G.glyphs(700, "train", seed=4)
    val, _ = G.glyphs(700, "val", seed=3)
    assert not torch.equal(x, other_seed) and not torch.equal(x, val)
    assert G.glyphs(20, img_size=24)[0].shape == (20, 1, 24, 24) and len(G.glyphs(0)[0]) == 0


def test_classes_are_balanced():
    _, y = G.glyphs(1000, "test", seed=0)
    assert torch.bincount(y).tolist() == [100] * 10
    _, letters = G.glyphs(52, charset="letters")
    assert torch.bincount(letters).tolist() == [2] * 26


def test_items_are_distinct_drawings():
    x = torch.cat([G.glyphs(600, split, seed)[0] for split in ("train", "val", "test") for seed in (0, 1)]).flatten(1)
    d = torch.cdist(x, x) + torch.eye(len(x)) * 1e9
    assert d.min() > 1.0  # no two of 3,600 items alike (a pixel step in [-1, 1] is about 0.01)
