"""record_attention and the maps it gives: recording leaves outputs alone, ViT rollout is the formula by hand,
every scheme's composed map has exactly the zeros of the token dependencies (autograd Jacobians, as in the
family tests), and reduced attention keeps the pooled grid before mapping back."""

import math

import pytest
import torch
from test_timesformer import GRIDS
from test_timesformer import _block as timesformer_block
from test_timesformer import _dependency as timesformer_dependency
from test_vivit import _dependency as vivit_dependency
from test_vivit import _randomise
from tiny import tiny_overrides
from torch import nn

import vitkit
from vitkit.layers.attention import RECORDERS, Attention
from vitkit.tools.attention_maps import TokenSpace, footprint, output_row, record_attention, regrid, rollout


def _record(model: nn.Module, *args):
    with torch.no_grad(), record_attention(model) as rec:
        out = model(*args)
    return rec, out


def _composed(layers) -> torch.Tensor:
    """Boolean (N_out, N_in): can output token i depend on input token j through the layers (attention or skip)?"""
    dep = None
    for layer in layers:
        step = (layer.probs > 0).any(0).any(0) | torch.eye(layer.probs.shape[-1], dtype=torch.bool)
        dep = step if dep is None else (step.float() @ dep.float()) > 0
    return dep


def test_recording_changes_nothing_and_ends_with_the_context():
    model = vitkit.create_model("vit_tiny_patch16_224", **tiny_overrides("vit_tiny_patch16_224")).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        plain = model(x)
    rec, recorded = _record(model, x)
    assert torch.equal(plain, recorded) and not RECORDERS
    assert not any(m._forward_pre_hooks or m._forward_hooks for m in model.modules())
    assert len(rec.layers) == 2 and rec.layers[0].probs.shape == (2, 3, 17, 17)


def test_vit_rollout_is_the_formula_by_hand():
    model = vitkit.create_model("vit_tiny_patch16_224", **tiny_overrides("vit_tiny_patch16_224")).eval()
    x = torch.randn(2, 3, 32, 32)
    rec, _ = _record(model, x)
    R, space, first = rollout(rec.layers)
    # by hand: each block's attention from its normalised input, A = 0.5·mean_h + 0.5·I, product over blocks
    with torch.no_grad():
        tokens = torch.cat([model.cls_token.expand(2, -1, -1), model.patch_embed(x)], 1) + model.pos_embed
        expected = torch.eye(17).expand(2, 17, 17)
        for blk in model.blocks:
            h = blk.norm1(tokens)
            q, k, _ = blk.attn.qkv(h).reshape(2, 17, 3, 3, 16).permute(2, 0, 3, 1, 4)
            a = (q @ k.transpose(-1, -2) / 4.0).softmax(-1).mean(1)
            a = 0.5 * a + 0.5 * torch.eye(17)
            expected = (a / a.sum(-1, keepdim=True)) @ expected
            tokens = blk(tokens)
    torch.testing.assert_close(R, expected)
    assert space == first == TokenSpace(1, (4, 4))
    torch.testing.assert_close(output_row(R, space), expected[:, 0])


def test_swin_composed_rows_sum_to_one_with_zeros_exactly_where_the_shift_mask_forbids():
    name = "swin_tiny_patch4_window7_224"
    model = vitkit.create_model(name, **{**tiny_overrides(name), "img_size": 16}).eval()  # 8×8 grid, M = 4
    for blk in model.layers[0].blocks:
        with torch.no_grad():
            blk.attn.relative_position_bias_table.normal_()
    rec, _ = _record(model, torch.randn(2, 3, 16, 16))
    layers = [layer for layer in rec.layers if layer.name.startswith("layers.0.")]
    assert [layer.name for layer in layers] == ["layers.0.blocks.0.attn", "layers.0.blocks.1.attn"]
    for blk, layer in zip(model.layers[0].blocks, layers):
        assert layer.probs.shape == (2, 1, 64, 64)
        torch.testing.assert_close(layer.probs.sum(-1), torch.ones(2, 1, 64))
        x = torch.randn(1, 8, 8, 16)
        J = torch.autograd.functional.jacobian(blk.window_attention, x)  # (1, 8, 8, D, 1, 8, 8, D)
        dep = J.abs().sum(dim=(0, 3, 4, 7)).reshape(64, 64) != 0
        assert torch.equal(layer.probs[0, 0] != 0, dep) and torch.equal(layer.probs[1, 0] != 0, dep)
    shifted = layers[1].probs[0, 0] != 0
    assert shifted.sum(1).lt(16).any()  # the shift mask really cut some windows


@pytest.mark.parametrize("grid", GRIDS[:2], ids=str)
@pytest.mark.parametrize("scheme", ["joint_space_time", "divided_space_time", "local_global", "axial"])
def test_timesformer_composed_map_zeros_are_the_jacobian_dependencies(scheme, grid):
    blk = timesformer_block(scheme)
    x = torch.randn(1, 1 + math.prod(grid), 8)
    rec, _ = _record(blk, x, grid)
    assert len(rec.layers) == sum(isinstance(m, Attention) for m in blk.modules())  # one layer per step
    assert torch.equal(_composed(rec.layers), timesformer_dependency(blk, grid))


