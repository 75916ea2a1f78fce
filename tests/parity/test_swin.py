"""Swin parity: vitkit logits equal timm's and torchvision's (random init, converted weights, fp32, eval) at
reduced depth/width with every mechanism exercised: shifted windows in stages 1-3, the shrunk unshifted window
of stage 4, non-square inputs, and (vs torchvision, which pads before the shift) sizes the window does not divide."""

import pytest
import timm
import torch
import torchvision

import vitkit
from vitkit.checkpoint import load_state_dict
from vitkit.convert import to_vitkit
from vitkit.convert.official import swin_to_official

SMALL = {"embed_dim": 16, "depths": (2, 2, 2, 2), "num_heads": (1, 2, 2, 4)}
TOL = 1e-5


def _converted(ref: torch.nn.Module, name: str, expected_source: str, **overrides):
    ours = vitkit.create_model(name, **overrides).eval()
    sd, source = to_vitkit(ref.state_dict(), ours)
    assert source == expected_source
    load_state_dict(ours, sd)
    return ours


def _max_diff(ours, ref, shape) -> float:
    x = torch.randn(*shape)
    with torch.no_grad():
        return (ours(x) - ref(x)).abs().max().item()


@pytest.mark.parametrize("name,img,M", [("swin_tiny_patch4_window7_224", 224, 7),
                                        ("swin_base_patch4_window12_384", 384, 12)])
def test_timm_parity(name, img, M):
    ref = timm.create_model(name, pretrained=False, **SMALL).eval()
    ours = _converted(ref, name, "vitkit", **SMALL)  # same keys as timm: nothing to convert
    # the mechanism under test: stages 1-3 shift by M/2, stage 4 (M×M tokens) uses one unshifted window
    grid = img // 4
    for i, stage in enumerate(ours.layers):
        side = grid // 2 ** i
        assert stage.blocks[1].window_and_shift(side, side) == ((M, M), (0, 0) if i == 3 else (M // 2, M // 2))
    assert _max_diff(ours, ref, (2, 3, img, img)) <= TOL


def test_timm_parity_non_square():
    ref = timm.create_model("swin_tiny_patch4_window7_224", pretrained=False, img_size=(224, 448), **SMALL).eval()
    ours = _converted(ref, "swin_tiny_patch4_window7_224", "vitkit", img_size=(224, 448), **SMALL)
    # stage 4 is 7×14: one axis keeps a single unshifted window, the other shifts
    assert ours.layers[3].blocks[1].window_and_shift(7, 14) == ((7, 7), (0, 3))
    assert _max_diff(ours, ref, (1, 3, 224, 448)) <= TOL


def _torchvision_small() -> torch.nn.Module:
    # swin_t's architecture (torchvision.models.swin_t) at reduced width and depth
    return torchvision.models.SwinTransformer(patch_size=[4, 4], embed_dim=16, depths=[2, 2, 2, 2],
                                              num_heads=[1, 2, 2, 4], window_size=[7, 7]).eval()


@pytest.mark.parametrize("size", [(224, 224), (200, 300)])
def test_torchvision_parity(size):
    """200×300: token grids 50×75 -> 25×38 -> 13×19 -> 7×10 are padded to the window before the shift and at
    the odd merge; torchvision pads before rolling as vitkit does."""
    ref = _torchvision_small()
    ours = _converted(ref, "swin_tiny_patch4_window7_224", "torchvision", **SMALL)
    assert _max_diff(ours, ref, (1, 3, *size)) <= TOL


@pytest.mark.parametrize("tv,name", [("swin_t", "swin_tiny_patch4_window7_224"),
                                     ("swin_s", "swin_small_patch4_window7_224"),
                                     ("swin_b", "swin_base_patch4_window7_224")])
def test_torchvision_full_size_keys_convert(tv, name):
    """Full swin_t/s/b state dicts convert key for key and shape for shape (meta device: no weights made)."""
    with torch.device("meta"):
        ref = getattr(torchvision.models, tv)()
        ours = vitkit.create_model(name)
    sd, source = to_vitkit(ref.state_dict(), ours)
    assert source == "torchvision"
    own = ours.state_dict()
    assert set(sd) == set(own) and all(sd[k].shape == own[k].shape for k in own)


def test_official_layout_converts_back():
    """microsoft/Swin-Transformer layout (merge at the end of stage i, `head`, stored index and mask buffers)."""
    ours = vitkit.create_model("swin_tiny_patch4_window7_224", **SMALL).eval()
    official = swin_to_official(ours.state_dict(), window_size=7)
    assert "layers.0.downsample.reduction.weight" in official and "layers.3.downsample.norm.weight" not in official
    official["layers.0.blocks.1.attn_mask"] = torch.zeros(64, 49, 49)  # stored by the official code, never loaded
    other = vitkit.create_model("swin_tiny_patch4_window7_224", **SMALL).eval()
    sd, source = to_vitkit(official, other)
    assert source == "official"
    load_state_dict(other, sd)
    assert _max_diff(other, ours, (1, 3, 224, 224)) == 0.0
