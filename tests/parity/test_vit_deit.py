"""ViT / DeiT parity with timm (and HF / torchvision) on random weights converted through vitkit's loaders."""

import pytest
import timm
import torch
from timm.layers import resample_abs_pos_embed as timm_resample
from tiny import meta_model

import vitkit
from vitkit.convert import to_vitkit
from vitkit.tools.profile import count_params

NAMES = ["vit_tiny_patch16_224", "vit_small_patch16_224", "vit_base_patch16_224",
         "deit_tiny_distilled_patch16_224", "deit_small_distilled_patch16_224", "deit_base_distilled_patch16_224"]


def _max_diff(a, b):
    return (a - b).abs().max().item()


def _converted(ref: torch.nn.Module, ours: torch.nn.Module, expected_source: str) -> torch.nn.Module:
    """ours with ref's weights loaded through vitkit's converter, which must recognise `expected_source`."""
    sd, source = to_vitkit(ref.state_dict(), ours)
    assert source == expected_source
    ours.load_state_dict(sd)
    return ours


@pytest.mark.parametrize("name", NAMES)
def test_timm_parity_depth2_full_width(name, tmp_path):
    ref = timm.create_model(name, pretrained=False, depth=2).eval()
    path = tmp_path / "timm.pth"
    torch.save(ref.state_dict(), path)
    ours = vitkit.create_model(name, depth=2, checkpoint=path).eval()
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        assert _max_diff(ours(x), ref(x)) <= 1e-5
    if "distilled" in name:
        ref.set_distilled_training(True)
        ref.train()
        ours.train()
        with torch.no_grad():  # drop rates are 0: train mode only changes what timm returns
            for a, b in zip(ours.forward_distill(x), ref(x)):
                assert _max_diff(a, b) <= 1e-5


@pytest.mark.parametrize("name", ["vit_tiny_patch16_224", "deit_tiny_distilled_patch16_224"])
def test_checkpoint_at_224_loaded_at_384(name, tmp_path):
    """Our bicubic position-embedding resampling equals timm's resampling of the same checkpoint."""
    src = timm.create_model(name, pretrained=False, depth=2)
    path = tmp_path / "224.pth"
    torch.save(src.state_dict(), path)
    prefix = 2 if "distilled" in name else 1
    sd = dict(src.state_dict())
    sd["pos_embed"] = timm_resample(sd["pos_embed"], (24, 24), num_prefix_tokens=prefix)
    ref = timm.create_model(name, pretrained=False, depth=2, img_size=384).eval()
    ref.load_state_dict(sd)
    ours = vitkit.create_model(name, depth=2, img_size=384, checkpoint=path).eval()
    x = torch.randn(1, 3, 384, 384)
    with torch.no_grad():
        assert _max_diff(ours(x), ref(x)) <= 1e-5


def test_timm_avg_pool_fc_norm():
    ref = timm.create_model("vit_tiny_patch16_224", pretrained=False, depth=1, global_pool="avg", class_token=True).eval()
    assert "fc_norm.weight" in ref.state_dict()
    ours = _converted(ref, vitkit.create_model("vit_tiny_patch16_224", depth=1, global_pool="avg").eval(), "timm")
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        assert _max_diff(ours(x), ref(x)) <= 1e-5


def test_hf_vit_and_deit_parity():
    from transformers import DeiTConfig, DeiTForImageClassificationWithTeacher, ViTConfig, ViTForImageClassification

    kw = dict(hidden_size=48, num_hidden_layers=2, num_attention_heads=3, intermediate_size=192, image_size=32,
              patch_size=8, num_labels=5, hidden_act="gelu", layer_norm_eps=1e-6)
    for ref, name in ((ViTForImageClassification(ViTConfig(**kw)), "vit_tiny_patch16_224"),
                      (DeiTForImageClassificationWithTeacher(DeiTConfig(**kw)), "deit_tiny_distilled_patch16_224")):
        ref.eval()
        ours = vitkit.create_model(name, img_size=32, patch_size=8, embed_dim=48, depth=2, num_heads=3,
                                   num_classes=5).eval()
        _converted(ref, ours, "hf")
        x = torch.randn(2, 3, 32, 32)
        with torch.no_grad():
            assert _max_diff(ours(x), ref(pixel_values=x).logits) <= 1e-5


def test_hf_hub_layout_is_accepted():
    """Hub checkpoints predate transformers 5's renames: encoder.layer.i.attention.attention.query, ..."""
    from transformers import ViTConfig, ViTForImageClassification

    ref = ViTForImageClassification(ViTConfig(hidden_size=48, num_hidden_layers=1, num_attention_heads=3,
                                              intermediate_size=96, image_size=32, patch_size=8, num_labels=5)).eval()
    old = {}
    for k, v in ref.state_dict().items():
        k = k.replace(".layers.", ".encoder.layer.").replace("attention.q_proj", "attention.attention.query")
        k = k.replace("attention.k_proj", "attention.attention.key").replace("attention.v_proj", "attention.attention.value")
        k = k.replace("attention.o_proj", "attention.output.dense").replace("mlp.fc1", "intermediate.dense")
        old[k.replace("mlp.fc2", "output.dense")] = v
    ours = vitkit.create_model("vit_tiny_patch16_224", img_size=32, patch_size=8, embed_dim=48, depth=1, num_heads=3,
                               mlp_ratio=2.0, num_classes=5)
    sd, _ = to_vitkit(old, ours)
    ours.load_state_dict(sd)
    torch.testing.assert_close(ours.blocks[0].attn.qkv.weight[:48], ref.vit.layers[0].attention.q_proj.weight)


def test_torchvision_vit_parity():
    import torchvision

    ref = torchvision.models.VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=3, hidden_dim=48,
                                               mlp_dim=192, num_classes=5).eval()
    ours = vitkit.create_model("vit_tiny_patch16_224", img_size=32, patch_size=8, embed_dim=48, depth=2, num_heads=3,
                               num_classes=5).eval()
    _converted(ref, ours, "torchvision")
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert _max_diff(ours(x), ref(x)) <= 1e-5


SPEC_PARAMS = {
    "vit_tiny_patch16_224": 5_717_416, "vit_small_patch16_224": 22_050_664, "vit_base_patch16_224": 86_567_656,
    "vit_base_patch32_224": 88_224_232, "vit_large_patch16_224": 304_326_632, "vit_large_patch32_224": 306_535_400,
    "vit_huge_patch14_224": 632_045_800, "vit_base_patch16_384": 86_859_496,
    "deit_tiny_patch16_224": 5_717_416, "deit_small_patch16_224": 22_050_664, "deit_base_patch16_224": 86_567_656,
    "deit_base_patch16_384": 86_859_496, "deit_tiny_distilled_patch16_224": 5_910_800,
    "deit_small_distilled_patch16_224": 22_436_432, "deit_base_distilled_patch16_224": 87_338_192,
    "deit_base_distilled_patch16_384": 87_630_032,
}


@pytest.mark.parametrize("name", sorted(SPEC_PARAMS))
def test_full_size_param_counts(name):
    assert count_params(meta_model(name)) == SPEC_PARAMS[name]
