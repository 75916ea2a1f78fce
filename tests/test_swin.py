"""Swin: window regrouping and shift-mask properties, window shrinking, any input size, window-size changes of
checkpoints, parameter counts and GMACs against SPEC.md, and bad inputs."""

import pytest
import torch
import torch.nn.functional as F
from tiny import meta_model

import vitkit
from vitkit.errors import ConfigError, InputError
from vitkit.layers.groupings import shifted_window_mask, unwindows, window_index, windows
from vitkit.models.swin import SwinBlock, relative_position_index, resize_relative_position_table
from vitkit.tools.profile import count_gmacs, count_params

TINY = {"img_size": 32, "patch_size": 2, "embed_dim": 16, "depths": (2, 2, 2), "num_heads": (1, 2, 4),
        "window_size": 4, "num_classes": 5}

SPEC_PARAMS = {  # SPEC.md §3.2 / §9 (1000 classes)
    "swin_tiny_patch4_window7_224": 28_288_354,
    "swin_small_patch4_window7_224": 49_606_258,
    "swin_base_patch4_window7_224": 87_768_224,
    "swin_large_patch4_window7_224": 196_532_476,
    "swin_base_patch4_window12_384": 87_903_584,
    "swin_large_patch4_window12_384": 196_735_516,
}


@pytest.mark.parametrize("name", sorted(SPEC_PARAMS))
def test_param_counts_equal_spec(name):
    assert count_params(meta_model(name)) == SPEC_PARAMS[name]


def _meta_gmacs(name: str, side: int) -> float:
    return count_gmacs(meta_model(name), (3, side, side))


def test_gmacs_swin_tiny_and_growth_with_area():
    swin = _meta_gmacs("swin_tiny_patch4_window7_224", 224)
    assert abs(swin - 4.5) / 4.5 < 0.01  # paper 4.5G (MACs); torchvision 4.491
    # windows make attention linear in the area: 2× the side is 4× the cost; global attention grows faster
    assert 3.95 < _meta_gmacs("swin_tiny_patch4_window7_224", 448) / swin < 4.05
    vit = _meta_gmacs("vit_base_patch16_224", 224)
    assert _meta_gmacs("vit_base_patch16_224", 448) / vit > 4.3


# --- regrouping and mask -------------------------------------------------------------------------------------
def test_window_partition_then_reverse_is_identity():
    x = torch.randn(2, 12, 8, 5)
    w = windows(x, (4, 2))
    assert w.shape == (2 * 3 * 4, 8, 5)
    assert torch.equal(w[1].reshape(4, 2, 5), x[0, :4, 2:4])  # second window: rows 0-3, columns 2-3
    assert torch.equal(unwindows(w, (4, 2), (12, 8)), x)


