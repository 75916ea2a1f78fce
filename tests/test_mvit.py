"""MViT v1/v2: sizes and costs of the full models (meta device), the per-block schedule, the mechanism of pooling
attention and decomposed relative positions, other clip/image sizes, the official key layout, bad inputs."""

import math
import re

import pytest
import torch
from tiny import meta_model

from vitkit import create_model
from vitkit.convert import to_vitkit
from vitkit.errors import ConfigError, InputError
from vitkit.models.mvit import DecomposedRelPos, _pool_tokens, block_settings
from vitkit.tools.profile import count_gmacs, count_params

VIDEO = {"img_size": 32, "num_frames": 4, "embed_dim": 16, "depths": (1, 2, 1), "pool_stride_kv": (1, 4, 4),
         "num_classes": 5}


# --- sizes and costs ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,params", [
    ("mvit_base_16x4", 36_610_672),       # torchvision mvit_v1_b, 400 classes
    ("mvitv2_small_16x4", 34_537_744),    # torchvision mvit_v2_s
])
def test_video_param_counts(name, params):
    assert count_params(meta_model(name)) == params


@pytest.mark.parametrize("name,spec_m", [("mvitv2_tiny", 24.17), ("mvitv2_small", 34.87), ("mvitv2_base", 51.47)])
def test_image_param_counts_equal_timm(name, spec_m):
    timm = pytest.importorskip("timm")
    with torch.device("meta"):
        ref = timm.create_model(name)
    n = count_params(meta_model(name))
    assert n == count_params(ref)
    assert round(n / 1e6, 2) == spec_m


def test_other_video_sizes():
    assert count_params(meta_model("mvit_base_32x3")) == 36_610_672 + 8 * 96  # 16 temporal positions instead of 8
    assert round(count_params(meta_model("mvitv2_base_32x3")) / 1e6, 1) == 51.2  # SlowFast projects/mvitv2 README


@pytest.mark.parametrize("name,paper", [("mvit_base_16x4", 70.5), ("mvitv2_small_16x4", 64.2)])
def test_gmacs_match_papers(name, paper):
    model = meta_model(name).eval()
    assert abs(count_gmacs(model, model.input_shape()) / paper - 1) < 0.01


