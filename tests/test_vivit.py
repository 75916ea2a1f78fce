"""ViViT: parameter counts and GMACs against SPEC (meta device), token dependencies of each model's factorisation
(autograd Jacobians on tiny blocks), initialisation from an image ViT (§3.4), any clip shape, and bad input."""

import math

import pytest
import torch
from torch import nn

import vitkit
from vitkit.errors import CheckpointError, ConfigError, InputError
from vitkit.layers.pos_embed import resample_tube_pos_embed
from vitkit.tools.profile import count_gmacs, count_params

M1, M2, M3, M4 = ("vivit_base_16x2_spatiotemporal", "vivit_base_16x2_factorised_encoder",
                  "vivit_base_16x2_factorised_self_attention", "vivit_base_16x2_factorised_dot_product")
# SPEC §9 exact parameter counts, and the paper's Table 2 GFLOPs (MACs) at 32×224
PARAMS = {M1: 88_954_000, M2: 115_062_928, M3: 117_319_312, M4: 88_952_464}
PAPER_GMACS = {M1: 455.2, M2: 284.4, M3: 372.3, M4: 277.1}
TINY = dict(img_size=32, patch_size=8, num_frames=4, tubelet_size=2, embed_dim=32, depth=2, temporal_depth=1,
            num_heads=4, num_classes=5)


def _meta(name):
    with torch.device("meta"):
        return vitkit.create_model(name).eval()


@pytest.mark.parametrize("name", list(PARAMS))
def test_param_count_equals_spec(name):
    assert count_params(_meta(name)) == PARAMS[name]


@pytest.mark.parametrize("name", list(PAPER_GMACS))
def test_gmacs_within_2pct_of_paper(name):
    m = _meta(name)
    assert m.input_shape() == (3, 32, 224, 224)
    gmacs = count_gmacs(m, m.input_shape())
    assert abs(gmacs / PAPER_GMACS[name] - 1) < 0.02, gmacs


def test_large_models_build_and_fe_temporal_depth_is_papers():
    for name in ("vivit_large_16x2_spatiotemporal", "vivit_large_16x2_factorised_encoder"):
        m = _meta(name)
        assert m.config.embed_dim == 1024 and m.config.depth == 24
    assert len(_meta("vivit_large_16x2_factorised_encoder").temporal_blocks) == 4


# --- dependencies after one block: does output token (t, s) depend on input token (t', s')? -------------------
T, S, D = 3, 4, 32  # 3 tubelet frames of 2×2 tokens


def _tiny(name, **kw):
    return vitkit.create_model(name, **{**TINY, "num_frames": 2 * T, "img_size": 16, **kw}).eval()


def _dependency(fn, n_in: int, dim: int = D) -> torch.Tensor:
    """Boolean (N_out, N_in): does output token i depend on input token j (any channel)?"""
    x = torch.randn(1, n_in, dim, dtype=torch.double)
    J = torch.autograd.functional.jacobian(fn, x)  # (1, N_out, D, 1, N_in, D)
    return J.abs().sum(dim=(0, 2, 3, 5)) != 0


def _grid_masks():
    t, s = torch.arange(T * S) // S, torch.arange(T * S) % S
    same_frame = t[:, None] == t[None, :]
    same_pos = s[:, None] == s[None, :]
    return same_frame, same_pos


def _randomise(module: nn.Module) -> None:
    """Re-initialise every parameter randomly (zero-initialised layers would hide dependencies)."""
    with torch.no_grad():
        for p in module.parameters():
            p.normal_(0, 0.2)


def test_model1_block_is_joint_space_time():
    blk = _tiny(M1).blocks[0].double()
    _randomise(blk)
    dep = _dependency(lambda x: blk(x, T), T * S)
    assert dep.all()


def test_model4_half_heads_over_space_half_over_time():
    blk = _tiny(M4).blocks[0].double()
    _randomise(blk)
    same_frame, same_pos = _grid_masks()
    dep = _dependency(lambda x: blk(x, T), T * S)
    assert torch.equal(dep, same_frame | same_pos)
    # and each half alone: zeroing the value weights of one group leaves exactly the other's dependencies
    attn, g = blk.attn, blk.attn.num_heads // 2
    d = D // attn.num_heads
    for keep, expected in (("time", same_pos), ("space", same_frame)):
        b = _tiny(M4).blocks[0].double()
        b.load_state_dict(blk.state_dict())
        silenced = slice(g * d, None) if keep == "time" else slice(0, g * d)  # heads [0, h/2) time, [h/2, h) space
        with torch.no_grad():  # the value rows of qkv are [2D, 3D)
            b.attn.qkv.weight[2 * D:][silenced].zero_()
            b.attn.qkv.bias[2 * D:][silenced].zero_()
        assert torch.equal(_dependency(lambda x, b=b: b(x, T), T * S), expected)


