"""CvT parity: transformers `CvtForImageClassification` (random init, BatchNorm statistics randomised) converted
to vitkit must give the same logits (fp32, eval, max abs diff <= 1e-5)."""

import pytest
import torch
from torch import nn

from vitkit import create_model
from vitkit.convert import to_vitkit
from vitkit.layers import QuickGELU

transformers = pytest.importorskip("transformers")

# HF indexes its per-stage drop-path list by the stage index, so it needs depth_i > i
TINY = {"embed_dims": (16, 32, 48), "num_heads": (1, 2, 3), "depths": (1, 2, 3), "num_classes": 10}


def _hf(cls_token: bool = True):
    cfg = transformers.CvtConfig(embed_dim=list(TINY["embed_dims"]), num_heads=list(TINY["num_heads"]),
                                 depth=list(TINY["depths"]), num_labels=TINY["num_classes"],
                                 cls_token=[False, False, cls_token])
    ref = transformers.CvtForImageClassification(cfg)
    with torch.no_grad():  # BN at its init (mean 0, var 1, affine 1/0) and LN at 1/0 would hide a mis-mapped key
        for m in ref.modules():
            if isinstance(m, (nn.BatchNorm2d, nn.LayerNorm)):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.1)
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    return ref.eval()


def _vitkit_from(ref, **overrides):
    model = create_model("cvt_13_224", **TINY, **overrides).eval()
    sd, source = to_vitkit(ref.state_dict(), model)
    assert source == "hf"
    model.load_state_dict(sd, strict=True)
    return model


@pytest.mark.parametrize("size", [(64, 64), (72, 56)])
@pytest.mark.parametrize("cls_token", [True, False])
def test_cvt_matches_hf(size, cls_token):
    ref = _hf(cls_token)
    model = _vitkit_from(ref, act_layer="gelu", cls_token=cls_token)  # HF's port uses nn.GELU
    x = torch.randn(2, 3, *size)
    with torch.no_grad():
        diff = (model(x) - _hf_logits(ref, x)).abs().max().item()
    assert diff <= 1e-5, diff


def _hf_logits(ref, x):
    if ref.config.cls_token[-1]:
        return ref(x).logits
    # HF's classifier crashes without a class token (it indexes the missing cls output); its own no-cls branch,
    # LN over the last map's tokens -> mean -> classifier, applied to its backbone output:
    feats = ref.cvt(x).last_hidden_state.flatten(2).transpose(1, 2)  # (B, C, H, W) -> (B, N, C)
    return ref.classifier(ref.layernorm(feats).mean(1))


def test_cvt_quick_gelu_matches_hf_with_official_activation():
    """The default (official QuickGELU) equals HF once HF's MLP activation is swapped for QuickGELU."""
    ref = _hf()
    for stage in ref.cvt.encoder.stages:
        for layer in stage.layers:
            layer.intermediate.activation = QuickGELU()
    model = _vitkit_from(ref)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        diff = (model(x) - ref(x).logits).abs().max().item()
        assert diff <= 1e-5, diff
        plain = _vitkit_from(_hf(), act_layer="gelu")
        plain.load_state_dict(model.state_dict())
        assert (plain(x) - model(x)).abs().max() > 1e-4  # the activation choice is visible at this size
