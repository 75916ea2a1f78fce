"""Registry-wide contract: every registered name, built at a tiny size, behaves like a vitkit model."""

import dataclasses

import pytest
import torch
from tiny import tiny_overrides

import vitkit

NAMES = vitkit.list_models()
DROPS = ("drop_rate", "attn_drop_rate", "drop_path_rate")


def build(name, **extra):
    return vitkit.create_model(name, **{**tiny_overrides(name), **extra})


def batch(model, n=2):
    return torch.randn(n, *model.input_shape())


@pytest.mark.parametrize("name", NAMES)
def test_forward_backward(name):
    model = build(name)
    x = batch(model)
    out = model(x)
    assert out.shape == (2, model.num_classes)
    assert torch.isfinite(out).all()
    out.sum().backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None]
    assert not no_grad, f"parameters without gradient: {no_grad[:5]}"


@pytest.mark.parametrize("name", NAMES)
def test_features_and_reset(name):
    model = build(name).eval()
    x = batch(model)
    feats = model.forward_head(model.forward_features(x), pre_logits=True)
    assert feats.shape == (2, model.num_features)
    model.reset_classifier(0)
    assert model(x).shape == (2, model.num_features)
    headless = build(name, num_classes=0).eval()
    assert headless(x).shape == (2, headless.num_features)


@pytest.mark.parametrize("name", NAMES)
def test_eval_deterministic_with_drops(name):
    fields = {f.name for f in dataclasses.fields(build(name).config)}
    model = build(name, **{k: 0.3 for k in DROPS if k in fields}).eval()
    x = batch(model)
    torch.testing.assert_close(model(x), model(x), rtol=0, atol=0)
    model.train()
    if any(k in fields for k in DROPS):
        assert not torch.equal(model(x), model(x)), "drop rates > 0 should make training passes differ"


@pytest.mark.parametrize("name", NAMES)
def test_config_and_checkpoint_round_trip(name, tmp_path):
    model = build(name).eval()
    again = vitkit.create_model(name, **dataclasses.asdict(model.config))
    assert again.config == model.config
    path = tmp_path / "m.safetensors"
    vitkit.save_checkpoint(model, path)
    loaded = vitkit.load_checkpoint(path).eval()
    assert loaded.config == model.config
    x = batch(model)
    torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)


@pytest.mark.parametrize("name", NAMES)
def test_no_weight_decay_names_exist(name):
    model = build(name)
    params = dict(model.named_parameters())
    assert set(model.no_weight_decay()) <= set(params)