def test_model4_attention_is_injected_through_attn_layer():
    """Block(attn_layer=...) builds the given attention in place of the default one; the keys stay the image
    block's, so an image ViT's weights map one to one."""
    from vitkit.layers import Block
    from vitkit.models.vivit import FactorisedDotProductAttention

    blk = _tiny(M4).blocks[0]
    assert type(blk.attn) is FactorisedDotProductAttention
    plain = Block(D, 4)
    assert list(blk.state_dict()) == list(plain.state_dict())
    custom = Block(D, 4, attn_layer=FactorisedDotProductAttention)
    assert type(custom.attn) is FactorisedDotProductAttention and custom.attn.num_heads == 4


def test_model3_space_then_time():
    model = _tiny(M3)
    blk = model.blocks[0].double()
    same_frame, same_pos = _grid_masks()
    # at init the temporal output projection is zero (§3.4): the block is the image block applied per frame
    assert blk.temporal_attn.proj.weight.abs().sum() == 0
    assert torch.equal(_dependency(lambda x: blk(x, T), T * S), same_frame)
    _randomise(blk)
    # spatial then temporal step: every token reaches every other one through (t, s') -> (t', s')
    assert _dependency(lambda x: blk(x, T), T * S).all()
    with torch.no_grad():  # the temporal step alone mixes only tokens at the same spatial position
        blk.attn.proj.weight.zero_()
        blk.attn.proj.bias.zero_()
    assert torch.equal(_dependency(lambda x: blk(x, T), T * S), same_pos)


