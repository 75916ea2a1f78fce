"""Backbone interface over the whole registry (issue 14): `forward_intermediates`, `feature_info`,
`prune_intermediate_layers` and `create_model(features_only=True)`, on tiny configs. timm parity for ViT, DeiT,
Swin and MViTv2 is in tests/parity/test_features_timm.py."""

import re
from pathlib import Path

import pytest
import torch
from tiny import tiny_overrides

import vitkit
from vitkit.layers.checkpointing import GradCheckpointing
from vitkit.models.features import FeatureBackbone, feature_take_indices

NAMES = vitkit.list_models()
# forward_features is not the last level's normalised tokens here: ViViT Model 2 returns its temporal encoder's
# tokens, space-only TimeSformer averages its per-frame sequences over time.
DIFFERENT_TAIL = {"vivit_base_16x2_factorised_encoder", "vivit_large_16x2_factorised_encoder",
                  "timesformer_base_8x224_space_only"}


def _tiny(name: str, **extra) -> torch.nn.Module:
    torch.manual_seed(0)
    return vitkit.create_model(name, **{**tiny_overrides(name), **extra}).eval()


def _input(model, side: int | None = None, batch: int = 2) -> torch.Tensor:
    shape = list(model.input_shape())
    if side is not None:
        shape[-2:] = [side, side]
    return torch.randn(batch, *shape)


def _tokens(name: str, features: torch.Tensor) -> torch.Tensor:
    """forward_features output as (B, L, C): Swin's (B, H, W, C) and the ResNet's (B, C, H, W) maps flattened."""
    if name.startswith("swin"):
        return features.flatten(1, 2)
    return features.flatten(2).transpose(1, 2) if name.startswith("resnet") else features


