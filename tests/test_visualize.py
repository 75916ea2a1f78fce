import pytest
import torch
import torch.nn.functional as F

import vitkit
from vitkit.errors import ConfigError
from vitkit.tools.visualize import attention_maps, attention_rollout, plot_position_tables, position_similarity


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
    plot_position_tables(model, out)
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


# --- every family from the CLI ----------------------------------------------------------------------------------
FAMILIES = ["vit_tiny_patch16_224", "deit_tiny_distilled_patch16_224", "swin_tiny_patch4_window7_224", "cvt_13_224",
            "mvit_base_16x4", "mvitv2_tiny", "vivit_base_16x2_factorised_encoder", "vivit_base_16x2_factorised_dot_product",
            "timesformer_base_8x224_space_only", "timesformer_base_8x224_local_global"]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    import av
    import numpy as np
    from PIL import Image

    d = tmp_path_factory.mktemp("inputs")
    Image.fromarray((np.random.default_rng(0).random((32, 32, 3)) * 255).astype("uint8")).save(d / "x.png")
    with av.open(str(d / "v.mp4"), mode="w") as out:  # a bright square moving right
        stream = out.add_stream("mpeg4", rate=8)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for i in range(12):
            img = np.zeros((32, 32, 3), np.uint8)
            img[8:16, 2 * i:2 * i + 8] = 255
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return d


@pytest.mark.parametrize("name", FAMILIES)
def test_cli_draws_attention_rollout_and_position_tables_for_every_family(name, inputs, tmp_path, capsys):
    from tiny import tiny_overrides

    from vitkit.cli import main

    model = vitkit.create_model(name, **tiny_overrides(name))
    ckpt = tmp_path / "m.safetensors"
    vitkit.save_checkpoint(model, ckpt)
    video = model.is_video
    source = str(inputs / ("v.mp4" if video else "x.png"))
    query = "1,2,3" if video else "2,3"
    runs = {"attention": ["--query", "cls"], "attention-patch": ["--query", query], "rollout": [], "pos-embed": []}
    for what, extra in runs.items():
        out = tmp_path / f"{what}.png"
        args = ["visualize", str(ckpt), "--what", what.split("-patch")[0], "--input", source, "--out", str(out), *extra]
        if video and what == "rollout":
            args += ["--gif", str(tmp_path / "r.gif")]
        code = main(args)
        if name.startswith("cvt") and what == "pos-embed":  # no position table: one sentence, exit 2
            assert code == 2 and "encodes position through its convolutions" in capsys.readouterr().err
            continue
        assert code == 0, capsys.readouterr().err
        assert 1000 < out.stat().st_size < 200_000
    if video:
        assert (tmp_path / "r.gif").read_bytes()[:3] == b"GIF"
    assert main(["visualize", str(ckpt), "--what", "attention", "--input", source, "--query", "9,9,9,9",
                 "--out", str(tmp_path / "q.png")]) == 2
    assert "one coordinate per axis" in capsys.readouterr().err


def test_visualize_preprocesses_its_input_as_predict_does(inputs, tmp_path, monkeypatch):
    """The rollout is drawn over what the model sees: the model's own data config (here Swin's ImageNet statistics,
    bicubic, crop 0.9), not a generic resize."""
    from tiny import tiny_overrides

    from vitkit.cli import main
    from vitkit.data import create_transform, data_config, open_image
    from vitkit.tools import visualize as vis

    name = "swin_tiny_patch4_window7_224"
    ckpt = tmp_path / "m.safetensors"
    vitkit.save_checkpoint(vitkit.create_model(name, **tiny_overrides(name)), ckpt)
    seen = []
    record = vis.record
    monkeypatch.setattr(vis, "record", lambda model, x: seen.append(x) or record(model, x))
    assert main(["visualize", str(ckpt), "--what", "rollout", "--input", str(inputs / "x.png"),
                 "--out", str(tmp_path / "r.png")]) == 0
    model = vitkit.load_checkpoint(ckpt)
    want = create_transform(data_config(model), train=False)(open_image(str(inputs / "x.png")))
    torch.testing.assert_close(seen[0][0], want)
