"""CvT: exact parameter counts and GMACs of the full sizes (meta device), the official key layout, the
mechanism (class token bypasses the conv projection, K/V squeezed 4×), and bad inputs."""

import pytest
import torch
from tiny import meta_model

from vitkit import ConfigError, InputError, create_model
from vitkit.convert import to_vitkit
from vitkit.convert.official import cvt_to_official
from vitkit.tools.profile import count_gmacs, count_params

TINY = {"embed_dims": (16, 32, 48), "num_heads": (1, 2, 3), "depths": (1, 1, 2), "num_classes": 5, "img_size": 64}

# SPEC.md §4.2 "Arithmetic from the official code" and Tables 2/3 FLOPs (MACs)
FULL = {
    "cvt_13_224": (19_997_480, 4.53),
    "cvt_21_224": (31_622_696, 7.13),
    "cvt_13_384": (19_997_480, 16.3),
    "cvt_21_384": (31_622_696, 24.9),
    "cvt_w24_384": (277_196_392, 193.2),
}


@pytest.mark.parametrize("name", sorted(FULL))
def test_full_size_params_and_gmacs(name):
    params, gmacs = FULL[name]
    model = meta_model(name)
    assert count_params(model) == params
    measured = count_gmacs(model, model.input_shape())
    assert abs(measured - gmacs) / gmacs < 0.01, measured


def test_official_layout_round_trip():
    model = create_model("cvt_13_224", **TINY).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_()
    official = cvt_to_official(model.state_dict())
    assert "stage2.cls_token" in official and "stage0.patch_embed.proj.weight" in official
    assert "stage2.blocks.1.attn.conv_proj_k.bn.running_var" in official
    assert "stage1.blocks.0.attn.proj_q.weight" in official and "head.weight" in official and "norm.bias" in official
    fresh = create_model("cvt_13_224", **TINY).eval()
    sd, source = to_vitkit(official, fresh)
    assert source == "official"
    fresh.load_state_dict(sd, strict=True)
    x = torch.randn(2, 3, 64, 64)
    torch.testing.assert_close(fresh(x), model(x), atol=0, rtol=0)


def test_checkpoint_in_official_layout_loads(tmp_path):
    model = create_model("cvt_13_224", **TINY).eval()
    path = tmp_path / "cvt_official.pth"
    torch.save({"model": cvt_to_official(model.state_dict())}, path)
    loaded = create_model("cvt_13_224", checkpoint=str(path), **TINY).eval()
    x = torch.randn(1, 3, 64, 64)
    torch.testing.assert_close(loaded(x), model(x), atol=0, rtol=0)


def test_class_token_only_in_last_stage_and_no_pos_embed():
    model = create_model("cvt_13_224", **TINY)
    names = [n for n, _ in model.named_parameters()]
    assert [n for n in names if "cls_token" in n] == ["stages.2.cls_token"]
    assert not any("pos" in n for n in names)
    assert model.no_weight_decay() == {"stages.2.cls_token"}


def test_class_token_bypasses_conv_projection():
    """Changing the conv/BN reducers changes the patch rows of q, k, v but not the class token's row."""
    model = create_model("cvt_13_224", **TINY).eval()
    attn = model.stages[2].blocks[0].attn
    x = torch.randn(2, 1 + 16, 48)
    k0, _ = attn._reduce(x, (4, 4), attn.k_reducer)
    with torch.no_grad():
        attn.k_reducer.conv.weight.mul_(3.0)
        attn.k_reducer.bn.running_mean.add_(1.0)
    k1, grid = attn._reduce(x, (4, 4), attn.k_reducer)
    assert grid == (2, 2) and k1.shape == (2, 1 + 4, 48)  # K/V squeezed by the stride-2 conv
    torch.testing.assert_close(k1[:, :1], x[:, :1], atol=0, rtol=0)
    assert not torch.allclose(k1[:, 1:], k0[:, 1:])


def test_kv_squeezed_and_grid_kept():
    model = create_model("cvt_13_224", **TINY).eval()
    seen = []
    for stage in model.stages:
        hook = lambda m, i, o: seen.append((i[0].shape[-2:], o.shape[-2:]))
        stage.blocks[0].attn.k_reducer.register_forward_hook(hook)
    out = model.forward_features(torch.randn(1, 3, 64, 64))
    assert [tuple(a) for a, _ in seen] == [(16, 16), (8, 8), (4, 4)]
    assert [tuple(b) for _, b in seen] == [(8, 8), (4, 4), (2, 2)]
    assert out.shape == (1, 1 + 16, 48)


def test_any_input_size_runs():
    model = create_model("cvt_13_224", **TINY).eval()
    assert model(torch.randn(1, 3, 50, 77)).shape == (1, 5)


def test_drop_path_per_stage_linear():
    model = create_model("cvt_13_224", **dict(TINY, depths=(1, 1, 3)))
    rates = [[getattr(b.drop_path, "p", 0.0) for b in s.blocks] for s in model.stages]
    assert rates == [[0.0], [0.0], [0.0, 0.05, 0.1]]
    w24 = create_model("cvt_w24_384", **dict(TINY, depths=(1, 1, 2)))
    assert w24.config.drop_path_rate == (0.0, 0.0, 0.3)


def test_bad_inputs():
    model = create_model("cvt_13_224", **TINY).eval()
    with pytest.raises(InputError, match="input channels"):
        model(torch.randn(1, 1, 64, 64))
    with pytest.raises(InputError, match="too small"):
        model(torch.randn(1, 3, 2, 64))
    with pytest.raises(InputError, match="image batch"):
        model(torch.randn(3, 64, 64))


def test_bad_config():
    with pytest.raises(ConfigError, match="one value per stage"):
        create_model("cvt_13_224", depths=(1, 2))
    with pytest.raises(ConfigError, match="act_layer"):
        create_model("cvt_13_224", **dict(TINY, act_layer="relu"))


def test_cli_train_on_digits_end_to_end(tmp_path, capsys):
    from vitkit.cli import main

    tiny = ["--override", "img_size=32", "--override", "embed_dims=[16,32,48]", "--override", "depths=[1,1,2]",
            "--override", "num_heads=[1,2,3]"]
    rc = main(["train", "--model", "cvt_13_224", "--data", "digits", "--epochs", "1", "--batch-size", "32",
               "--limit", "64", "--no-progress", "--out", str(tmp_path), *tiny])
    assert rc == 0 and (tmp_path / "model.safetensors").is_file()
    rc = main(["train", "--model", "cvt_13_224", "--data", "digits", "--epochs", "1", "--limit", "64",
               "--no-progress", "--out", str(tmp_path / "bad"), "--override", "depths=[1,2]"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc != 0 and len(err) == 1 and "one value per stage" in err[0]
