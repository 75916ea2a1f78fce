"""ViViT Model 1 vs HF transformers `VivitForVideoClassification` (random init, weights converted): same logits in
fp32 eval (max abs diff <= 1e-5). HF's default activation, gelu_fast, is the tanh approximation that scenic (Flax
nn.gelu) and vitkit use; hidden_act="gelu" pairs with act_layer="gelu". HF takes (B, T, C, H, W), vitkit (B, C, T, H, W)."""

import re

import pytest
import torch
from torch import nn

import vitkit
from vitkit.convert import to_vitkit

transformers = pytest.importorskip("transformers")

B, T, SIZE, P, t, D, HEADS, DEPTH, CLASSES = 2, 4, 32, 8, 2, 48, 3, 2, 7


def _hf(hidden_act="gelu_fast"):
    cfg = transformers.VivitConfig(image_size=SIZE, num_frames=T, tubelet_size=[t, P, P], hidden_size=D,
                                   num_hidden_layers=DEPTH, num_attention_heads=HEADS, intermediate_size=4 * D,
                                   hidden_act=hidden_act, num_labels=CLASSES)
    ref = transformers.VivitForVideoClassification(cfg)
    with torch.no_grad():  # LN at 1/0 and a zero cls token would hide a mis-mapped key; std-.02 linears would
        for m in ref.modules():  # keep GELU inputs so small that exact and tanh-approximated GELU agree
            if isinstance(m, nn.Linear):
                m.weight.normal_(0, 0.1)
                m.bias.normal_(0, 0.1)
            if isinstance(m, nn.LayerNorm):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.1)
        ref.vivit.embeddings.cls_token.normal_(0, 0.5)
        ref.vivit.embeddings.position_embeddings.normal_(0, 0.5)
    return ref.eval()


def _ours(**overrides):
    return vitkit.create_model("vivit_base_16x2_spatiotemporal", img_size=SIZE, num_frames=T, patch_size=P,
                               tubelet_size=t, embed_dim=D, depth=DEPTH, num_heads=HEADS,
                               num_classes=CLASSES, **overrides).eval()


def _old_hub_layout(sd):
    """The key layout of the released hub checkpoints (google/vivit-b-16x2-kinetics400), from transformers 5's."""
    rules = [(r"^vivit\.layers\.", "vivit.encoder.layer."), (r"\.attention\.([qkv])_proj\.",
             lambda m: {"q": ".attention.attention.query.", "k": ".attention.attention.key.",
                        "v": ".attention.attention.value."}[m.group(1)]),
             (r"\.attention\.o_proj\.", ".attention.output.dense."), (r"\.mlp\.fc1\.", ".intermediate.dense."),
             (r"\.mlp\.fc2\.", ".output.dense.")]
    out = {}
    for k, v in sd.items():
        for pat, rep in rules:
            k = re.sub(pat, rep, k)
        out[k] = v
    return out


@pytest.mark.parametrize(("layout", "hidden_act", "act_layer"),
                         [("transformers5", "gelu_fast", "gelu_tanh"), ("hub", "gelu_fast", "gelu_tanh"),
                          ("transformers5", "gelu", "gelu")])
def test_vivit_model1_matches_hf(layout, hidden_act, act_layer):
    ref, model = _hf(hidden_act), _ours(act_layer=act_layer)
    sd = ref.state_dict() if layout == "transformers5" else _old_hub_layout(ref.state_dict())
    converted, source = to_vitkit(sd, model)
    assert source == "hf"
    model.load_state_dict(converted, strict=True)
    x = torch.randn(B, 3, T, SIZE, SIZE)
    with torch.no_grad():
        ours, theirs = model(x), ref(x.transpose(1, 2)).logits  # (B, C, T, H, W) -> (B, T, C, H, W)
    diff = (ours - theirs).abs().max().item()
    assert diff <= 1e-5, diff
    assert theirs.abs().max() > 1e-2  # the comparison is not between two near-zero outputs


def test_vivit_hf_checkpoint_file_autodetected(tmp_path):
    ref = _hf()
    path = tmp_path / "vivit_hf.bin"
    torch.save(ref.state_dict(), path)
    model = vitkit.create_model("vivit_base_16x2_spatiotemporal", checkpoint=str(path), img_size=SIZE, num_frames=T,
                                patch_size=P, tubelet_size=t, embed_dim=D, depth=DEPTH, num_heads=HEADS,
                                num_classes=CLASSES).eval()
    x = torch.randn(1, 3, T, SIZE, SIZE)
    with torch.no_grad():
        assert (model(x) - ref(x.transpose(1, 2)).logits).abs().max() <= 1e-5


def test_vivit_activation_is_not_interchangeable():
    """Guards the note above: exact and tanh GELU really give different logits at these weights, so the parity
    tests pin the activation, not a loose tolerance."""
    ref, model = _hf("gelu"), _ours()  # exact GELU reference, vitkit's default tanh GELU
    model.load_state_dict(to_vitkit(ref.state_dict(), model)[0])
    x = torch.randn(B, 3, T, SIZE, SIZE)
    with torch.no_grad():
        assert (model(x) - ref(x.transpose(1, 2)).logits).abs().max() > 1e-5