def test_timesformer_space_only_map_keeps_each_frame_apart():
    grid = (3, 2, 2)
    blk = timesformer_block("space_only")
    rec, _ = _record(blk, torch.randn(3, 5, 8), grid)
    (layer,) = rec.layers
    assert layer.q_space == TokenSpace(3, grid)  # one class token per frame, first
    dep = timesformer_dependency(blk, grid, per_frame=True)  # cls at 0 (unfilled), patches (t, s) from 1
    assert torch.equal(_composed(rec.layers)[3:, 3:], dep[1:, 1:])
    frame_of = torch.cat((torch.arange(3), torch.arange(12) // 4))
    assert torch.equal(_composed(rec.layers), frame_of[:, None] == frame_of[None, :])


T, S = 3, 4  # tests/test_vivit.py's tiny clip: 3 tubelet frames of 2×2 tokens


def _vivit(variant):
    name = f"vivit_base_16x2_{variant}"
    model = vitkit.create_model(name, **{**tiny_overrides(name), "num_frames": 2 * T, "img_size": 16,
                                         "embed_dim": 32}).eval().double()
    _randomise(model)
    return model


@pytest.mark.parametrize("variant", ["factorised_self_attention", "factorised_dot_product"])
def test_vivit_models_3_and_4_composed_map_zeros_are_the_jacobian_dependencies(variant):
    model = _vivit(variant)
    rec, _ = _record(model, torch.randn(1, 3, 2 * T, 16, 16, dtype=torch.double))
    block0 = [layer for layer in rec.layers if layer.name.startswith("blocks.0.")]
    assert len(block0) == (2 if variant == "factorised_self_attention" else 1)
    blk = model.blocks[0]
    assert torch.equal(_composed(block0), vivit_dependency(lambda x: blk(x, T), T * S))
    if variant == "factorised_dot_product":  # time heads first, space heads second
        t, s = torch.arange(T * S) // S, torch.arange(T * S) % S
        probs = block0[0].probs[0]
        assert torch.equal((probs[:2] > 0).all(0), s[:, None] == s[None, :])
        assert torch.equal((probs[2:] > 0).all(0), t[:, None] == t[None, :])


def test_vivit_model_2_composed_map_zeros_are_the_jacobian_dependencies():
    model = _vivit("factorised_encoder")
    x = torch.randn(1, 3, 2 * T, 16, 16, dtype=torch.double)
    rec, _ = _record(model, x)

    def frames_of(fn):  # (N_out, input frames) Jacobian pattern, as tests/test_vivit.py computes it
        J = torch.autograd.functional.jacobian(fn, x)
        return J.abs().sum(dim=(0, 2, 3, 4, 6, 7)) != 0

    spatial = [layer for layer in rec.layers if layer.name.startswith("blocks.")]
    assert spatial[0].q_space == TokenSpace(T, (T, 2, 2))
    tubelet = torch.cat((torch.full((T,), -1), torch.arange(T * S) // S))  # input tokens -> tubelet (-1: cls)
    frame_cols = tubelet[:, None] == (torch.arange(2 * T) // 2)[None]  # (tokens, frames)

    def via_frames(dep):
        return (dep.float() @ frame_cols.float()) > 0

    assert torch.equal(via_frames(_composed(spatial))[:T], frames_of(model.forward_spatial)[:, :])
    R, space, _ = rollout(rec.layers)
    assert space == TokenSpace(1, (T,))
    assert torch.equal(via_frames(R[0] > 0), frames_of(model.forward_features))


def test_footprint_of_a_strided_kernel():
    conv = nn.Conv2d(1, 1, 3, stride=2, padding=1)
    m, grid = footprint(conv, (4, 1))
    assert grid == (2, 1)  # along a length-1 axis the 3-tap kernel keeps its centre only
    torch.testing.assert_close(m, torch.tensor([[1 / 2, 1 / 2, 0, 0], [0, 1 / 3, 1 / 3, 1 / 3]]))
    merge = regrid(TokenSpace(0, (3, 2)), TokenSpace(1, (2, 1)))  # odd side: the last cell holds one row
    torch.testing.assert_close(merge, torch.tensor([[0.0] * 6,  # a new class token comes from no old token
                                                   [0.25, 0.25, 0.25, 0.25, 0, 0],  # rows 0-1 of the old grid
                                                   [0, 0, 0, 0, 0.5, 0.5]]))


@pytest.mark.parametrize("name,pooled_k", [("mvit_base_16x4", (2, 2, 2)), ("cvt_13_224", (4, 4))])
def test_reduced_attention_keeps_the_pooled_grid_before_mapping_back(name, pooled_k):
    model = vitkit.create_model(name, **tiny_overrides(name)).eval()
    rec, _ = _record(model, torch.randn(2, *model.input_shape()))
    first = rec.layers[0]
    P, grid = first.k_space
    assert first.pooled_k_space == TokenSpace(P, pooled_k)
    assert first.pooled.shape == (2, first.probs.shape[1], first.q_space.size, P + math.prod(pooled_k))
    assert first.probs.shape[-1] == P + math.prod(grid)
    torch.testing.assert_close(first.probs.sum(-1), torch.ones(first.probs.shape[:-1]))
    # a pooled key's weight is shared by the input tokens under its kernel
    fk, k_grid = footprint(model.blocks[0].attn.k_reducer if name.startswith("mvit")
                           else model.stages[0].blocks[0].attn.k_reducer, grid)
    assert k_grid == pooled_k
    torch.testing.assert_close(first.probs[..., P:], first.pooled[..., P:] @ fk)
    R, space, _ = rollout(rec.layers)
    assert R.shape[1:] == (space.size, first.k_space.size)