def test_model2_spatial_encoder_per_frame_then_temporal_encoder():
    model = _tiny(M2).double()
    _randomise(model)
    n_frames = 2 * T

    def per_frame_dependency(fn):
        x = torch.randn(1, 3, n_frames, 16, 16, dtype=torch.double)
        J = torch.autograd.functional.jacobian(fn, x)  # (1, N_out, D, 1, 3, T, 16, 16)
        return J.abs().sum(dim=(0, 2, 3, 4, 6, 7)) != 0  # (N_out, frames)

    dep = per_frame_dependency(model.forward_spatial)  # h_i depends on the frames of tubelet i only
    assert torch.equal(dep, torch.arange(T)[:, None] == torch.arange(n_frames)[None, :] // 2)
    assert per_frame_dependency(model.forward_features).all()  # the temporal encoder mixes all frames


# --- initialisation from an image ViT (§3.4) ------------------------------------------------------------------
def init_from_image_vit(model, state_dict, inflate="central"):
    vitkit.init_video_from_image(model, state_dict, inflate)
    return model


def _vit():
    vit = vitkit.create_model("vit_base_patch16_224", img_size=16, patch_size=8, embed_dim=32, depth=2, num_heads=4,
                              num_classes=3).eval()
    with torch.no_grad():
        for name, p in vit.named_parameters():
            if "norm" in name or name.endswith("bias") or "token" in name or "pos_embed" in name:
                p.normal_(0, 0.3)  # non-trivial norms, biases, cls and position rows
    return vit


def _static_clip(n_frames):
    frame = torch.randn(2, 3, 1, 16, 16)
    return frame.expand(-1, -1, n_frames, -1, -1).contiguous(), frame[:, :, 0]


def test_model1_single_tubelet_equals_image_vit():
    """With n_t = 1 the video model is the image ViT on the tubelet's central frame (a test of the filter and
    position-table mapping, exact)."""
    vit = _vit()
    model = init_from_image_vit(_tiny(M1, num_frames=2), vit.state_dict())
    clip = torch.randn(2, 3, 2, 16, 16)
    with torch.no_grad():
        diff = (model.forward_features(clip) - vit.forward_features(clip[:, :, 1])).abs().max()
    assert diff <= 1e-5


def test_model1_static_clip_is_image_vit_with_repeated_keys():
    """A static clip repeats each image token n_t times (central-frame filter, tiled positions). Joint attention
    over n_t copies of each patch key equals image attention with the class key down-weighted by 1/n_t, i.e. an
    additive bias -log(n_t) on it; patch outputs are the image outputs repeated over time."""
    vit = _vit()
    model = init_from_image_vit(_tiny(M1), vit.state_dict())
    clip, frame = _static_clip(2 * T)
    bias = torch.zeros(1, 1, 1, 1 + S)
    bias[..., 0] = -math.log(T)
    with torch.no_grad():
        x = vit.patch_embed(frame)
        x = torch.cat((vit.cls_token.expand(2, -1, -1), x), 1) + vit.pos_embed
        for blk in vit.blocks:
            x = blk(x, bias)
        ref = vit.norm(x)
        ours = model.forward_features(clip)
    assert (ours[:, 0] - ref[:, 0]).abs().max() <= 1e-5
    assert (ours[:, 1:].reshape(2, T, S, -1) - ref[:, None, 1:]).abs().max() <= 1e-5  # (B, T·S, D) -> (B, T, S, D)
    with torch.no_grad():  # without the bias the image ViT differs: the relation above is the real one
        assert (vit.forward_features(frame)[:, 0] - ours[:, 0]).abs().max() > 1e-4


def test_central_frame_and_inflation_tubelets():
    vit = _vit()
    central = init_from_image_vit(_tiny(M1), vit.state_dict(), inflate="central")
    inflate = init_from_image_vit(_tiny(M1), vit.state_dict(), inflate="mean")
    clip = torch.randn(2, 3, 2 * T, 16, 16)
    with torch.no_grad():
        per_frame = torch.stack([vit.patch_embed(clip[:, :, f]) for f in range(2 * T)], 1)  # (B, 2T, S, D)
        c = central.patch_embed(clip).reshape(2, T, S, -1)  # (B, T·S, D) -> (B, T, S, D)
        i = inflate.patch_embed(clip).reshape(2, T, S, -1)
        assert (c - per_frame[:, 1::2]).abs().max() <= 1e-5  # frame ⌊t/2⌋ = 1 of each tubelet
        assert (i - (per_frame[:, 0::2] + per_frame[:, 1::2]) / 2).abs().max() <= 1e-5  # mean over the tubelet
        static, _ = _static_clip(2 * T)  # same response on a static clip, different on a moving one
        f = lambda m, x: m.forward_features(x)
        assert (f(central, static) - f(inflate, static)).abs().max() <= 1e-5
        assert (f(central, clip) - f(inflate, clip)).abs().max() > 1e-4


def test_model2_spatial_encoder_is_image_vit_per_frame():
    vit = _vit()
    model = init_from_image_vit(_tiny(M2), vit.state_dict())
    clip = torch.randn(2, 3, 2 * T, 16, 16)
    with torch.no_grad():
        h = model.forward_spatial(clip)  # (B, n_t, D)
        for i in range(T):
            assert (h[:, i] - vit.forward_features(clip[:, :, 2 * i + 1])[:, 0]).abs().max() <= 1e-5


def test_model3_starts_as_image_blocks_per_frame():
    """Zero temporal attention: Model 3 = the image ViT's blocks on each frame's patch tokens (no cls token)."""
    vit = _vit()
    model = init_from_image_vit(_tiny(M3), vit.state_dict())
    clip = torch.randn(2, 3, 2 * T, 16, 16)
    with torch.no_grad():
        ours = model.forward_features(clip).reshape(2, T, S, -1)  # (B, T·S, D) -> (B, T, S, D)
        for i in range(T):
            x = vit.patch_embed(clip[:, :, 2 * i + 1]) + vit.pos_embed[:, 1:]
            ref = vit.norm(vit.blocks(x))
            assert (ours[:, i] - ref).abs().max() <= 1e-5


def test_model4_init_copies_blocks_and_tiles_positions():
    vit = _vit()
    model = init_from_image_vit(_tiny(M4), vit.state_dict())
    sd, vsd = model.state_dict(), vit.state_dict()
    for k in vsd:
        if k.startswith("blocks."):
            assert torch.equal(sd[k], vsd[k]), k
    assert torch.equal(sd["pos_embed"].reshape(T, S, -1), vsd["pos_embed"][0, 1:].expand(T, -1, -1))


def test_init_from_timm_vit_state_dict():
    timm = pytest.importorskip("timm")
    ref = timm.create_model("vit_base_patch16_224", pretrained=False, img_size=16, patch_size=8, embed_dim=32,
                            depth=2, num_heads=4, num_classes=3)
    model = init_from_image_vit(_tiny(M1, num_frames=2, act_layer="gelu"), ref.state_dict()).eval()  # timm: exact GELU
    clip = torch.randn(1, 3, 2, 16, 16)
    with torch.no_grad():
        assert (model.forward_features(clip) - ref.eval().forward_features(clip[:, :, 1])).abs().max() <= 1e-5


def test_init_from_image_vit_resamples_positions_and_rejects_mismatches():
    vit = vitkit.create_model("vit_base_patch16_224", img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=4)
    model = init_from_image_vit(_tiny(M1), vit.state_dict())  # 4×4 image grid -> 2×2 video grid
    assert model.pos_embed.shape == (1, 1 + T * S, D)
    with pytest.raises(ConfigError, match="inflate"):
        init_from_image_vit(_tiny(M1), vit.state_dict(), inflate="random")
    deeper = vitkit.create_model("vit_base_patch16_224", img_size=16, patch_size=8, embed_dim=32, depth=3, num_heads=4)
    with pytest.raises(CheckpointError, match="same size"):
        init_from_image_vit(_tiny(M1), deeper.state_dict())
    with pytest.raises(CheckpointError, match="not a ViT state dict"):
        init_from_image_vit(_tiny(M1), {"foo.weight": torch.zeros(3)})
    with pytest.raises(ConfigError, match="initialises ViViT and TimeSformer models, got VisionTransformer"):
        vitkit.init_video_from_image(vit, vit.state_dict())


# --- any clip shape ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", [M1, M2, M3, M4])
@pytest.mark.parametrize("shape", [(4, 32, 32), (6, 32, 32), (2, 40, 24), (8, 16, 48)])
def test_any_frame_count_and_resolution(name, shape):
    model = vitkit.create_model(name, **TINY).eval()
    with torch.no_grad():
        y = model(torch.randn(2, 3, *shape))
    assert y.shape == (2, 5) and torch.isfinite(y).all()


def test_time_resampling_keeps_a_time_constant_table():
    per_frame = torch.randn(1, 1, 6, 5)  # (1, 1, S, D) with S = 2×3
    pos = torch.cat((torch.randn(1, 1, 5), per_frame.expand(1, 4, 6, 5).reshape(1, 24, 5)), 1)
    out = resample_tube_pos_embed(pos, (7, 2, 3), (4, 2, 3), 1)
    assert out.shape == (1, 1 + 42, 5)
    assert torch.equal(out[:, :1], pos[:, :1])
    assert (out[0, 1:].reshape(7, 6, 5) - per_frame[0]).abs().max() <= 1e-6


@pytest.mark.parametrize("name", [M1, M2, M3])
def test_checkpoint_at_another_frame_count_loads(name, tmp_path):
    src = vitkit.create_model(name, **dict(TINY, num_frames=8))
    path = tmp_path / "w.pth"
    torch.save(src.state_dict(), path)
    dst = vitkit.create_model(name, checkpoint=str(path), **TINY)
    assert dst.pos_embed.shape[1] == src.pos_embed.shape[1] - (0 if name == M2 else 2 * 16)


# --- bad input -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", [M1, M2, M3, M4])
def test_frames_not_a_multiple_of_the_tubelet(name):
    model = vitkit.create_model(name, **TINY)
    with pytest.raises(InputError, match="5 frames.*multiple of the tubelet depth 2"):
        model(torch.randn(1, 3, 5, 32, 32))
    with pytest.raises(InputError, match="1 frames"):
        model(torch.randn(1, 3, 1, 32, 32))


def test_bad_config():
    with pytest.raises(ConfigError, match="even"):
        vitkit.create_model(M4, **dict(TINY, num_heads=3, embed_dim=48))
    with pytest.raises(ConfigError, match="variant"):
        vitkit.create_model(M1, variant="joint")
    with pytest.raises(ConfigError, match="unknown option"):
        vitkit.create_model(M1, frames=8)
    with pytest.raises(ConfigError, match="act_layer must be one of gelu, gelu_tanh, quick_gelu"):
        vitkit.create_model(M1, **dict(TINY, act_layer="relu"))


def test_uniform_frame_sampling_is_tubelet_depth_one():
    model = vitkit.create_model(M1, **dict(TINY, tubelet_size=1, num_frames=3)).eval()
    assert model.patch_embed.proj.kernel_size == (1, 8, 8)
    assert model.pos_embed.shape[1] == 1 + 3 * 16
    with torch.no_grad():
        assert model(torch.randn(1, 3, 3, 32, 32)).shape == (1, 5)


@pytest.mark.parametrize("name", [M1, M2, M3, M4])
def test_eval_deterministic_with_dropout_and_drop_path(name):
    model = vitkit.create_model(name, **dict(TINY, drop_rate=0.3, attn_drop_rate=0.3, drop_path_rate=0.3)).eval()
    x = torch.randn(2, 3, 4, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x), model(x))
    model.train()
    assert not torch.equal(model(x), model(x))

