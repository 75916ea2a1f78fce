"""RandAugment with timm's semantics: every operation equals timm's (Pillow's) output on the same image, the
noisy magnitudes follow timm's distribution, each operation applies with probability p, a clip gets one draw for
all its frames, the top of the magnitude range never fails, and the string grammar is timm's."""

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.stats import ks_2samp
from timm.data import auto_augment as timm_aa

from vitkit.data.randaugment import (
    OPS,
    RAND_INCREASING_OPS,
    RAND_OPS,
    RandAugment,
    RandAugmentSpec,
    apply_op,
    parse_randaugment,
    sample_magnitude,
)
from vitkit.data.transforms import image_pipeline
from vitkit.errors import ConfigError

FILL = (124, 116, 104)  # timm's img_mean for ImageNet's mean: round(255 · mean)


def _photo(seed: int = 0) -> Image.Image:
    """A smooth image with a sharp-edged block (resampling differences show at both)."""
    rng = np.random.default_rng(seed)
    img = np.array(Image.fromarray(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)).resize((64, 48), Image.BICUBIC))
    img[10:20, 5:40] = (250, 10, 30)
    return Image.fromarray(img)


def _timm(img: Image.Image, name: str, magnitude: float, sign: int, interpolation, monkeypatch) -> np.ndarray:
    hparams = dict(translate_const=100, img_mean=FILL, interpolation=interpolation)
    op = timm_aa.AugmentOp(name, prob=1.0, magnitude=magnitude, hparams=hparams)
    with monkeypatch.context() as m:  # timm negates the level when random() > 0.5
        m.setattr(timm_aa.random, "random", (lambda: 0.9) if sign < 0 else (lambda: 0.1))
        return np.asarray(op(img)).astype(int)


def test_the_operation_sets_are_timms():
    assert list(RAND_OPS) == timm_aa._RAND_TRANSFORMS
    assert list(RAND_INCREASING_OPS) == timm_aa._RAND_INCREASING_TRANSFORMS


@pytest.mark.parametrize("name", sorted(OPS))
def test_every_operation_equals_timms_on_the_same_image(name, monkeypatch):
    img = _photo()
    x = torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1)  # (H, W, 3) -> (3, H, W)
    for interpolation, mode in ((Image.BICUBIC, "bicubic"), (Image.BILINEAR, "bilinear")):
        for magnitude in (2.5, 9, 9.7):
            for sign in (1, -1):
                ref = _timm(img, name, magnitude, sign, interpolation, monkeypatch)
                out = apply_op(x, name, magnitude, sign, interpolation=mode, fill=FILL).permute(1, 2, 0).numpy()
                diff = np.abs(ref - out.astype(int))
                assert diff.max() <= 1, (name, mode, magnitude, sign, diff.max())
                assert diff.mean() < 0.01, (name, mode, magnitude, sign, diff.mean())


def _timm_magnitudes(config: str, draws: int) -> list[float]:
    ra = timm_aa.rand_augment_transform(config, {})
    op = ra.ops[0]
    seen = []
    op.level_fn, op.aug_fn, op.prob = (lambda m, _h: seen.append(m) or ()), (lambda img, **_: img), 1.0
    timm_aa.random.seed(0)
    img = Image.new("RGB", (1, 1))
    for _ in range(draws):
        op(img)
    return seen


@pytest.mark.parametrize("config", ["rand-m9-mstd0.5-inc1", "rand-m10-mstd0.5-inc1", "rand-m7-mstd101"])
def test_noisy_magnitudes_follow_timms_distribution(config):
    torch.manual_seed(0)
    ours = [sample_magnitude(parse_randaugment(config)) for _ in range(10_000)]
    ks = ks_2samp(ours, _timm_magnitudes(config, 10_000))
    assert ks.pvalue > 0.01, ks
    ours = np.array(ours)
    assert ours.min() >= 0 and ours.max() <= 10


def test_magnitude_noise_is_really_there_and_clipped():
    torch.manual_seed(0)
    m = np.array([sample_magnitude(parse_randaugment("rand-m9-mstd0.5")) for _ in range(4000)])
    assert abs(m.mean() - 9) < 0.05 and abs(m.std() - 0.5) < 0.03  # N(9, 0.5), the clip at 10 barely reached
    top = np.array([sample_magnitude(parse_randaugment("rand-m10-mstd0.5")) for _ in range(4000)])
    assert top.max() == 10 and 0.45 < (top == 10).mean() < 0.55  # half the draws land above 10: clipped
    assert {sample_magnitude(parse_randaugment("rand-m9")) for _ in range(10)} == {9.0}


