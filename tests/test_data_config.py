"""Evaluation preprocessing per model: `data_config` / `create_transform` against timm's resolve_data_config +
create_transform, transformers' ConvNeXt image processor (what microsoft/cvt-* use) and torchvision's weights
transforms, on generated images of several sizes (non-square, smaller and larger than the input)."""

import numpy as np
import pytest
import torch
from PIL import Image

import vitkit
from vitkit.data.config import DATA_CONFIGS, create_transform, data_config
from vitkit.errors import ConfigError

SIZES = [(300, 200), (180, 240), (224, 224), (97, 131), (500, 410)]  # (H, W)


def _images(seed=0):
    g = np.random.default_rng(seed)
    for H, W in SIZES:
        # smooth content plus noise, so the resampling filters matter but are not all that is compared
        yy, xx = np.mgrid[0:H, 0:W]
        base = np.stack([128 + 100 * np.sin(xx / (7 + c) + yy / (11 + c)) for c in range(3)], -1)
        yield Image.fromarray(np.clip(base + g.normal(0, 20, base.shape), 0, 255).astype(np.uint8))


def test_every_registered_model_has_a_data_config():
    keys = {"input_size", "interpolation", "mean", "std", "crop_pct", "crop_mode", "source"}
    for name in vitkit.list_models():
        with torch.device("meta"):
            model = vitkit.create_model(name)
        cfg = data_config(model)
        assert keys <= set(cfg), name
        assert len(cfg["mean"]) == cfg["input_size"][0] == len(cfg["std"])
        assert 0 < cfg["crop_pct"] <= 1
        assert ("num_frames" in cfg) == (len(model.input_shape()) == 4), name
    # the table is keyed by patterns that all match something (no dead entries)
    for pattern, _ in DATA_CONFIGS:
        assert vitkit.list_models(pattern), pattern


def test_data_config_follows_the_model_size_and_channels():
    m = vitkit.create_model("deit_tiny_patch16_224", img_size=32, patch_size=8, in_chans=1, depth=1)
    cfg = vitkit.data_config(m)
    assert cfg["input_size"] == (1, 32, 32) and cfg["interpolation"] == "bicubic" and cfg["crop_pct"] == 0.9
    assert len(cfg["mean"]) == 1
    assert data_config("vit_base_patch16_224")["mean"] == (0.5, 0.5, 0.5)
    assert data_config("swin_tiny_patch4_window7_224", source="torchvision")["crop_pct"] == 224 / 232
    with pytest.raises(ConfigError, match="has data configs for timm, not 'hf'"):
        data_config("deit_small_patch16_224", source="hf")
    with pytest.raises(ConfigError, match="no registry name"):
        data_config(torch.nn.Linear(2, 2))


TIMM_NAMES = ["vit_base_patch16_224", "vit_base_patch16_384", "deit_small_patch16_224",
              "deit_base_distilled_patch16_384", "swin_tiny_patch4_window7_224", "swin_base_patch4_window12_384",
              "mvitv2_tiny"]


@pytest.mark.parametrize("name", TIMM_NAMES)
def test_eval_transform_matches_timm(name):
    timm = pytest.importorskip("timm")
    from timm.data import create_transform as timm_transform
    from timm.data import resolve_data_config

    with torch.device("meta"):
        ref_model = timm.create_model(name, pretrained=False)
    ref = timm_transform(**resolve_data_config({}, model=ref_model))
    ours = create_transform(name)
    for img in _images():
        a, b = ours(img), ref(img)
        assert a.shape == b.shape
        assert (a - b).abs().max() <= 1e-5, (name, img.size)


def test_non_square_input_size_matches_timm():
    from timm.data import create_transform as timm_transform

    cfg = {"input_size": (3, 160, 224), "interpolation": "bicubic", "mean": (0.5,) * 3, "std": (0.5,) * 3,
           "crop_pct": 0.9}
    ref, ours = timm_transform(**cfg), create_transform(cfg)
    for img in _images(4):
        a, b = ours(img), ref(img)
        assert a.shape == b.shape == (3, 160, 224) and (a - b).abs().max() <= 1e-5, img.size


def test_eval_transform_matches_the_cvt_image_processor():
    from transformers import ConvNextImageProcessorPil

    # microsoft/cvt-13 and cvt-21's preprocessor_config.json: crop_pct 0.875, bicubic (3), ImageNet statistics,
    # shortest edge 224 (384 for the *-384 checkpoints, where the processor warps instead of cropping).
    for name, edge in (("cvt_13_224", 224), ("cvt_21_384", 384)):
        ref = ConvNextImageProcessorPil(size={"shortest_edge": edge}, crop_pct=224 / 256, resample=3,
                                        image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225])
        ours = create_transform(name)
        for img in _images(1):
            b = torch.as_tensor(np.asarray(ref(img, return_tensors="np")["pixel_values"][0]))
            a = ours(img)
            assert a.shape == b.shape == (3, edge, edge)
            assert (a - b).abs().max() <= 1e-5, (name, img.size)


