import pytest
import torch
import torch.nn.functional as F

import vitkit
from vitkit.errors import ConfigError
from vitkit.tools.visualize import attention_maps, attention_rollout, plot_position_similarity, position_similarity


def tiny_vit(**kw):
    cfg = dict(img_size=32, patch_size=8, embed_dim=48, depth=2, num_heads=3, num_classes=4)
    return vitkit.create_model("vit_tiny_patch16_224", **{**cfg, **kw}).eval()


def test_position_similarity_is_cosine_of_the_patch_embeddings(tmp_path):
    model = tiny_vit()
    sim = position_similarity(model)
    assert sim.shape == (4, 4, 4, 4)
    p = model.pos_embed[0, 1:].detach()
    torch.testing.assert_close(sim[1, 2, 3, 0], F.cosine_similarity(p[1 * 4 + 2], p[3 * 4 + 0], dim=0))
    torch.testing.assert_close(torch.diagonal(sim.reshape(16, 16)), torch.ones(16))
    out = tmp_path / "pos.png"
    plot_position_similarity(model, out)
    assert out.stat().st_size > 1000
    with pytest.raises(ConfigError, match="no learned 2-D position embedding"):
        position_similarity(vitkit.create_model("cvt_13_224", img_size=32, embed_dims=(16, 32, 48), depths=(1, 1, 1),
                                                num_heads=(1, 2, 3)))


def test_attention_maps_match_explicit_softmax():
    model = tiny_vit()
    x = torch.randn(2, 3, 32, 32)
    maps = attention_maps(model, x)
    assert len(maps) == 2 and maps[0].shape == (2, 3, 17, 17)
    torch.testing.assert_close(maps[0].sum(-1), torch.ones(2, 3, 17))
    # the first layer's attention recomputed by hand from the block's normalised input
    tokens = model.patch_embed(x)
    tokens = torch.cat([model.cls_token.expand(2, -1, -1), tokens], 1) + model.pos_embed
    h = model.blocks[0].norm1(tokens)
    qkv = model.blocks[0].attn.qkv(h).reshape(2, 17, 3, 3, 16).permute(2, 0, 3, 1, 4)
    expected = (qkv[0] @ qkv[1].transpose(-1, -2) / 4.0).softmax(-1)
    torch.testing.assert_close(maps[0], expected.detach())


def test_rollout_rows_are_distributions_and_identity_without_attention():
    model = tiny_vit()
    r = attention_rollout(model, torch.randn(1, 3, 32, 32))
    assert r.shape == (1, 17, 17)
    torch.testing.assert_close(r.sum(-1), torch.ones(1, 17))
    # with uniform attention, rollout of one layer is 0.5·I + 0.5/N everywhere
    one = tiny_vit(depth=1)
    with torch.no_grad():
        one.blocks[0].attn.qkv.weight.zero_()
        one.blocks[0].attn.qkv.bias.zero_()
    r1 = attention_rollout(one, torch.randn(1, 3, 32, 32))
    torch.testing.assert_close(r1[0], 0.5 * torch.eye(17) + 0.5 / 17)