def _expected_connections(grid, padded, window, shift):
    """Independent rule, in image coordinates: two real tokens may attend to each other iff after rolling the
    padded grid by -shift they land in the same window without one of them having wrapped around an edge."""
    (H, W), (Hp, Wp) = grid, padded
    ys, xs = torch.meshgrid(torch.arange(H), torch.arange(W), indexing="ij")
    ry, rx = (ys - shift[0]) % Hp, (xs - shift[1]) % Wp  # rolled positions
    wrapped_y, wrapped_x = ys < shift[0], xs < shift[1]  # brought over from the opposite edge
    ry, rx, wy, wx = (t.flatten() for t in (ry, rx, wrapped_y, wrapped_x))
    same = lambda t: t[:, None] == t[None, :]
    return same(ry // window[0]) & same(rx // window[1]) & same(wy) & same(wx)


def _influence(block: SwinBlock, H: int, W: int, D: int = 4) -> torch.Tensor:
    """(N, N) bool: output token q of the block's window attention changes when input token k is perturbed."""
    N = H * W
    x = torch.randn(1, H, W, D)
    base = block.window_attention(x)
    poked = x.repeat(N, 1, 1, 1)
    poked.view(N, N, D)[torch.arange(N), torch.arange(N)] += 10.0  # sample k has token k perturbed
    out = block.window_attention(poked)
    return (out - base).abs().amax(-1).reshape(N, N).T > 1e-6  # [query, key]


@pytest.mark.parametrize("grid", [(8, 12), (10, 11)])  # (10, 11): padded to (12, 12) before the shift
def test_shifted_windows_never_mix_pre_shift_regions(grid):
    block = SwinBlock(4, 1, window_size=4, shifted=True).eval()
    H, W = grid
    window, shift = block.window_and_shift(H, W)
    assert (window, shift) == ((4, 4), (2, 2))
    padded = (-(-H // 4) * 4, -(-W // 4) * 4)
    with torch.no_grad():
        assert torch.equal(_influence(block, H, W), _expected_connections(grid, padded, window, shift))


def test_unshifted_windows_are_fully_connected():
    block = SwinBlock(4, 1, window_size=4, shifted=False).eval()
    with torch.no_grad():
        got = _influence(block, 8, 12)
    assert torch.equal(got, _expected_connections((8, 12), (8, 12), (4, 4), (0, 0)))
    assert got.sum(1).eq(16).all()  # every query sees its whole 4×4 window
    assert not shifted_window_mask((8, 12), (4, 4), (0, 0)).any()


def test_mask_values_and_cache():
    mask = shifted_window_mask((8, 8), (4, 4), (2, 2))
    assert mask.shape == (4, 1, 16, 16) and set(mask.unique().tolist()) == {-100.0, 0.0}
    assert not mask[0].any() and mask[3].ne(0).any()  # only windows at the wrapped edges are masked
    block = SwinBlock(4, 1, window_size=4, shifted=True).eval()
    with torch.no_grad():
        block(torch.randn(2, 8, 8, 4))
        first = block.plan(8, 8, torch.device("cpu"))
        block(torch.randn(3, 8, 8, 4))
    assert block.plan(8, 8, torch.device("cpu")) is first and len(block._plans) == 1
    assert torch.equal(first.mask, mask)


@pytest.mark.parametrize("grid,shift", [((8, 12), (2, 2)), ((10, 11), (2, 2)), ((10, 11), (0, 0))])
def test_window_index_is_pad_roll_partition(grid, shift):
    """The cached gather equals the step written out: zero-pad, torch.roll by -shift, partition; and back."""
    H, W = grid
    x = torch.randn(2, H, W, 3)
    fold, unfold = window_index(grid, (4, 4), shift)
    xp = F.pad(x, (0, 0, 0, -W % 4, 0, -H % 4))
    want = windows(torch.roll(xp, (-shift[0], -shift[1]), dims=(1, 2)), (4, 4))
    flat = F.pad(x.reshape(2, H * W, 3), (0, 0, 0, 1))
    assert torch.equal(flat.index_select(1, fold).view(-1, 16, 3), want)
    back = want.view(2, -1, 3).index_select(1, unfold).view(2, H, W, 3)
    assert torch.equal(back, x)


def test_plan_made_in_inference_mode_serves_training():
    model = vitkit.create_model("swin_tiny_patch4_window7_224", **TINY)
    x = torch.randn(2, 3, 32, 32)
    with torch.inference_mode():
        model(x)
    model(x).sum().backward()  # the cached indices and masks are normal tensors
    assert model.layers[0].blocks[1].attn.relative_position_bias_table.grad is not None


def test_window_shrinks_to_small_maps():
    block = SwinBlock(4, 1, window_size=7, shifted=True)
    assert block.window_and_shift(7, 7) == ((7, 7), (0, 0))  # stage 4 at 224/M=7: one window, no shift
    assert block.window_and_shift(5, 20) == ((5, 7), (0, 3))
    assert block.window_and_shift(56, 56) == ((7, 7), (3, 3))
    # a shrunk window uses the table entries of its own offsets
    bias = block.attn.position_bias((5, 7))
    index = relative_position_index(7).view(7, 7, 7, 7)[:5, :7, :5, :7].reshape(35, 35)
    assert torch.equal(bias, block.attn.relative_position_bias_table[index].permute(2, 0, 1))


def test_relative_position_index_matches_offsets():
    M = 3
    idx = relative_position_index(M)
    # query (0, 0), key (2, 1): offset (-2, -1) -> row (-2 + 2) · 5 + (-1 + 2)
    assert idx[0, 2 * M + 1] == 1 and idx.max() == (2 * M - 1) ** 2 - 1
    assert idx[4, 4] == (M - 1) * (2 * M - 1) + (M - 1)  # offset (0, 0)


# --- any input size ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [(32, 32), (40, 24), (34, 50), (16, 16)])
def test_any_size_runs(size):
    model = vitkit.create_model("swin_tiny_patch4_window7_224", **TINY).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, *size))
    assert out.shape == (2, 5) and torch.isfinite(out).all()


def test_padding_happens_before_the_shift():
    """On a map the window does not divide, rolling before padding would give another result: the reference
    semantics (pad, then roll, mask on the padded grid) is what the block computes."""
    block = SwinBlock(4, 1, window_size=4, shifted=True).eval()
    x = torch.randn(1, 10, 11, 4)
    with torch.no_grad():
        got = block.window_attention(x)
        xp = F.pad(x, (0, 0, 0, 1, 0, 2))  # -> (1, 12, 12, 4)
        ref = block.window_attention(xp)[:, :10, :11]  # the same on an already padded map
    assert torch.allclose(got, ref, atol=1e-6)


# --- checkpoints at another window size ----------------------------------------------------------------------
def test_resize_table_interpolates_over_the_offset_grid():
    """Table rows are offsets (Δy, Δx) in row-major order over a (2M-1)×(2M-1) grid: a bias that depends only on
    Δy (increasing) must still depend only on Δy, increasingly, after resizing from M = 7 to M = 12."""
    dy = torch.linspace(-1, 1, 13)
    table = dy[:, None, None].expand(13, 13, 2).reshape(169, 2)  # value = Δy for both heads
    got = resize_relative_position_table(table, 12).view(23, 23, 2)
    assert got.shape == (23, 23, 2)
    assert torch.allclose(got, got[:, :1], atol=1e-6)  # constant along Δx
    assert (got[1:, 0] > got[:-1, 0]).all()  # still increasing along Δy
    assert torch.allclose(resize_relative_position_table(torch.full((169, 3), 0.25), 4), torch.full((49, 3), 0.25))


def test_checkpoint_with_other_window_loads(tmp_path):
    src = vitkit.create_model("swin_tiny_patch4_window7_224", **{**TINY, "window_size": 4})
    sd = dict(src.state_dict())
    sd["layers.0.blocks.0.attn.relative_position_index"] = relative_position_index(4)  # stored by some sources
    torch.save(sd, tmp_path / "w4.pth")
    model = vitkit.create_model("swin_tiny_patch4_window7_224", checkpoint=str(tmp_path / "w4.pth"),
                                **{**TINY, "window_size": 6})
    attn = model.layers[0].blocks[0].attn
    assert attn.relative_position_bias_table.shape == (11 * 11, 1)
    assert torch.equal(attn.relative_position_index, relative_position_index(6))  # rebuilt, not loaded
    old = src.layers[0].blocks[0].attn.relative_position_bias_table
    assert torch.equal(attn.relative_position_bias_table.detach(), resize_relative_position_table(old.detach(), 6))
    with torch.no_grad():
        assert model(torch.randn(1, 3, 32, 32)).shape == (1, 5)


# --- API and bad inputs --------------------------------------------------------------------------------------
def test_head_and_no_weight_decay():
    model = vitkit.create_model("swin_tiny_patch4_window7_224", **TINY)
    feats = model.forward_features(torch.randn(2, 3, 32, 32))
    assert feats.shape == (2, 4, 4, 64)
    assert model.forward_head(feats, pre_logits=True).shape == (2, 64)
    model.reset_classifier(0)
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 64)
    assert "layers.0.blocks.0.attn.relative_position_bias_table" in model.no_weight_decay()


