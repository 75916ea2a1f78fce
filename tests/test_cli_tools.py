"""CLI visualize / convert / export end to end on tiny models."""

import timm
import torch

import vitkit
from vitkit.cli import main

TINY = ["--override", "img_size=32", "--override", "patch_size=8", "--override", "depth=1",
        "--override", "embed_dim=48", "--override", "num_heads=3", "--override", "num_classes=10"]


def test_convert_timm_weights_then_export_and_visualize(tmp_path, capsys):
    ref = timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=32, patch_size=8, depth=1,
                            embed_dim=48, num_heads=3, num_classes=10).eval()
    src = tmp_path / "timm.pth"
    torch.save({"model": ref.state_dict()}, src)
    out = tmp_path / "vit.safetensors"
    assert main(["convert", str(src), "--model", "vit_tiny_patch16_224", "--out", str(out), *TINY]) == 0
    assert "layout) ->" in capsys.readouterr().out
    model = vitkit.load_checkpoint(out).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(x), ref(x), atol=1e-5, rtol=0)

    onnx = tmp_path / "vit.onnx"
    assert main(["export", str(out), "--out", str(onnx)]) == 0
    printed = capsys.readouterr().out
    assert onnx.stat().st_size > 0 and "max abs diff" in printed
    assert float(printed.rsplit(" ", 1)[1]) < 1e-4

    png = tmp_path / "pos.png"
    assert main(["visualize", str(out), "--out", str(png)]) == 0
    assert png.stat().st_size > 1000


def test_visualize_rollout_on_an_image(tmp_path):
    from PIL import Image

    model = vitkit.create_model("vit_tiny_patch16_224", img_size=32, patch_size=8, depth=1, embed_dim=48,
                                num_heads=3, num_classes=10)
    ckpt = tmp_path / "m.safetensors"
    vitkit.save_checkpoint(model, ckpt)
    img = tmp_path / "x.png"
    Image.fromarray((torch.rand(32, 32, 3) * 255).byte().numpy()).save(img)
    png = tmp_path / "rollout.png"
    assert main(["visualize", str(ckpt), "--what", "rollout", "--input", str(img), "--out", str(png)]) == 0
    assert png.stat().st_size > 1000


def test_tool_commands_bad_input(tmp_path, capsys):
    ckpt = tmp_path / "m.safetensors"
    vitkit.save_checkpoint(vitkit.create_model("cvt_13_224", img_size=32, embed_dims=(16, 32, 48), depths=(1, 1, 1),
                                               num_heads=(1, 2, 3)), ckpt)
    assert main(["visualize", str(ckpt), "--out", str(tmp_path / "p.png")]) == 2
    assert "no learned 2-D position embedding" in capsys.readouterr().err
    assert main(["visualize", str(ckpt), "--what", "rollout", "--out", str(tmp_path / "p.png")]) == 2
    assert "needs --input" in capsys.readouterr().err
    assert main(["convert", str(tmp_path / "missing.pth"), "--model", "vit_tiny_patch16_224", "--out", "x"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "missing.safetensors"), "--out", "x.onnx"]) == 2
    assert "does not exist" in capsys.readouterr().err
