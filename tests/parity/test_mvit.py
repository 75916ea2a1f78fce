"""MViT parity: torchvision `MViT` (mvit_v1_b / mvit_v2_s semantics) and timm `MultiScaleVit` (mvitv2_*), random
init with LayerNorm affines randomised, converted to vitkit, must give the same logits (fp32, eval,
max abs diff <= 1e-5). Reduced widths/depths keep the suite fast on CPU; the full-size comparisons are
mvitv2_tiny at 224 (timm) and one test running torchvision mvit_v1_b and mvit_v2_s at 16x224."""

import math

import pytest
import torch
from torch import nn

from vitkit import create_model
from vitkit.convert import to_vitkit
from vitkit.models.mvit import block_settings

tv_mvit = pytest.importorskip("torchvision.models.video.mvit")
timm_mvit = pytest.importorskip("timm.models.mvitv2")

# stages [1, 2, 1]: a v1 MLP expansion, Q strides at blocks 1 and 3, heads 1 -> 2 -> 4, K/V stride 4 -> 2 -> 1
VIDEO = {"embed_dim": 16, "depths": (1, 2, 1), "pool_stride_kv": (1, 4, 4), "num_classes": 5}
IMAGE = {"embed_dim": 16, "depths": (1, 2, 1), "num_classes": 5}


def _randomise_norms(model: nn.Module) -> nn.Module:
    """LayerNorms at their 1/0 init would hide a mis-mapped key."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.LayerNorm):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.1)
    return model.eval()


def _torchvision(model, T: int, size: int) -> nn.Module:
    """torchvision's MViT with the block_setting of a vitkit model (its builders hard-code the full tables)."""
    cfg = model.config
    setting = [tv_mvit.MSBlockConfig(
        num_heads=s.num_heads, input_channels=s.dim_in, output_channels=s.dim_out,
        kernel_q=list(s.kernel_q) if math.prod(s.kernel_q) > 1 or math.prod(s.stride_q) > 1 else [],
        kernel_kv=list(s.kernel_kv), stride_q=list(s.stride_q), stride_kv=list(s.stride_kv))
        for s in block_settings(cfg)]
    v2 = cfg.pos_embed == "relative"
    ref = tv_mvit.MViT(spatial_size=(size, size), temporal_size=T, block_setting=setting, residual_pool=v2,
                       residual_with_cls_embed=False, rel_pos_embed=v2, proj_after_attn=v2,
                       num_classes=cfg.num_classes)
    return _randomise_norms(ref)


def _convert(ref: nn.Module, model: nn.Module, source: str) -> nn.Module:
    sd, found = to_vitkit(ref.state_dict(), model)
    assert found == source
    model.load_state_dict(model.adapt_state_dict(sd), strict=True)
    return model.eval()


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a - b).abs().max().item()


@pytest.mark.parametrize("name", ["mvit_base_16x4", "mvitv2_small_16x4"])
@pytest.mark.parametrize("T,size", [(4, 32), (8, 160)])
def test_mvit_matches_torchvision(name, T, size):
    model = create_model(name, num_frames=T, img_size=size, **VIDEO)
    ref = _torchvision(model, T, size)
    _convert(ref, model, "torchvision")
    x = torch.randn(2, 3, T, size, size)
    with torch.no_grad():
        assert _max_diff(model(x), ref(x)) <= 1e-5


def test_mvit_v1_b_block_table_is_torchvision():
    """The derived schedule of the full models equals torchvision's hard-coded tables (built on meta)."""
    for name, tv in [("mvit_base_16x4", "mvit_v1_b"), ("mvitv2_small_16x4", "mvit_v2_s")]:
        with torch.device("meta"):
            model, ref = create_model(name), getattr(tv_mvit, tv)()
        assert len(model.blocks) == len(ref.blocks) == 16
        for ours, theirs in zip(model.blocks, ref.blocks):
            assert ours.attn.qkv.weight.shape == theirs.attn.qkv.weight.shape
            assert ours.mlp.fc2.weight.shape == theirs.mlp[3].weight.shape
            assert ours.attn.num_heads == theirs.attn.num_heads
            for r, p in [("q_reducer", "pool_q"), ("k_reducer", "pool_k")]:
                a, b = getattr(ours.attn, r), getattr(theirs.attn, p)
                assert (a is None) == (b is None)
                if a is not None:
                    assert (a.kernel_size, a.stride) == (b.pool.kernel_size, b.pool.stride)


def test_mvitv2_tiny_matches_timm_at_224():
    import timm

    ref = _randomise_norms(timm.create_model("mvitv2_tiny"))
    model = _convert(ref, create_model("mvitv2_tiny"), "timm")
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        ours, theirs = model(x), ref(x)
    assert _max_diff(ours, theirs) <= 1e-5 * max(1.0, theirs.abs().max().item())


@pytest.mark.parametrize("size", [32, 64])
def test_mvitv2_image_matches_timm_reduced(size):
    cfg = timm_mvit.MultiScaleVitCfg(depths=IMAGE["depths"], embed_dim=IMAGE["embed_dim"], num_heads=1)
    ref = _randomise_norms(timm_mvit.MultiScaleVit(cfg, img_size=(size, size), num_classes=IMAGE["num_classes"]))
    model = _convert(ref, create_model("mvitv2_tiny", img_size=size, **IMAGE), "timm")
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        assert _max_diff(model(x), ref(x)) <= 1e-5


