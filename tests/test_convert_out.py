"""Weights out: `vitkit convert CKPT --to timm|hf|torchvision --out FILE` writes the target's key layout (and
transformers' config.json beside it); the file loads strictly into the reference library's model, which then gives
vitkit's logits (max abs diff <= 1e-5), and reading it back into vitkit is bit-exact. Tiny configs; norms and
BatchNorm statistics randomised so that a mis-mapped key shows."""

import json

import pytest
import torch
from torch import nn

import vitkit
from vitkit.checkpoint import read_state_dict
from vitkit.cli import main
from vitkit.convert import from_vitkit, to_vitkit

timm = pytest.importorskip("timm")
transformers = pytest.importorskip("transformers")
torchvision = pytest.importorskip("torchvision")


def _randomised(model: nn.Module) -> nn.Module:
    """Every 1-D parameter (norm affines, biases), BatchNorm statistic, token and position table drawn at random:
    at their initial values (ones, zeros) a mis-mapped key would not show."""
    with torch.no_grad():
        for name, t in [*model.named_parameters(), *model.named_buffers()]:
            if name.endswith("running_var"):
                t.uniform_(0.5, 1.5)
            elif t.is_floating_point() and (t.ndim == 1 or any(s in name for s in ("token", "pos", "time_embed"))):
                t.normal_(1.0 if name.endswith("weight") else 0.0, 0.2)
    return model.eval()


VIT = dict(img_size=32, patch_size=8, embed_dim=48, depth=2, num_heads=3, num_classes=7)
SWIN = dict(img_size=56, embed_dim=16, depths=(2, 2), num_heads=(1, 2), window_size=7, num_classes=7)
MVIT2 = dict(img_size=32, embed_dim=16, depths=(1, 2), num_classes=7)
MVIT = dict(num_frames=4, img_size=32, embed_dim=16, depths=(1, 2, 1), pool_stride_kv=(1, 4, 4), num_classes=5)
CVT = dict(embed_dims=(16, 32, 48), num_heads=(1, 2, 3), depths=(1, 2, 3), num_classes=7, act_layer="gelu")
TSF = dict(img_size=32, patch_size=8, num_frames=4, embed_dim=48, depth=2, num_heads=3, num_classes=7)
VIVIT = dict(img_size=32, num_frames=4, patch_size=8, tubelet_size=2, embed_dim=48, depth=2, num_heads=3, num_classes=7)
IMG, CLIP = torch.randn(2, 3, 32, 32), torch.randn(2, 3, 4, 32, 32)


def _hf(folder):
    cfg = transformers.AutoConfig.from_pretrained(folder)
    return getattr(transformers, cfg.architectures[0])(cfg)


def _tv_mvit(model):
    from parity.test_mvit import _torchvision

    return _torchvision(model, 4, 32)