def test_each_operation_applies_with_probability_p():
    torch.manual_seed(0)
    for config, p in (("rand-m9-n1-mstd0.5-inc1", 0.5), ("rand-m9-n1-p0.8", 0.8)):
        ra = RandAugment(config)
        applied = np.mean([len(ra.draw()) for _ in range(4000)])
        assert abs(applied - p) < 0.03, (config, applied)
    ra = RandAugment("rand-m9-n2-mstd0.5-inc1")
    counts = np.bincount([len(ra.draw()) for _ in range(4000)], minlength=3) / 4000
    assert np.allclose(counts, [0.25, 0.5, 0.25], atol=0.03)  # two independent ½ coins
    ops = [name for _ in range(3000) for name, *_ in ra.draw()]
    assert set(ops) == set(RAND_INCREASING_OPS)  # drawn from the whole set, with replacement


def test_a_clip_gets_one_draw_for_all_its_frames():
    frames = torch.stack([torch.from_numpy(np.asarray(_photo(s)).copy()).permute(2, 0, 1) for s in range(4)])
    ra = RandAugment("rand-m9-n4-mstd0.5-inc1")
    for seed in range(10):
        torch.manual_seed(seed)
        clip = ra(frames)  # (T, C, H, W): one draw
        for t in range(4):
            torch.manual_seed(seed)
            assert torch.equal(clip[t], ra(frames[t])), (seed, t)
    # through the video pipeline: identical frames stay identical after crop, flip and RandAugment
    same = frames[:1].expand(4, -1, -1, -1).transpose(0, 1)  # (C, T, H, W)
    pipe = image_pipeline((32, 32), (0.5,) * 3, (0.5,) * 3, train=True, randaugment="rand-m9-n4-mstd0.5-inc1",
                          video=True)
    for seed in range(5):
        torch.manual_seed(seed)
        out = pipe(same.contiguous())
        assert out.shape == (3, 4, 32, 32) and all(torch.equal(out[:, 0], out[:, t]) for t in range(4))


def test_the_top_of_the_range_never_fails():
    """timm's increasing posterize keeps 4 − int(0.4·M) bits: 0 at M = 10, which Pillow >= 12 refuses."""
    img = _photo()
    x = torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1)
    assert torch.equal(apply_op(x, "PosterizeIncreasing", 10.0), torch.zeros_like(x))
    ra = RandAugment("rand-m10-n4-mstd2-inc1")
    torch.manual_seed(0)
    for _ in range(200):
        assert ra(x).shape == x.shape
    assert ra(img).dtype == torch.uint8  # a PIL image comes out as a uint8 tensor


def test_the_grammar_is_timms():
    spec = parse_randaugment("rand-m9-mstd0.5-inc1")
    assert spec == RandAugmentSpec(magnitude=9, num_ops=2, prob=0.5, mstd=0.5, increasing=True)
    assert parse_randaugment("rand-m7-n4-mstd0.5-inc1") == RandAugmentSpec(7, 4, 0.5, 0.5, 10, True)
    assert parse_randaugment("2,9") == parse_randaugment("rand-m9-n2") == RandAugmentSpec(9, 2)  # exactly
    assert parse_randaugment((6, 9)) == RandAugmentSpec(9, 6)
    assert str(parse_randaugment("rand-inc1-mstd0.5-m9")) == "rand-m9-n2-mstd0.5-inc1"
    assert parse_randaugment("rand-m7-mstd101").mstd == float("inf")
    assert parse_randaugment(None) is None and parse_randaugment("none") is None
    for bad in ("rand-m9-x1", "auto-m9", "rand-m", "9", "a,b", "rand-m9-m8", "original-mstd0.5", "rand-tweights"):
        with pytest.raises(ConfigError, match=r"^--aa expects rand\[-m<0-10>\].*; got") as e:
            parse_randaugment(bad)
        assert "\n" not in str(e.value)
    for bad in ("rand-m11", "0,9", "rand-n0", "rand-p1.5", "rand-inc2", "2,31"):
        with pytest.raises(ConfigError, match="is out of range"):
            parse_randaugment(bad)
