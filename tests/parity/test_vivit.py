"""ViViT Model 1 vs HF transformers `VivitForVideoClassification` (random init, weights converted): same logits in
fp32 eval (max abs diff <= 1e-5). HF's default activation is gelu_fast (tanh approximation); the reference is built
with hidden_act="gelu", the exact GELU of scenic and vitkit. HF takes (B, T, C, H, W), vitkit (B, C, T, H, W)."""

import re

import pytest
import torch
from torch import nn

import vitkit
from vitkit.convert import to_vitkit

transformers = pytest.importorskip("transformers")

B, T, SIZE, P, t, D, HEADS, DEPTH, CLASSES = 2, 4, 32, 8, 2, 48, 3, 2, 7


def _hf():
    cfg = transformers.VivitConfig(image_size=SIZE, num_frames=T, tubelet_size=[t, P, P], hidden_size=D,
                                   num_hidden_layers=DEPTH, num_attention_heads=HEADS, intermediate_size=4 * D,
                                   hidden_act="gelu", num_labels=CLASSES)
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


def _ours():
    return vitkit.create_model("vivit_base_16x2_spatiotemporal", img_size=SIZE, num_frames=T, patch_size=P,
                               tubelet_size=t, embed_dim=D, depth=DEPTH, num_heads=HEADS,
                               num_classes=CLASSES).eval()


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


@pytest.mark.parametrize("layout", ["transformers5", "hub"])
def test_vivit_model1_matches_hf(layout):
    ref, model = _hf(), _ours()
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


def test_vivit_hf_default_gelu_fast_is_not_exact_gelu():
    """Guards the note above: with HF's default activation the two models really differ (so the parity test's
    hidden_act="gelu" is what makes them agree, not a loose tolerance)."""
    ref = _hf()
    ref.config.hidden_act = "gelu_fast"
    fast = transformers.VivitForVideoClassification(ref.config).eval()
    fast.load_state_dict(ref.state_dict())
    model = _ours()
    model.load_state_dict(to_vitkit(fast.state_dict(), model)[0])
    x = torch.randn(B, 3, T, SIZE, SIZE)
    with torch.no_grad():
        assert (model(x) - fast(x.transpose(1, 2)).logits).abs().max() > 1e-5