def test_mvitv2_256_matches_timm():
    """Another image size: timm builds its relative tables for 256; vitkit too (config img_size=256)."""
    cfg = timm_mvit.MultiScaleVitCfg(depths=(1, 2, 5, 2), embed_dim=16)
    ref = _randomise_norms(timm_mvit.MultiScaleVit(cfg, img_size=(256, 256), num_classes=5))
    model = _convert(ref, create_model("mvitv2_tiny", img_size=256, embed_dim=16, num_classes=5), "timm")
    x = torch.randn(1, 3, 256, 256)
    with torch.no_grad():
        assert _max_diff(model(x), ref(x)) <= 1e-5


@pytest.mark.parametrize("name", ["mvit_base_16x4", "mvitv2_small_16x4"])
def test_checkpoint_at_another_size_is_resampled(name):
    """A 4x32 checkpoint loads into an 8x48 model: position tables (absolute v1, relative v2) resampled."""
    src = create_model(name, num_frames=4, img_size=32, **VIDEO)
    dst = create_model(name, num_frames=8, img_size=48, **VIDEO)
    sd = dst.adapt_state_dict(src.state_dict())
    dst.load_state_dict(sd, strict=True)
    assert any(src.state_dict()[k].shape != v.shape for k, v in sd.items())
    assert dst.eval()(torch.randn(1, 3, 8, 48, 48)).shape == (1, 5)


def test_full_size_matches_torchvision():
    """mvit_v1_b and mvit_v2_s themselves at 16x224 (one clip, ~70 and ~64 GMACs per model; ~30 s together)."""
    x = torch.randn(1, 3, 16, 224, 224)
    for tv, name in [("mvit_v1_b", "mvit_base_16x4"), ("mvit_v2_s", "mvitv2_small_16x4")]:
        ref = _randomise_norms(getattr(tv_mvit, tv)())
        model = _convert(ref, create_model(name), "torchvision")
        with torch.no_grad():
            ours, theirs = model(x), ref(x)
        assert _max_diff(ours, theirs) <= 1e-5 * max(1.0, theirs.abs().max().item()), tv


@pytest.mark.parametrize("name", ["mvit_base_16x4", "mvitv2_small_16x4"])
def test_torchvision_checkpoint_file_at_another_size_loads(tmp_path, name):
    """A torchvision .pth saved at 4x32 loads into an 8x48 vitkit model through create_model(checkpoint=...):
    detected, converted, position tables resampled, strictly loaded; at its own size it still matches."""
    small = create_model(name, num_frames=4, img_size=32, **VIDEO)
    ref = _torchvision(small, 4, 32)
    path = tmp_path / "tv.pth"
    torch.save({"model": ref.state_dict()}, path)
    big = create_model(name, checkpoint=str(path), num_frames=8, img_size=48, **VIDEO).eval()
    assert big(torch.randn(1, 3, 8, 48, 48)).shape == (1, 5)
    same = create_model(name, checkpoint=str(path), num_frames=4, img_size=32, **VIDEO).eval()
    x = torch.randn(1, 3, 4, 32, 32)
    with torch.no_grad():
        assert _max_diff(same(x), ref(x)) <= 1e-5


@pytest.mark.parametrize("q_thw,k_thw", [((2, 4, 4), (2, 2, 2)), ((3, 6, 6), (3, 3, 3)), ((4, 7, 5), (2, 3, 2))])
def test_rel_pos_matches_torchvision_at_other_grids(q_thw, k_thw):
    """Tables built for a (2, 4, 4) input grid, evaluated on other query/key grids: resampled tables and
    fractional stride ratios as torchvision's `_add_rel_pos` (which adds to [1:, 1:] of the logits)."""
    from vitkit.models.mvit import DecomposedRelPos

    rel = DecomposedRelPos(8, (2, 4, 4), (1, 1, 1), (1, 2, 2))
    q = torch.randn(2, 3, 1 + math.prod(q_thw), 8)
    want = tv_mvit._add_rel_pos(torch.zeros(2, 3, 1 + math.prod(q_thw), 1 + math.prod(k_thw)), q, q_thw, k_thw,
                                rel.rel_pos_h, rel.rel_pos_w, rel.rel_pos_t)
    with torch.no_grad():
        torch.testing.assert_close(rel.bias(q, q_thw, k_thw), want, rtol=0, atol=1e-5)


@pytest.mark.parametrize("name", ["mvitv2_small_16x4"])
def test_mvitv2_training_step_matches_torchvision(name):
    """With gradients the relative-position bias rides in q·kᵀ as extra channels (no bias tensor): the logits and
    the gradients of the tables, of q/k/v and of the patch embedding must equal torchvision's."""
    model = create_model(name, num_frames=4, img_size=32, drop_path_rate=0.0, **{**VIDEO, "drop_rate": 0.0})
    ref = _torchvision(model, 4, 32)
    _convert(ref, model, "torchvision")
    x = torch.randn(2, 3, 4, 32, 32)
    ours, theirs = model(x), ref(x)
    assert _max_diff(ours, theirs) <= 1e-5
    (ours * torch.arange(5.0)).sum().backward()
    (theirs * torch.arange(5.0)).sum().backward()
    for blk, ref_blk in zip(model.blocks, ref.blocks):
        for ours_t, theirs_t in ((blk.attn.rel_pos.rel_pos_h, ref_blk.attn.rel_pos_h),
                                 (blk.attn.rel_pos.rel_pos_t, ref_blk.attn.rel_pos_t),
                                 (blk.attn.qkv.weight, ref_blk.attn.qkv.weight)):
            torch.testing.assert_close(ours_t.grad, theirs_t.grad, rtol=1e-4, atol=1e-5)
