"""`init_video_from_image` from a Hugging Face ViT checkpoint: the image weights go through vitkit's HF ViT converter
for both video families (the other cases are in tests/test_vivit.py and tests/test_timesformer.py)."""

import pytest
import torch

import vitkit


def _hf_vit(img_size: int, width: int, heads: int):
    transformers = pytest.importorskip("transformers")
    cfg = transformers.ViTConfig(image_size=img_size, patch_size=8, hidden_size=width, num_hidden_layers=2,
                                 num_attention_heads=heads, intermediate_size=4 * width, layer_norm_eps=1e-6,
                                 num_labels=3)
    ref = transformers.ViTForImageClassification(cfg).eval()
    with torch.no_grad():  # non-trivial cls and position rows
        ref.vit.embeddings.cls_token.normal_(0, 0.3)
        ref.vit.embeddings.position_embeddings.normal_(0, 0.3)
    return ref


def test_vivit_model1_single_tubelet_is_the_hf_image_model():
    """n_t = 1 (2 frames, tubelet 2, central-frame filter): Model 1 is the image model on frame 1."""
    ref = _hf_vit(16, 32, 4)
    model = vitkit.create_model("vivit_base_16x2_spatiotemporal", img_size=16, patch_size=8, num_frames=2,
                                embed_dim=32, depth=2, num_heads=4, num_classes=5, act_layer="gelu").eval()  # HF: exact GELU
    vitkit.init_video_from_image(model, ref.state_dict())
    clip = torch.randn(1, 3, 2, 16, 16)
    with torch.no_grad():
        expected = ref.vit(clip[:, :, 1]).last_hidden_state
        assert (model.forward_features(clip) - expected).abs().max() <= 1e-5


def test_timesformer_static_clip_is_the_hf_image_model():
    """Zero temporal fc and time embedding: on a static clip the cls features are the image model's."""
    ref = _hf_vit(32, 48, 3)
    model = vitkit.create_model("timesformer_base_8x224_divided_space_time", img_size=32, patch_size=8, num_frames=4,
                                embed_dim=48, depth=2, num_heads=3, num_classes=7).eval()
    vitkit.init_video_from_image(model, ref.state_dict())
    frame = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        got = model.forward_features(frame[:, :, None].expand(-1, -1, 3, -1, -1))  # (B, C, H, W) -> (B, C, T, H, W)
        assert (got[:, 0] - ref.vit(frame).last_hidden_state[:, 0]).abs().max() <= 1e-5