CASES = {  # id -> (vitkit name, overrides, target, reference builder (vitkit model, out folder), input, ref forward)
    "timm-vit": ("vit_base_patch16_224", VIT, "timm", lambda m, d: timm.create_model("vit_base_patch16_224", **VIT),
                 IMG, None),
    "timm-deit": ("deit_base_distilled_patch16_224", VIT, "timm",
                  lambda m, d: timm.create_model("deit_base_distilled_patch16_224", **VIT), IMG, None),
    "timm-swin": ("swin_tiny_patch4_window7_224", SWIN, "timm",
                  lambda m, d: timm.create_model("swin_tiny_patch4_window7_224", **SWIN), torch.randn(2, 3, 56, 56),
                  None),
    "timm-mvitv2": ("mvitv2_tiny", MVIT2, "timm", lambda m, d: __import__("timm.models.mvitv2").models.mvitv2.MultiScaleVit(
        __import__("timm.models.mvitv2").models.mvitv2.MultiScaleVitCfg(depths=(1, 2), embed_dim=16, num_heads=1),
        img_size=(32, 32), num_classes=7), IMG, None),
    "hf-vit": ("vit_base_patch16_224", VIT, "hf", lambda m, d: _hf(d), IMG, lambda r, x: r(pixel_values=x).logits),
    "hf-deit": ("deit_base_distilled_patch16_224", VIT, "hf", lambda m, d: _hf(d), IMG,
                lambda r, x: r(pixel_values=x).logits),
    "hf-swin": ("swin_tiny_patch4_window7_224", SWIN, "hf", lambda m, d: _hf(d), torch.randn(2, 3, 56, 56),
                lambda r, x: r(pixel_values=x).logits),
    "hf-cvt": ("cvt_13_224", CVT, "hf", lambda m, d: _hf(d), torch.randn(2, 3, 64, 64),
               lambda r, x: r(pixel_values=x).logits),
    "hf-timesformer": ("timesformer_base_8x224_divided_space_time", TSF, "hf", lambda m, d: _hf(d), CLIP,
                       lambda r, x: r(pixel_values=x.transpose(1, 2)).logits),
    "hf-vivit": ("vivit_base_16x2_spatiotemporal", VIVIT, "hf", lambda m, d: _hf(d), CLIP,
                 lambda r, x: r(pixel_values=x.transpose(1, 2)).logits),
    "tv-vit": ("vit_base_patch16_224", VIT, "torchvision", lambda m, d: torchvision.models.VisionTransformer(
        image_size=32, patch_size=8, num_layers=2, num_heads=3, hidden_dim=48, mlp_dim=192, num_classes=7), IMG, None),
    "tv-swin": ("swin_tiny_patch4_window7_224", SWIN, "torchvision", lambda m, d: torchvision.models.SwinTransformer(
        patch_size=[4, 4], embed_dim=16, depths=[2, 2], num_heads=[1, 2], window_size=[7, 7], num_classes=7),
        torch.randn(2, 3, 56, 56), None),
    "tv-mvit": ("mvit_base_16x4", MVIT, "torchvision", lambda m, d: _tv_mvit(m), CLIP, None),
    "tv-mvitv2": ("mvitv2_small_16x4", MVIT, "torchvision", lambda m, d: _tv_mvit(m), CLIP, None),
}


@pytest.mark.parametrize("case", list(CASES))
@torch.no_grad()
def test_convert_to_loads_strictly_with_equal_logits(case, tmp_path, capsys):
    name, overrides, target, build, x, forward = CASES[case]
    model = _randomised(vitkit.create_model(name, **overrides))
    vitkit.save_checkpoint(model, tmp_path / "ours.safetensors")
    suffix = ".bin" if target == "torchvision" else ".safetensors"
    out = tmp_path / target / f"model{suffix}"
    assert main(["convert", str(tmp_path / "ours.safetensors"), "--to", target, "--out", str(out)]) == 0
    assert (out.parent / "config.json").exists() == (target == "hf")
    sd, _ = read_state_dict(out)
    ref = build(model, out.parent).eval()
    ref.load_state_dict(sd, strict=True)
    want = forward(ref, x) if forward else ref(x)
    got = model(x)
    assert (got - want).abs().max().item() <= 1e-5
    assert want.abs().max() > 1e-3
    # vitkit -> target -> vitkit is bit-exact
    back = vitkit.create_model(name, **overrides)
    converted, source = to_vitkit(sd, back)
    assert source == ("vitkit" if target == "timm" and "mvit" not in name else target)
    own = model.state_dict()
    assert set(converted) == set(own) and all(torch.equal(converted[k], own[k]) for k in own)


def test_hf_config_carries_class_names_and_size(tmp_path):
    with torch.device("meta"):
        swin_t = vitkit.create_model("swin_t")
    _, cfg = from_vitkit(swin_t, "hf")
    assert cfg["id2label"]["0"] == "tench" and cfg["image_size"] == 224 and cfg["depths"] == [2, 2, 6, 2]
    assert json.loads(json.dumps(cfg)) == cfg


def test_targets_without_the_family_say_so(tmp_path, capsys):
    model = vitkit.create_model("cvt_13_224", **CVT)
    vitkit.save_checkpoint(model, tmp_path / "cvt.safetensors")
    code = main(["convert", str(tmp_path / "cvt.safetensors"), "--to", "torchvision", "--out", str(tmp_path / "x.pth")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "torchvision has no CvT model" in err
    assert not (tmp_path / "x.pth").exists()


def test_cvt_quick_gelu_export_is_noted(tmp_path, capsys):
    model = vitkit.create_model("cvt_13_224", **{**CVT, "act_layer": "quick_gelu"})
    vitkit.save_checkpoint(model, tmp_path / "cvt.safetensors")
    assert main(["convert", str(tmp_path / "cvt.safetensors"), "--to", "hf", "--out", str(tmp_path / "hf" / "m.bin")]) == 0
    assert "QuickGELU" in capsys.readouterr().out
