"""TimeSformer: which tokens each scheme lets depend on which (autograd Jacobian sparsity after one block, checked
against the scheme's definition written out on (t, h, w) coordinates), parameter counts and GMACs against
SPEC.md, any clip shape, initialisation from an image ViT, and bad input."""

import itertools
import math

import pytest
import torch
from torch import nn

import vitkit
from vitkit.errors import ConfigError
from vitkit.layers import resample_abs_pos_embed, resample_grid
from vitkit.models.timesformer import FactorisedBlock
from vitkit.tools.profile import count_gmacs, count_params

D, HEADS = 8, 2
TINY = {"img_size": 32, "patch_size": 8, "embed_dim": 48, "depth": 2, "num_heads": 3, "num_frames": 4, "num_classes": 7}


def _block(scheme: str) -> nn.Module:
    m = vitkit.create_model(f"timesformer_base_8x224_{scheme}", img_size=16, patch_size=8, embed_dim=D, depth=1,
                            num_heads=HEADS, num_frames=2, drop_path_rate=0.0)
    blk = m.blocks[0].eval()
    steps = blk.step_fcs() if isinstance(blk, FactorisedBlock) else {}
    for fc in steps.values():  # zero-initialised fc layers would hide the extra steps' dependencies
        nn.init.normal_(fc.weight)
    return blk


def _only(blk: nn.Module, step: str) -> nn.Module:
    """Silence every attention step but `step` ("main" = norm1/attn) by zeroing its output layer."""
    outs = blk.step_fcs() | {"main": blk.attn.proj}
    for name, layer in outs.items():
        if name != step:
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)
    return blk


def _dependency(blk: nn.Module, grid, per_frame: bool = False) -> torch.Tensor:
    """Boolean (1 + N, 1 + N) matrix: does output token i depend on input token j? Index 0 is cls, then the
    patches in (t, h, w) order. Space-only blocks take one sequence per frame, each with its own cls."""
    T, H, W = grid
    S = H * W
    x = torch.randn(T, 1 + S, D) if per_frame else torch.randn(1, 1 + T * S, D)
    J = torch.autograd.functional.jacobian(lambda t: blk(t, grid), x, vectorize=True)
    dep = J.abs().amax(dim=(2, 5)) > 0  # (b, n, D, b', n', D) -> (b, n, b', n')
    if not per_frame:
        return dep[0, :, 0]
    patches = dep[:, 1:, :, 1:].reshape(T * S, T * S)  # (t, s, t', s') -> (t s, t' s')
    out = torch.zeros(1 + T * S, 1 + T * S, dtype=torch.bool)
    out[1:, 1:] = patches
    return out


def _expected(grid, rule) -> torch.Tensor:
    """Patch-to-patch dependencies from a rule on coordinates p, r = (t, h, w); cls row/column left False."""
    coords = list(itertools.product(*map(range, grid)))
    out = torch.zeros(1 + len(coords), 1 + len(coords), dtype=torch.bool)
    for i, p in enumerate(coords):
        for j, r in enumerate(coords):
            out[1 + i, 1 + j] = rule(p, r)
    return out


def _local(grid):
    _, H, W = grid
    bh, bw = math.ceil(H / 2), math.ceil(W / 2)  # neighbourhoods: T × ⌈H/2⌉ × ⌈W/2⌉
    return lambda p, r: p[1] // bh == r[1] // bh and p[2] // bw == r[2] // bw


def _stride2(p, r):
    return all(a % 2 == b % 2 for a, b in zip(p, r))


def _local_then_global(grid):
    coords = list(itertools.product(*map(range, grid)))
    local = _local(grid)
    return lambda p, r: any(_stride2(p, q) and local(q, r) for q in coords)


def _same(*axes):
    return lambda p, r: all(p[a] == r[a] for a in axes)


ALL = lambda p, r: True
GRIDS = [(3, 3, 4), (2, 2, 2), (4, 1, 3)]


# (scheme, silenced-to step or None for the whole block, rule)
CASES = [
    ("joint_space_time", None, lambda g: ALL),
    ("divided_space_time", None, lambda g: ALL),
    ("divided_space_time", "temporal", lambda g: _same(1, 2)),
    ("divided_space_time", "main", lambda g: _same(0)),
    ("local_global", None, _local_then_global),
    ("local_global", "local", _local),
    ("local_global", "main", lambda g: _stride2),
    ("axial", None, lambda g: ALL),
    ("axial", "temporal", lambda g: _same(1, 2)),
    ("axial", "width", lambda g: _same(0, 1)),
    ("axial", "main", lambda g: _same(0, 2)),
]