def test_bad_inputs():
    model = vitkit.create_model("swin_tiny_patch4_window7_224", **TINY)
    with pytest.raises(InputError, match="expected 3 input channels"):
        model(torch.randn(1, 1, 32, 32))
    with pytest.raises(InputError, match="too small.*at least 8 pixels"):
        model(torch.randn(1, 3, 6, 32))
    with pytest.raises(InputError, match="not divisible by the patch size"):
        model(torch.randn(1, 3, 33, 32))
    with pytest.raises(ConfigError, match="window_size 12 cannot fit the 8×8 token grid"):
        vitkit.create_model("swin_tiny_patch4_window7_224", img_size=32, window_size=12)
    with pytest.raises(ConfigError, match="one value per stage"):
        vitkit.create_model("swin_tiny_patch4_window7_224", depths=(2, 2), num_heads=(3, 6, 12))
    with pytest.raises(ConfigError, match=r"not divisible by its heads num_heads\[0\] = 5"):
        vitkit.create_model("swin_tiny_patch4_window7_224", num_heads=(5, 6, 12, 24))


def test_cli_train_on_digits_and_bad_inputs_exit_with_one_line(tmp_path, capsys):
    from vitkit.cli import main

    common = ["train", "--model", "swin_tiny_patch4_window7_224", "--data", "digits", "--epochs", "1",
              "--batch-size", "32", "--limit", "64", "--no-progress"]
    tiny = [a for k, v in (("img_size", "32"), ("patch_size", "2"), ("embed_dim", "16"), ("depths", "[2,2]"),
                           ("num_heads", "[1,2]"), ("window_size", "4")) for a in ("--override", f"{k}={v}")]
    assert main([*common, "--out", str(tmp_path / "ok"), *tiny]) == 0
    assert (tmp_path / "ok" / "model.safetensors").is_file()
    capsys.readouterr()
    cases = {  # bad override -> the one sentence expected
        "cannot fit": ["--override", "img_size=32", "--override", "window_size=12"],
        "too small": ["--override", "img_size=16", "--override", "window_size=2"],
    }
    for i, (expected, args) in enumerate(cases.items()):
        rc = main([*common, "--out", str(tmp_path / f"bad{i}"), *args])
        err = capsys.readouterr().err.strip().splitlines()
        assert rc != 0 and len(err) == 1 and expected in err[0], err


