"""TimeSformer vs HF transformers `TimesformerForVideoClassification` (random init, weights converted), for the
three schemes HF has. HF's space-only model returns one row per frame; the official model (and vitkit) average
the tokens over frames before the final norm, so that pooling is applied to HF's backbone output here."""

import pytest
import torch
from transformers import TimesformerConfig, TimesformerForVideoClassification

import vitkit
from vitkit.checkpoint import load_state_dict
from vitkit.convert import to_vitkit

B, T, SIZE, P, D, HEADS, DEPTH, CLASSES = 2, 4, 32, 8, 48, 3, 2, 7
SCHEMES = ["space_only", "joint_space_time", "divided_space_time"]


def _pair(scheme: str):
    cfg = TimesformerConfig(image_size=SIZE, patch_size=P, num_channels=3, num_frames=T, hidden_size=D,
                            num_hidden_layers=DEPTH, num_attention_heads=HEADS, intermediate_size=4 * D,
                            hidden_act="gelu", hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                            layer_norm_eps=1e-6, qkv_bias=True, attention_type=scheme, drop_path_rate=0,
                            num_labels=CLASSES)
    ref = TimesformerForVideoClassification(cfg).eval()
    ours = vitkit.create_model(f"timesformer_base_8x224_{scheme}", img_size=SIZE, patch_size=P, num_frames=T,
                               embed_dim=D, depth=DEPTH, num_heads=HEADS, num_classes=CLASSES,
                               drop_path_rate=0.0).eval()
    return ours, ref


def _ref_logits(ref, x: torch.Tensor, scheme: str) -> torch.Tensor:
    """HF logits for a vitkit-layout clip (B, C, T, H, W); space-only pooled over frames as the official code."""
    pv = x.transpose(1, 2)  # (B, C, T, H, W) -> (B, T, C, H, W), HF's layout
    if scheme != "space_only":
        return ref(pixel_values=pv).logits
    tf = ref.timesformer
    hidden = tf.encoder(tf.embeddings(pv)).last_hidden_state  # (B·T, 1 + S, D)
    pooled = hidden.reshape(B, T, *hidden.shape[1:]).mean(1)  # -> (B, 1 + S, D)
    return ref.classifier(tf.layernorm(pooled)[:, 0])


@pytest.mark.parametrize("scheme", SCHEMES)
@torch.no_grad()
def test_logits_match_hf(scheme):
    ours, ref = _pair(scheme)
    if scheme == "divided_space_time":  # HF does not zero temporal_dense; make sure it is really exercised
        assert ref.timesformer.encoder.layer[0].temporal_dense.weight.abs().sum() > 0
    sd, source = to_vitkit(ref.state_dict(), ours)
    assert source == "hf"
    load_state_dict(ours, sd)
    x = torch.randn(B, 3, T, SIZE, SIZE)
    want = _ref_logits(ref, x, scheme)
    got = ours(x)
    assert got.shape == want.shape == (B, CLASSES)
    assert (got - want).abs().max().item() <= 1e-5


@pytest.mark.parametrize("scheme", ["joint_space_time", "divided_space_time"])
@torch.no_grad()
def test_tokens_match_hf(scheme):
    """Every output token, not only cls: HF orders patches (h, w, t), vitkit (t, h, w)."""
    ours, ref = _pair(scheme)
    load_state_dict(ours, to_vitkit(ref.state_dict(), ours)[0])
    x = torch.randn(B, 3, T, SIZE, SIZE)
    want = ref.timesformer(pixel_values=x.transpose(1, 2)).last_hidden_state  # (B, 1 + S·T, D)
    got = ours.forward_features(x)  # (B, 1 + T·S, D)
    patches = want[:, 1:].reshape(B, -1, T, D).transpose(1, 2).flatten(1, 2)  # (s t) -> (t s) order
    assert (got[:, 0] - want[:, 0]).abs().max().item() <= 1e-5
    assert (got[:, 1:] - patches).abs().max().item() <= 1e-5


@torch.no_grad()
def test_hf_checkpoint_file_and_official_layout_load(tmp_path):
    """The same weights through files: an HF state dict, and the official repo's layout (`model.` prefix inside
    `model_state`, as its .pyth checkpoints) are recognised, converted and give the HF logits."""
    ours, ref = _pair("divided_space_time")
    x = torch.randn(B, 3, T, SIZE, SIZE)
    want = _ref_logits(ref, x, "divided_space_time")
    overrides = {"img_size": SIZE, "patch_size": P, "num_frames": T, "embed_dim": D, "depth": DEPTH, "num_heads": HEADS,
                     "num_classes": CLASSES}
    torch.save(ref.state_dict(), tmp_path / "hf.bin")
    m = vitkit.create_model("timesformer_base_8x224_divided_space_time", checkpoint=str(tmp_path / "hf.bin"),
                            **overrides).eval()
    assert (m(x) - want).abs().max().item() <= 1e-5

    official = {"model." + k: v for k, v in to_vitkit(ref.state_dict(), ours)[0].items()}
    # the official Block's names, written out independently of vitkit's
    for key in ("model.cls_token", "model.pos_embed", "model.time_embed", "model.patch_embed.proj.weight",
                "model.blocks.1.temporal_norm1.weight", "model.blocks.1.temporal_attn.qkv.weight",
                "model.blocks.1.temporal_attn.proj.bias", "model.blocks.1.temporal_fc.weight",
                "model.blocks.1.norm1.bias", "model.blocks.1.attn.qkv.bias", "model.blocks.1.mlp.fc2.weight",
                "model.norm.weight", "model.head.bias"):
        assert key in official
    torch.save({"model_state": official}, tmp_path / "official.pyth")
    m = vitkit.create_model("timesformer_base_8x224_divided_space_time", checkpoint=str(tmp_path / "official.pyth"),
                            **overrides).eval()
    assert (m(x) - want).abs().max().item() <= 1e-5