@pytest.mark.parametrize("grid", GRIDS, ids=str)
@pytest.mark.parametrize("scheme,step,rule", CASES, ids=[f"{c[0]}-{c[1] or 'block'}" for c in CASES])
def test_patch_dependencies_after_one_block(scheme, step, rule, grid):
    blk = _block(scheme)
    if step is not None:
        _only(blk, step)
    dep = _dependency(blk, grid)
    want = _expected(grid, rule(grid))
    assert torch.equal(dep[1:, 1:], want[1:, 1:]), f"{scheme} {step}: dependency pattern differs from definition"


@pytest.mark.parametrize("grid", GRIDS[:2], ids=str)
def test_space_only_depends_on_own_frame(grid):
    dep = _dependency(_block("space_only"), grid, per_frame=True)
    assert torch.equal(dep[1:, 1:], _expected(grid, _same(0))[1:, 1:])


@pytest.mark.parametrize("scheme,extra", [("divided_space_time", "temporal"), ("local_global", "local"),
                                          ("axial", "temporal"), ("axial", "width")])
def test_cls_kept_out_of_extra_steps_and_joins_the_last(scheme, extra):
    grid = (3, 3, 4)
    dep = _dependency(_only(_block(scheme), extra), grid)
    assert not dep[0, 1:].any() and not dep[1:, 0].any()  # extra step: cls and patches never meet
    dep = _dependency(_only(_block(scheme), "main"), grid)
    assert dep[0, 1:].all() and dep[1:, 0].all()  # last step: cls reads every group and every patch reads cls


def test_extra_fc_zero_at_init():
    m = vitkit.create_model("timesformer_base_8x224_axial", **TINY)
    for blk in m.blocks:
        assert list(blk.step_fcs()) == ["temporal", "width"]
        for fc in (blk.temporal_fc, blk.width_fc):
            assert not fc.weight.any() and not fc.bias.any()
        assert blk.temporal_attn.qkv.weight.std() > 0


# --- sizes ------------------------------------------------------------------------------------------------------
PARAMS = {  # SPEC.md §9 (400 classes); L+G = divided (one extra attention module per block), axial = two extra
    "timesformer_base_8x224_divided_space_time": 121_566_352,
    "timesformer_base_8x224_joint_space_time": 86_112_400,
    "timesformer_base_8x224_space_only": 86_106_256,
    "timesformer_base_8x224_local_global": 121_566_352,
    "timesformer_base_8x224_axial": 121_566_352 + 12 * 2_954_496,
    "timesformer_hr_16x448_divided_space_time": 121_566_352 + 8 * 768 + (28 * 28 - 14 * 14) * 768,
    "timesformer_large_96x224_divided_space_time": 121_566_352 + 88 * 768,
}


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_param_count(name):
    with torch.device("meta"):
        m = vitkit.create_model(name)
    assert count_params(m) == PARAMS[name]


@pytest.mark.parametrize("name,gmacs", [
    ("timesformer_base_8x224_divided_space_time", 195.8),     # SPEC §9 (×3 views = the paper's 0.59 TFLOPs)
    ("timesformer_base_8x224_joint_space_time", 179.6),       # SPEC §9
    ("timesformer_hr_16x448_divided_space_time", 5110 / 3),   # Table 5: 5.11 TFLOPs over 3 views
    ("timesformer_large_96x224_divided_space_time", 7140 / 3),  # Table 5: 7.14 TFLOPs over 3 views
])
def test_gmacs_per_view(name, gmacs):
    with torch.device("meta"):
        m = vitkit.create_model(name).eval()
    assert abs(count_gmacs(m, m.input_shape()) / gmacs - 1) < 0.02