@pytest.mark.parametrize("name", NAMES)
def test_feature_info_matches_the_maps_at_two_sizes(name):
    model = _tiny(name)
    info = model.feature_info
    side = model.input_shape()[-1]
    for size in (side, side * 3 // 2):
        x = _input(model, size)
        with torch.no_grad():
            maps = model.forward_intermediates(x, intermediates_only=True)
            tokens = model.forward_intermediates(x, output_fmt="NLC", intermediates_only=True)
        assert len(maps) == len(tokens) == len(info)
        for m, t, c, r in zip(maps, tokens, info.channels(), info.reduction()):
            assert m.ndim == x.ndim  # (B, C, H, W) for images, (B, C, T, H, W) for videos
            assert m.shape[:2] == (2, c)
            assert m.shape[-2:] == (size // r, size // r)
            assert t.shape == (2, m[0, 0].numel(), c)
            assert torch.equal(t, m.flatten(2).transpose(1, 2))  # NLC is the map's tokens in row-major order


@pytest.mark.parametrize("name", NAMES)
def test_final_output_and_last_normalised_level_equal_forward_features(name):
    model = _tiny(name)
    x = _input(model)
    with torch.no_grad():
        features = model.forward_features(x)
        final, levels = model.forward_intermediates(x, indices=1, norm=True, output_fmt="NLC",
                                                    return_prefix_tokens=True)
    assert torch.equal(final, features)
    if name in DIFFERENT_TAIL:
        return
    last = levels[-1]
    if isinstance(last, tuple):  # (patch tokens, prefix tokens): forward_features has the prefix first
        last = torch.cat([last[1], last[0]], dim=1)
    torch.testing.assert_close(last, _tokens(name, features), rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", ["deit_tiny_distilled_patch16_224", "swin_tiny_patch4_window7_224",
                                  "mvit_base_16x4", "timesformer_base_8x224_space_only",
                                  "vivit_base_16x2_factorised_encoder", "cvt_13_224"])
def test_indices_stop_early_and_prefix_tokens(name):
    model = _tiny(name)
    n = len(model.feature_info)
    x = _input(model)
    with torch.no_grad():
        _, every = model.forward_intermediates(x, output_fmt="NLC")
        last_two = model.forward_intermediates(x, indices=2, output_fmt="NLC", intermediates_only=True)
        picked = model.forward_intermediates(x, indices=[0, -1], output_fmt="NLC", intermediates_only=True)
        _, first = model.forward_intermediates(x, indices=[0], stop_early=True, output_fmt="NLC")
        with_prefix = model.forward_intermediates(x, indices=[0], return_prefix_tokens=True, intermediates_only=True)
    assert len(every) == n
    for got, want in ((last_two, every[-2:]), (picked, [every[0], every[-1]]), (first, every[:1])):
        assert all(torch.equal(a, b) for a, b in zip(got, want, strict=True))
    prefix = {"deit_tiny_distilled_patch16_224": 2, "mvit_base_16x4": 1, "cvt_13_224": 0,
              "timesformer_base_8x224_space_only": x.shape[2],  # one class token per frame
              "vivit_base_16x2_factorised_encoder": x.shape[2] // 2,  # one per tubelet frame
              "swin_tiny_patch4_window7_224": 0}[name]
    if prefix:
        feature_map, prefix_tokens = with_prefix[0]
        assert feature_map.shape[:2] == (x.shape[0], model.feature_info[0]["num_chs"])
        assert prefix_tokens.shape == (x.shape[0], prefix, model.feature_info[0]["num_chs"])
    else:
        assert isinstance(with_prefix[0], torch.Tensor)  # no prefix tokens: plain maps, as timm


def test_take_indices_follow_timm_and_bad_ones_raise():
    assert feature_take_indices(4, None) == ([0, 1, 2, 3], 3)
    assert feature_take_indices(4, 2) == ([2, 3], 3)
    assert feature_take_indices(4, [0, -2]) == ([0, 2], 2)
    model = _tiny("vit_tiny_patch16_224")
    x = _input(model)
    for bad in (0, 3, [2], [-3], []):
        with pytest.raises(vitkit.ConfigError, match="feature"):
            model.forward_intermediates(x, indices=bad)
    with pytest.raises(vitkit.ConfigError, match="output_fmt"):
        model.forward_intermediates(x, output_fmt="NHWC")
    with pytest.raises(vitkit.ConfigError, match="features_only"):
        vitkit.create_model("vit_tiny_patch16_224", out_indices=(0,), **tiny_overrides("vit_tiny_patch16_224"))


@pytest.mark.parametrize("name,indices,kept", [("vit_tiny_patch16_224", [0], 1), ("swin_tiny_patch4_window7_224", [0, 1], 2),
                                               ("mvitv2_tiny", [0], 1), ("cvt_13_224", [-2], 2),
                                               ("timesformer_base_8x224_divided_space_time", [0], 1),
                                               ("resnet20_cifar", [1], 2)])
def test_prune_and_features_only_give_the_same_maps(name, indices, kept):
    model = _tiny(name)
    x = _input(model)
    with torch.no_grad():
        want = model.forward_intermediates(x, indices=indices, intermediates_only=True)
    backbone = _tiny(name, features_only=True, out_indices=indices)
    assert isinstance(backbone, FeatureBackbone)
    container = backbone.model.feature_info[-1]["module"].split(".")[0]
    assert len(getattr(backbone.model, container)) < len(getattr(model, container))  # levels past the last dropped
    assert len(backbone.model.feature_info) == kept
    assert not any(p.requires_grad and "head" in n for n, p in backbone.model.named_parameters())  # head dropped
    assert backbone.feature_info.channels() == [model.feature_info[i]["num_chs"] for i in
                                                feature_take_indices(len(model.feature_info), indices)[0]]
    with torch.no_grad():
        got = backbone(x)
    assert all(torch.equal(a, b) for a, b in zip(got, want, strict=True))


def test_features_only_defaults_follow_timm():
    assert len(_tiny("vit_tiny_patch16_224", features_only=True, depth=5).feature_info) == 3  # last 3 blocks
    assert _tiny("swin_tiny_patch4_window7_224", features_only=True).feature_info.channels() == [16, 32, 64]


def test_features_only_gradients_reach_every_kept_parameter():
    backbone = _tiny("swin_tiny_patch4_window7_224", features_only=True, out_indices=(0, 1)).train()
    sum(m.square().mean() for m in backbone(_input(backbone.model))).backward()
    assert all(p.grad is not None for p in backbone.parameters())


def test_readme_backbone_example_runs_as_written():
    """The README's "Use as a backbone" block, with the shapes its comments state."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = re.search(r"## Use as a backbone\n.*?```python\n(.*?)```", readme, re.S).group(1)
    scope: dict = {}
    exec(block, scope)
    assert [tuple(m.shape) for m in scope["maps"]] == [(1, 192, 28, 28), (1, 384, 14, 14), (1, 768, 7, 7)]
    assert scope["swin"].feature_info.reduction() == [8, 16, 32]
    assert scope["feature_map"].shape == (1, 384, 14, 20) and scope["prefix"].shape == (1, 2, 384)
    assert len(scope["vit"].blocks) == 12 and isinstance(scope["vit"].head, torch.nn.Identity)


@pytest.mark.parametrize("name", ["deit_tiny_distilled_patch16_224", "swin_tiny_patch4_window7_224", "cvt_13_224",
                                  "mvit_base_16x4", "mvitv2_tiny", "vivit_base_16x2_factorised_encoder",
                                  "vivit_base_16x2_factorised_self_attention", "timesformer_base_8x224_space_only",
                                  "timesformer_base_8x224_local_global"])
def test_gradient_checkpointing_applies_inside_forward_intermediates(name):
    """Same gradients with checkpointing on (the block-level mixin of layers/checkpointing.py), and the blocks
    really are recomputed: each runs twice per step instead of once."""
    model = _tiny(name).train()  # drop-path and dropout as configured: the recomputation replays the RNG
    x = _input(model)
    blocks = [m for m in model.modules() if isinstance(m, GradCheckpointing)]
    calls = []
    for b in blocks:
        b.register_forward_pre_hook(lambda *_: calls.append(1))  # pre: recomputation may stop before the end

    def step() -> tuple[dict, int]:
        model.zero_grad()
        calls.clear()
        torch.manual_seed(1)
        final, levels = model.forward_intermediates(x, norm=True, output_fmt="NLC")
        (final.square().mean() + sum(t.square().mean() for t in levels)).backward()
        return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}, len(calls)

    plain, plain_calls = step()
    model.set_grad_checkpointing(True)
    checkpointed, checkpointed_calls = step()
    assert blocks and plain_calls == len(blocks) and checkpointed_calls == 2 * len(blocks)
    assert plain.keys() == checkpointed.keys()
    for n in plain:
        torch.testing.assert_close(checkpointed[n], plain[n], rtol=0, atol=1e-6, msg=n)