# --- schedule -------------------------------------------------------------------------------------------------------
def test_block_table_is_spec_7_1():
    """SPEC.md §7.1 per-block table of MViT-B 16x4 (dims, heads, input grid, Q stride, KV stride)."""
    spec = {0: (96, 192, 1, (8, 56, 56), None, (1, 8, 8)), 1: (192, 192, 2, (8, 56, 56), (1, 2, 2), (1, 4, 4)),
            2: (192, 384, 2, (8, 28, 28), None, (1, 4, 4)), 3: (384, 384, 4, (8, 28, 28), (1, 2, 2), (1, 2, 2)),
            **{i: (384, 384, 4, (8, 14, 14), None, (1, 2, 2)) for i in range(4, 13)},
            13: (384, 768, 4, (8, 14, 14), None, (1, 2, 2)), 14: (768, 768, 8, (8, 14, 14), (1, 2, 2), (1, 1, 1)),
            15: (768, 768, 8, (8, 7, 7), None, (1, 1, 1))}
    model = meta_model("mvit_base_16x4")
    rows, grid = block_settings(model.config), model.grid_size
    assert len(rows) == 16
    for i, s in enumerate(rows):
        d_in, d_out, heads, thw, sq, skv = spec[i]
        assert (s.dim_in, s.dim_out, s.num_heads, grid, s.stride_kv) == (d_in, d_out, heads, thw, skv)
        assert s.stride_q == (sq or (1, 1, 1)) and s.kernel_kv == (3, 3, 3)
        assert s.kernel_q == ((3, 3, 3) if sq else (1, 1, 1))  # v1 pools Q only at the transitions
        assert s.dim_in // s.num_heads == 96
        grid = tuple(n // q for n, q in zip(grid, s.stride_q))
    assert 1 + math.prod(grid) == 393


def test_v2_pools_q_everywhere_and_expands_in_attention():
    rows = block_settings(meta_model("mvitv2_small_16x4").config)
    assert all(s.kernel_q == (3, 3, 3) for s in rows)
    assert [i for i, s in enumerate(rows) if s.dim_in != s.dim_out] == [1, 3, 14]  # the Q-strided blocks
    rows = block_settings(meta_model("mvitv2_base").config)
    assert [i for i, s in enumerate(rows) if s.stride_q == (2, 2)] == [2, 5, 21]
    assert [s.stride_kv for s in rows][:3] == [(4, 4), (4, 4), (2, 2)]


def test_tokens_per_block_follow_the_q_grid():
    model = create_model("mvit_base_16x4", **VIDEO).eval()
    x, grid = model.patch_embed(torch.randn(1, 3, 4, 32, 32))
    x = torch.cat([model.cls_token.expand(1, -1, -1), x], 1)
    for blk, s in zip(model.blocks, block_settings(model.config)):
        x, new = blk(x, grid)
        assert new == tuple(math.ceil(n / q) for n, q in zip(grid, s.stride_q))
        assert x.shape == (1, 1 + math.prod(new), s.dim_out)
        grid = new


# --- mechanism ------------------------------------------------------------------------------------------------------
def test_decomposed_rel_pos_is_the_definition():
    """bias[(t,h,w), (t',h',w')] = q · (R_t[t−t'] + R_h[h−h'] + R_w[w−w']) on equal grids; zero on the cls
    row and column."""
    grid, d = (2, 3, 4), 5
    rel = DecomposedRelPos(d, grid, (1, 1, 1), (1, 1, 1))
    q = torch.randn(2, 3, 1 + math.prod(grid), d)
    bias = rel.bias(q, grid, grid)
    assert bias.shape == (2, 3, 25, 25)
    assert bias[:, :, 0].abs().max() == 0 and bias[:, :, :, 0].abs().max() == 0
    cells = [(t, h, w) for t in range(2) for h in range(3) for w in range(4)]
    want = torch.zeros(2, 3, 24, 24)
    for i, (t, h, w) in enumerate(cells):
        for j, (t2, h2, w2) in enumerate(cells):
            r = rel.rel_pos_t[t - t2 + 1] + rel.rel_pos_h[h - h2 + 2] + rel.rel_pos_w[w - w2 + 3]
            want[:, :, i, j] = q[:, :, 1 + i] @ r
    torch.testing.assert_close(bias[:, :, 1:, 1:], want, rtol=0, atol=1e-6)


def test_rel_pos_strided_keys_use_the_fine_grid_units():
    """K pooled by 2: key j sits at 2j in query units, so q_i's offset to k_j is i − 2j (table centre n_q − 1)."""
    rel = DecomposedRelPos(4, (4, 4), (1, 1), (2, 2))
    assert rel.rel_pos_h.shape == (7, 4)
    R = rel._table(rel.rel_pos_h, 4, 2)
    for i in range(4):
        for j in range(2):
            assert torch.equal(R[i, j], rel.rel_pos_h[i - 2 * j + 2])


def test_pooling_leaves_the_class_token_alone():
    pool = torch.nn.MaxPool2d(3, 2, 1)
    x = torch.randn(2, 1 + 16, 8)
    y = _pool_tokens(x, (4, 4), pool, 1)
    assert y.shape == (2, 1 + 4, 8) and torch.equal(y[:, 0], x[:, 0])
    patches = x[:, 1:].transpose(1, 2).reshape(2, 8, 4, 4)  # (B, N, C) -> (B, C, H, W)
    assert torch.equal(y[:, 1:], pool(patches).flatten(2).transpose(1, 2))


def test_q_pooling_is_a_depthwise_conv_per_head_that_skips_the_class_token():
    model = create_model("mvitv2_small_16x4", **VIDEO).eval()
    attn = model.blocks[1].attn  # the first Q-strided block
    conv = attn.q_reducer
    assert isinstance(conv, torch.nn.Conv3d) and conv.stride == (1, 2, 2) and conv.groups == conv.in_channels
    B, h, d, grid = 2, attn.num_heads, conv.in_channels, (2, 8, 8)
    q = torch.randn(B, h, 1 + math.prod(grid), d)
    pooled, new_grid = attn._reduce_heads(q, grid, conv)
    assert new_grid == (2, 4, 4) and torch.equal(pooled[:, :, 0], q[:, :, 0])
    maps = q[:, :, 1:].reshape(B * h, *grid, d).movedim(-1, 1)  # (B, h, N, d) -> (B·h, d, T, H, W)
    want = conv(maps).flatten(2).transpose(1, 2).reshape(B, h, -1, d)  # -> (B, h, N', d)
    torch.testing.assert_close(pooled[:, :, 1:], want)


@pytest.mark.parametrize("mode", ["avg", "max"])
def test_avg_and_max_pooling_have_no_parameters_or_norm(mode):
    model = create_model("mvit_base_16x4", pool_mode=mode, **dict(VIDEO, num_frames=8)).eval()
    assert not any("reducer" in n or "_norm" in n for n, _ in model.named_parameters())
    # 8 frames: torch's AvgPool3d refuses a map shorter than its kernel even with padding
    assert model(torch.randn(1, 3, 8, 32, 32)).shape == (1, 5)


def test_image_model_mean_pools_all_tokens():
    model = create_model("mvitv2_tiny", img_size=32, embed_dim=16, depths=(1, 1), num_classes=5).eval()
    x = torch.randn(2, 3, 32, 32)
    feats = model.forward_features(x)
    assert model.cls_token is None and feats.shape == (2, 16, 32)  # 8x8 patches, one Q stride
    torch.testing.assert_close(model.forward_head(feats, pre_logits=True), feats.mean(1))


def test_eval_is_deterministic_with_every_drop_rate():
    model = create_model("mvitv2_small_16x4", drop_rate=0.2, attn_drop_rate=0.2, drop_path_rate=0.3, **VIDEO).eval()
    x = torch.randn(2, 3, 4, 32, 32)
    assert torch.equal(model(x), model(x))


# --- other sizes ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["mvit_base_16x4", "mvitv2_small_16x4"])
def test_video_runs_at_other_clip_shapes(name):
    """Built for 4x32, run at 8x48 and 2x40x24: absolute tables resampled, relative tables interpolated."""
    model = create_model(name, **VIDEO).eval()
    for shape in [(8, 48, 48), (2, 40, 24)]:
        assert model(torch.randn(1, 3, *shape)).shape == (1, 5)


def test_image_runs_at_256():
    model = create_model("mvitv2_tiny", img_size=32, embed_dim=16, depths=(1, 1), num_classes=5).eval()
    assert model(torch.randn(1, 3, 256, 256)).shape == (1, 5)


def test_same_size_resampling_is_identity():
    model = create_model("mvit_base_16x4", **VIDEO)
    pos = model._abs_pos_embed(model.grid_size)
    spatial = model.pos_embed_spatial[0].reshape(8, 8, 16)
    torch.testing.assert_close(pos[0, 1 + 2 * 64 - 1], spatial[7, 7] + model.pos_embed_temporal[0, 1], rtol=0, atol=0)


# --- official (SlowFast / facebookresearch-mvit) key layout ---------------------------------------------------------
def _to_official(sd: dict, expand_attn: bool) -> dict:
    """vitkit -> the official layout, written independently of the converter (names from SlowFast attention.py)."""
    out = {}
    for k, v in sd.items():
        k = re.sub(r"\.attn\.([qkv])_reducer\.", r".attn.pool_\1.", k)
        k = re.sub(r"\.attn\.([qkv])_norm\.", r".attn.norm_\1.", k)
        k = k.replace(".attn.rel_pos.rel_pos_", ".attn.rel_pos_")
        k = k.replace(".shortcut_proj_attn." if expand_attn else ".shortcut_proj_mlp.", ".proj.")
        out[k.replace("head.", "head.projection.") if k.startswith("head.") else k] = v
    return out


@pytest.mark.parametrize("name", ["mvit_base_16x4", "mvitv2_small_16x4"])
def test_official_layout_round_trip(name):
    model = create_model(name, **VIDEO)
    sd = model.state_dict()
    official = _to_official(sd, model.config.expand_attn)
    widen = next(i for i, s in enumerate(block_settings(model.config)) if s.dim_in != s.dim_out)
    assert {"blocks.0.attn.qkv.weight", "blocks.0.attn.pool_k.weight", "blocks.0.attn.norm_k.weight",
            f"blocks.{widen}.proj.weight", "head.projection.weight", "patch_embed.proj.weight",
            "cls_token"} <= set(official)
    if model.config.pos_embed == "relative":
        assert {"blocks.0.attn.rel_pos_h", "blocks.0.attn.rel_pos_t"} <= set(official)
    else:
        assert {"pos_embed_spatial", "pos_embed_temporal", "pos_embed_class"} <= set(official)
    back, source = to_vitkit(official, model)
    assert source == "official" and back.keys() == sd.keys()
    assert all(torch.equal(back[k], sd[k]) for k in sd)


def test_official_separate_qkv_is_stacked():
    model = create_model("mvitv2_small_16x4", **VIDEO)
    sd = model.state_dict()
    official = _to_official(sd, True)
    for k in [k for k in official if k.endswith((".attn.qkv.weight", ".attn.qkv.bias"))]:
        stem, kind = k.rsplit(".qkv.", 1)
        for name, part in zip("qkv", official.pop(k).chunk(3)):
            official[f"{stem}.{name}.{kind}"] = part
    back, _ = to_vitkit(official, model)
    assert all(torch.equal(back[k], sd[k]) for k in sd)


# --- bad inputs -----------------------------------------------------------------------------------------------------
def test_bad_inputs_raise_one_sentence():
    video = create_model("mvit_base_16x4", **VIDEO)
    with pytest.raises(InputError, match="video batch"):
        video(torch.randn(1, 3, 32, 32))
    with pytest.raises(InputError, match="input channels"):
        video(torch.randn(1, 1, 4, 32, 32))
    image = create_model("mvitv2_tiny", img_size=32, embed_dim=16, depths=(1, 1))
    with pytest.raises(InputError, match="image batch"):
        image(torch.randn(1, 3, 4, 32, 32))


@pytest.mark.parametrize("overrides,match", [
    ({"pool_mode": "lp"}, "pool_mode"),
    ({"pos_embed": "sincos"}, "pos_embed"),
    ({"class_token": False}, "global_pool='token' needs class_token"),
    ({"pool_kernel": (3, 3)}, "pool_kernel must have 3 entries"),
    ({"depths": ()}, "depths"),
    ({"num_heads": 5}, "not divisible"),
    ({"window_size": 7}, "unknown option"),
])
def test_bad_configs_raise(overrides, match):
    with pytest.raises(ConfigError, match=match):
        create_model("mvit_base_16x4", **overrides)


def test_image_model_rejects_frames():
    with pytest.raises(ConfigError, match="num_frames"):
        create_model("mvitv2_tiny", num_frames=8)


def test_rel_pos_features_give_the_bias():
    """scale · q_rel · k_relᵀ (the training form, extra channels of q and k) is the broadcast-built bias, prefix
    rows and columns zero, on a strided key grid."""
    rel = DecomposedRelPos(5, (2, 4, 4), (1, 1, 1), (1, 2, 2))
    q = torch.randn(2, 3, 1 + 2 * 4 * 4, 5)
    q_rel, k_rel = rel(q, (2, 4, 4), (2, 2, 2), 0.125)
    assert q_rel.shape == (2, 3, 33, 2 + 2 + 2) and k_rel.shape == (1 + 8, 6)
    assert torch.equal(k_rel.sum(1), torch.tensor([0.0] + [3.0] * 8))  # one coordinate per axis, none for cls
    torch.testing.assert_close(0.125 * q_rel @ k_rel.T, rel.bias(q, (2, 4, 4), (2, 2, 2)), rtol=1e-5, atol=1e-6)
