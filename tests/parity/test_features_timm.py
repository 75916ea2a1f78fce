"""Backbone parity with timm (issue 14): `forward_intermediates` and `create_model(features_only=True)` of ViT,
DeiT, Swin and MViTv2 equal timm's on random weights converted through vitkit's loaders (fp32, eval, max abs
diff <= 1e-5), at the default input size and another one (ViT/DeiT: one model fed another size, timm with
dynamic_img_size; Swin and MViTv2: both built for it, as timm fixes the size at build time)."""

import pytest
import timm
import torch
from timm.models import mvitv2 as timm_mvit
from timm.models._features import FeatureGetterNet

import vitkit
from vitkit.checkpoint import load_state_dict
from vitkit.convert import to_vitkit
from vitkit.models.features import FeatureBackbone

TOL = 1e-5
SWIN = {"embed_dim": 16, "depths": (2, 2, 2, 2), "num_heads": (1, 2, 2, 4)}
MVIT = {"embed_dim": 16, "depths": (1, 2, 1, 1)}


def _converted(ref: torch.nn.Module, ours: torch.nn.Module) -> torch.nn.Module:
    sd, _ = to_vitkit(ref.state_dict(), ours)
    load_state_dict(ours, sd)
    return ours.eval()


def _randomise_norms(model: torch.nn.Module) -> torch.nn.Module:
    """LayerNorms at their 1/0 init would hide a norm applied (or skipped) where timm does otherwise."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.LayerNorm):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.1)
    return model.eval()


def _assert_close(ours, theirs):
    """Nested lists / tuples of tensors, equal in structure and shape, within TOL."""
    if isinstance(theirs, torch.Tensor):
        assert ours.shape == theirs.shape
        assert (ours - theirs).abs().max().item() <= TOL
        return
    assert type(ours) in (list, tuple) and len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        _assert_close(a, b)


def _compare_intermediates(ours, ref, x, cases):
    with torch.no_grad():
        for kw in cases:
            _assert_close(ours.forward_intermediates(x, **kw), ref.forward_intermediates(x, **kw))


@pytest.mark.parametrize("name", ["vit_tiny_patch16_224", "deit_tiny_distilled_patch16_224"])
@pytest.mark.parametrize("size", [(224, 224), (160, 256)])
def test_vit_deit_forward_intermediates(name, size):
    ref = _randomise_norms(timm.create_model(name, depth=3, dynamic_img_size=True))
    ours = _converted(ref, vitkit.create_model(name, depth=3))
    x = torch.randn(2, 3, *size)
    _compare_intermediates(ours, ref, x, [
        {}, dict(indices=2, norm=True), dict(indices=[0, -1], output_fmt="NLC"),
        dict(indices=[1], return_prefix_tokens=True, norm=True), dict(indices=1, intermediates_only=True),
        dict(indices=[0], stop_early=True, intermediates_only=True),
    ])


@pytest.mark.parametrize("name", ["vit_tiny_patch16_224", "deit_tiny_distilled_patch16_224"])
def test_vit_deit_features_only(name, tmp_path):
    ref = _randomise_norms(timm.create_model(name, depth=4, dynamic_img_size=True))
    torch.save(ref.state_dict(), tmp_path / "w.pth")
    kw = dict(features_only=True, out_indices=(0, 2), depth=4)
    theirs = timm.create_model(name, pretrained=True, pretrained_cfg_overlay=dict(file=str(tmp_path / "w.pth")),
                               dynamic_img_size=True, **kw).eval()
    ours = vitkit.create_model(name, checkpoint=str(tmp_path / "w.pth"), **kw).eval()
    assert len(ours.model.blocks) == len(theirs.model.blocks) == 3  # the last block is pruned
    assert ours.feature_info.channels() == theirs.feature_info.channels()
    assert ours.feature_info.reduction() == theirs.feature_info.reduction()
    for size in [(224, 224), (192, 128)]:
        x = torch.randn(2, 3, *size)
        with torch.no_grad():
            _assert_close(ours(x), theirs(x))


@pytest.mark.parametrize("img_size", [224, (224, 448)])
def test_swin_forward_intermediates(img_size):
    ref = _randomise_norms(timm.create_model("swin_tiny_patch4_window7_224", img_size=img_size, **SWIN))
    ours = _converted(ref, vitkit.create_model("swin_tiny_patch4_window7_224", img_size=img_size, **SWIN))
    x = torch.randn(2, 3, *((img_size,) * 2 if isinstance(img_size, int) else img_size))
    _compare_intermediates(ours, ref, x, [{}, dict(norm=True), dict(indices=[0, 2], intermediates_only=True),
                                          dict(indices=2, norm=True)])


def test_swin_features_only(tmp_path):
    ref = timm.create_model("swin_tiny_patch4_window7_224", **SWIN)
    _randomise_norms(ref)
    torch.save(ref.state_dict(), tmp_path / "w.pth")
    kw = dict(features_only=True, out_indices=(1, 2), **SWIN)
    theirs = timm.create_model("swin_tiny_patch4_window7_224", pretrained=True,
                               pretrained_cfg_overlay=dict(file=str(tmp_path / "w.pth")), **kw).eval()
    ours = vitkit.create_model("swin_tiny_patch4_window7_224", checkpoint=str(tmp_path / "w.pth"), **kw).eval()
    assert len(ours.model.layers) == 3
    assert ours.feature_info.channels() == theirs.feature_info.channels() == [32, 64]
    assert ours.feature_info.reduction() == theirs.feature_info.reduction() == [8, 16]
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        # timm's Swin feature maps are NHWC (its hook-based wrapper); vitkit's are NCHW like every other family
        _assert_close(ours(x), [t.permute(0, 3, 1, 2) for t in theirs(x)])


@pytest.mark.parametrize("size", [224, 64])
def test_mvitv2_forward_intermediates_and_features(size):
    cfg = timm_mvit.MultiScaleVitCfg(depths=MVIT["depths"], embed_dim=MVIT["embed_dim"])
    ref = _randomise_norms(timm_mvit.MultiScaleVit(cfg, img_size=(size, size), num_classes=5))
    ours = _converted(ref, vitkit.create_model("mvitv2_tiny", img_size=size, num_classes=5, **MVIT))
    x = torch.randn(2, 3, size, size)
    _compare_intermediates(ours, ref, x, [{}, dict(norm=True, output_fmt="NLC"), dict(indices=2, norm=True),
                                          dict(indices=[1], stop_early=True, intermediates_only=True)])
    # features_only: timm wraps MViTv2 in FeatureGetterNet (prune + forward_intermediates), as vitkit does
    theirs, mine = FeatureGetterNet(ref, out_indices=(0, 2)).eval(), FeatureBackbone(ours, out_indices=(0, 2)).eval()
    assert len(mine.model.blocks) == sum(MVIT["depths"][:3])
    assert mine.feature_info.channels() == theirs.feature_info.channels() == [16, 64]
    assert mine.feature_info.reduction() == theirs.feature_info.reduction() == [4, 16]
    with torch.no_grad():
        _assert_close(mine(x), theirs(x))