# --- any clip shape -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("scheme", ["space_only", "joint_space_time", "divided_space_time", "local_global", "axial"])
def test_any_frame_count_and_resolution(scheme):
    m = vitkit.create_model(f"timesformer_base_8x224_{scheme}", **TINY).eval()
    for shape in [(2, 3, 4, 32, 32), (1, 3, 1, 8, 8), (1, 3, 7, 24, 40)]:
        with torch.no_grad():
            y = m(torch.randn(*shape))
        assert y.shape == (shape[0], 7) and torch.isfinite(y).all()


def test_checkpoint_at_other_frame_count_and_size_loads(tmp_path):
    src = vitkit.create_model("timesformer_base_8x224_divided_space_time", **TINY)
    nn.init.normal_(src.time_embed)  # zero at init (official); give it values to resample
    vitkit.save_checkpoint(src, tmp_path / "m.safetensors")
    dst = vitkit.create_model("timesformer_base_8x224_divided_space_time", checkpoint=str(tmp_path / "m.safetensors"),
                              **(TINY | {"num_frames": 6, "img_size": 48}))
    assert dst.time_embed.shape[1] == 6 and dst.pos_embed.shape[1] == 1 + 36
    assert torch.equal(dst.time_embed, resample_grid(src.time_embed, (6,)))
    assert torch.equal(dst.pos_embed, resample_abs_pos_embed(src.pos_embed, (6, 6), (4, 4), 1))


def test_static_clip_equals_image_vit_after_init_from_vit():
    """Paper App. A init: with temporal_fc zero and the time embedding zero, a clip of identical frames gives
    the image ViT's features exactly (divided and space-only)."""
    vit = vitkit.create_model("vit_base_patch16_224", img_size=32, patch_size=8, embed_dim=48, depth=2, num_heads=3,
                              num_classes=0).eval()
    frame = torch.randn(2, 3, 32, 32)
    clip = frame[:, :, None].expand(-1, -1, 3, -1, -1)  # (B, C, H, W) -> (B, C, T, H, W)
    for scheme in ("divided_space_time", "space_only"):
        m = vitkit.create_model(f"timesformer_base_8x224_{scheme}", **TINY).eval()
        vitkit.init_video_from_image(m, vit.state_dict())
        if scheme == "divided_space_time":
            blk = m.blocks[1]
            assert torch.equal(blk.temporal_attn.qkv.weight, blk.attn.qkv.weight)
            assert torch.equal(blk.temporal_norm1.weight, blk.norm1.weight)
            assert not blk.temporal_fc.weight.any() and not m.time_embed.any()
        with torch.no_grad():
            got = m.forward_head(m.forward_features(clip), pre_logits=True)
            want = vit(frame)
        assert (got - want).abs().max().item() < 1e-5


def test_init_from_vit_resamples_position_embedding():
    vit = vitkit.create_model("vit_base_patch16_224", img_size=16, patch_size=8, embed_dim=48, depth=2, num_heads=3)
    m = vitkit.create_model("timesformer_base_8x224_local_global", **TINY)
    vitkit.init_video_from_image(m, vit.state_dict())
    assert torch.equal(m.pos_embed[:, 0], vit.pos_embed[:, 0])
    assert torch.equal(m.blocks[0].local_attn.proj.weight, vit.blocks[0].attn.proj.weight)


# --- bad input ------------------------------------------------------------------------------------------------
def test_unknown_scheme_is_rejected():
    with pytest.raises(ConfigError, match="attention_type"):
        vitkit.create_model("timesformer_base_8x224_divided_space_time", attention_type="divided")


def test_stochastic_depth_is_per_block_and_eval_is_deterministic():
    """Each block gets its own rate on the linear schedule (HF once passed the max to every layer), and with every
    drop rate > 0 two eval passes agree."""
    for scheme in ("space_only", "divided_space_time", "local_global", "axial"):
        m = vitkit.create_model(f"timesformer_base_8x224_{scheme}", **(TINY | {"depth": 3, "drop_rate": 0.2,
                                "attn_drop_rate": 0.2, "drop_path_rate": 0.3}))
        rates = [getattr(b, "drop_path", getattr(b, "drop_path1", None)) for b in m.blocks]
        assert [getattr(r, "p", 0.0) for r in rates] == pytest.approx([0.0, 0.15, 0.3])
        x = torch.randn(2, 3, 4, 32, 32)
        m.eval()
        with torch.no_grad():
            assert torch.equal(m(x), m(x))
        m.train()
        assert not torch.equal(m(x), m(x))