def test_bias_table_resize_is_plain_bicubic_as_official():
    import torch.nn.functional as F

    from vitkit.models.swin import resize_relative_position_table

    table = torch.randn(13 * 13, 3)  # M = 7
    grid = table.t().reshape(1, 3, 13, 13)
    expected = F.interpolate(grid, size=(23, 23), mode="bicubic", align_corners=False)  # M = 12
    torch.testing.assert_close(resize_relative_position_table(table, 12), expected.reshape(3, -1).t())


@pytest.mark.parametrize("grid", [(8, 8), (10, 11)])
def test_token_gathers_have_the_gradient_of_index_select(grid):
    from vitkit.layers.groupings import fold_tokens, unfold_tokens, window_index

    H, W = grid
    fold, unfold = window_index(grid, (4, 4), (2, 2))
    padded = fold.max().item() == H * W
    x = torch.randn(2, H * W, 5, requires_grad=True)
    xp = torch.nn.functional.pad(x, (0, 0, 0, 1)) if padded else x
    g = torch.randn(2, fold.numel(), 5)
    ours = torch.autograd.grad(fold_tokens(xp, fold, unfold, padded), x, g)[0]
    ref = torch.autograd.grad(xp.index_select(1, fold), x, g)[0]
    torch.testing.assert_close(ours, ref)
    y = torch.randn(2, fold.numel(), 5, requires_grad=True)
    g2 = torch.randn(2, H * W, 5)
    ours = torch.autograd.grad(unfold_tokens(y, fold, unfold, padded), y, g2)[0]
    ref = torch.autograd.grad(y.index_select(1, unfold), y, g2)[0]
    torch.testing.assert_close(ours, ref)