@pytest.mark.parametrize("name,weights", [("swin_tiny_patch4_window7_224", "Swin_T_Weights.IMAGENET1K_V1"),
                                          ("swin_small_patch4_window7_224", "Swin_S_Weights.IMAGENET1K_V1"),
                                          ("vit_base_patch16_224", "ViT_B_16_Weights.IMAGENET1K_V1")])
def test_eval_transform_matches_torchvision_image_weights(name, weights):
    from torchvision.models import get_weight

    ref = get_weight(weights).transforms()
    ours = create_transform(data_config(name, source="torchvision"))
    for img in _images(2):
        assert (ours(img) - ref(img)).abs().max() <= 1e-5, img.size  # PIL in: PIL resampling on both sides
        t = torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1)  # uint8 (H, W, 3) -> (3, H, W)
        _within_grey_levels(ours(t), ref(t), bicubic=name.startswith("swin"))


def _within_grey_levels(a, b, bicubic: bool):
    """The resampling difference on uint8 tensors (PIL inputs match to 1e-5): v2 resizes uint8 with its own
    kernels and rounding, torchvision's weights transforms (v1 functional) through float and back. Measured:
    bilinear, one grey level at most (1/255 before normalisation, 0.0175 after) on ~20% of the pixels; bicubic,
    up to 6 levels where the overshoot is clamped, well under one level on average."""
    levels = (a - b).abs() * 0.224 * 255  # back to grey levels (std ~0.224)
    assert levels.max() <= (7.0 if bicubic else 1.01), levels.max()
    assert levels.mean() <= (0.5 if bicubic else 0.25), levels.mean()


def test_video_eval_transform_matches_torchvision_mvit_v2_s():
    from torchvision.models import get_weight

    ref = get_weight("MViT_V2_S_Weights.KINETICS400_V1").transforms()
    ours = create_transform("mvitv2_small_16x4")
    g = torch.Generator().manual_seed(0)
    for H, W in SIZES[:3]:
        clip = torch.randint(0, 256, (3, 5, H, W), dtype=torch.uint8, generator=g)  # (C, T, H, W)
        b = ref(clip.transpose(0, 1))  # torchvision takes (T, C, H, W) and returns (C, T, h, w)
        a = ours(clip)
        assert a.shape == b.shape == (3, 5, 224, 224)
        _within_grey_levels(a, b, bicubic=False)


def test_uint8_tensor_and_pil_inputs_agree_up_to_resampling():
    """A uint8 tensor is resized by torch's antialiased bicubic, a PIL image by PIL's: the difference is the
    two resampling kernels only (a few grey levels at most, under 0.1 after normalisation by std ~0.23)."""
    t = create_transform("deit_small_patch16_224")
    for img in _images(3):
        a = t(img)
        b = t(torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1))
        diff = (a - b).abs()
        assert diff.mean() < 0.02 and diff.max() < 0.5, (img.size, diff.mean(), diff.max())


def test_train_transform_is_deits():
    torch.manual_seed(0)
    t = create_transform("deit_small_patch16_224", train=True, randaugment=(2, 9), reprob=1.0)
    names = [type(s).__name__ for s in t.transforms]
    assert names[:3] == ["RandomResizedCrop", "RandomHorizontalFlip", "RandAugment"]
    assert names[-1] == "RandomErasing"
    rrc = t.transforms[0]
    assert rrc.scale == (0.08, 1.0) and rrc.interpolation.value == "bicubic"
    img = next(_images())
    a = t(img)
    assert a.shape == (3, 224, 224) and a.dtype == torch.float32
    torch.manual_seed(0)
    assert torch.equal(t(img), a)  # seeded by torch's generator (what makes resumed epochs repeat)
    assert not torch.equal(t(img), a)


def test_bad_config_values_are_one_sentence():
    from vitkit.data import parse_randaugment

    assert str(parse_randaugment("2,9")) == "rand-m9-n2" and parse_randaugment(None) is None
    for bad in ("9", "a,b", "0,9", "2,31"):
        with pytest.raises(ConfigError, match="--aa"):
            parse_randaugment(bad)
    with pytest.raises(ConfigError, match=r"--reprob must be a probability in \[0, 1\], got 1.5"):
        create_transform("deit_small_patch16_224", train=True, reprob=1.5)
    with pytest.raises(ConfigError, match="lacks input_size"):
        create_transform({"mean": (0.5,), "std": (0.5,)})
    with pytest.raises(ConfigError, match="unknown interpolation 'cubic'"):
        create_transform({"input_size": (3, 8, 8), "mean": (0,) * 3, "std": (1,) * 3, "interpolation": "cubic"})
