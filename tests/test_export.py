"""Every registered family exports to ONNX at two sizes (one through its padded / odd / non-square path), and
onnxruntime agrees with PyTorch at another batch size, and at another size along each axis left dynamic."""

import pytest
import torch
from tiny import tiny_overrides

import vitkit
from vitkit.cli import main
from vitkit.errors import ConfigError
from vitkit.tools.export import export_onnx, onnx_dynamic_axes

ort = pytest.importorskip("onnxruntime")

# name -> overrides of the second size, each taking the path a square, evenly divisible input does not
ODD = {
    "vit_tiny_patch16_224": dict(img_size=(40, 24)),                       # 5×3 patches
    "deit_tiny_distilled_patch16_224": dict(img_size=(40, 24)),
    # 10×12 tokens, M=4: stage 1 pads 10 -> 12 before its shift; the merge gives 5×6 (padded to 8×8), the next
    # merge pads the odd side (3×3), where the window shrinks to the map and does not shift
    "swin_tiny_patch4_window7_224": dict(img_size=(40, 48), patch_size=4),
    "cvt_13_224": dict(img_size=(36, 28)),                                 # 9×7 -> 5×4 -> 3×2 maps
    **{f"vivit_base_16x2_{v}": dict(img_size=(40, 24), num_frames=6)       # 3×5×3 tubelets
       for v in ("spatiotemporal", "factorised_encoder", "factorised_self_attention", "factorised_dot_product")},
    # 3×5×3 patches: local-global pads every axis of its neighbourhoods / strided groups, axial runs odd lines
    **{f"timesformer_base_8x224_{s}": dict(img_size=(40, 24), num_frames=3)
       for s in ("space_only", "joint_space_time", "divided_space_time", "local_global", "axial")},
    "mvit_base_16x4": dict(img_size=(40, 24), num_frames=5),               # 3×10×6 -> pooled 3×5×3
    "mvitv2_small_16x4": dict(img_size=(40, 24), num_frames=5),
    "mvitv2_tiny": dict(img_size=(40, 24)),                                # 10×6 -> pooled 5×3
    "resnet_tiny_cifar": dict(img_size=(20, 12)),
}
CASES = [pytest.param(name, extra, id=f"{name}-{size}")
         for name, odd in ODD.items() for size, extra in (("even", {}), ("odd", odd))]


def test_every_family_is_covered():
    from vitkit.registry import _MODELS

    family = lambda name: _MODELS[name].__module__  # one module per family
    assert {family(n) for n in vitkit.list_models()} == {family(n) for n in ODD}


def _input_dims(path) -> list:
    """The exported graph's input dims: an int where fixed, the axis name where dynamic."""
    import onnx

    dims = onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim
    return [d.dim_param or d.dim_value for d in dims]


@pytest.mark.parametrize("name,extra", CASES)
def test_onnx_export_matches(name, extra, tmp_path):
    overrides = tiny_overrides(name)
    if "depth" in overrides:
        overrides["depth"] = 1  # one block shows every op of a block; a second only lengthens the trace
    model = vitkit.create_model(name, **{**overrides, **extra})
    path = tmp_path / f"{name}.onnx"
    diff = export_onnx(model, path, batch_size=2)  # checked at batch 3 (and other sizes on free axes)
    assert diff is not None and diff <= 1e-4
    # the graph leaves free exactly the axes `onnx_dynamic_axes` (and `vitkit export --help`) promise
    shape = (2, *model.input_shape())
    names = ["batch", "channels", "frames", "height", "width"] if len(shape) == 5 else \
        ["batch", "channels", "height", "width"]
    free = onnx_dynamic_axes(model)
    assert _input_dims(path) == [n if n in free else s for n, s in zip(names, shape)]


@pytest.mark.parametrize("name,free", [("vit_tiny_patch16_224", ["batch"]),
                                       ("timesformer_base_8x224_space_only", ["batch", "frames"])])
def test_opset_17_traces_at_the_configured_size(name, free, tmp_path):
    """Below opset 18 (no antialiased Resize) position tables stay fixed; space-only TimeSformer keeps free frames."""
    model = vitkit.create_model(name, **tiny_overrides(name))
    path = tmp_path / "m.onnx"
    assert export_onnx(model, path, batch_size=2, opset=17) <= 1e-4
    assert [d for d in _input_dims(path) if isinstance(d, str)] == free == list(onnx_dynamic_axes(model, 17))


def test_issue_swin_padded_windows_export(tmp_path, capsys):
    """The reported case, through the CLI: stage 2 is a 9×9 map padded to 12×12 for its 6×6 (shifted) windows."""
    model = vitkit.create_model("swin_tiny_patch4_window7_224", img_size=72, depths=(2, 2), num_heads=(3, 6),
                                window_size=6, num_classes=5)
    vitkit.save_checkpoint(model, tmp_path / "swin.safetensors")
    assert main(["export", str(tmp_path / "swin.safetensors"), "--out", str(tmp_path / "swin.onnx")]) == 0
    printed = capsys.readouterr().out
    assert "(input 3×72×72, dynamic axes: batch)" in printed
    assert float(printed.rsplit(" ", 1)[1]) <= 1e-4


@pytest.mark.parametrize("name", ["cvt_13_224", "vit_tiny_patch16_224"])
def test_free_spatial_axes_run_at_other_sizes(name, tmp_path):
    """A graph with free height and width runs at sizes it was not traced at, non-square and odd ones and the
    configured one included (ViT: its position table is resampled inside the graph)."""
    model = vitkit.create_model(name, **tiny_overrides(name)).eval()
    path = tmp_path / "m.onnx"
    export_onnx(model, path, check=False)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for shape in [(3, 3, 32, 32), (1, 3, 48, 16), (2, 3, 24, 72)]:
        x = torch.randn(shape)
        (out,) = session.run(["logits"], {"input": x.numpy()})
        with torch.no_grad():
            torch.testing.assert_close(torch.from_numpy(out), model(x), atol=1e-4, rtol=0)


def test_antialiased_resampling_needs_opset_18(tmp_path):
    # MViT v1 at an image size its patch stride does not divide resamples its table at every forward
    model = vitkit.create_model("mvit_base_16x4", **{**tiny_overrides("mvit_base_16x4"), "img_size": (42, 30)})
    with pytest.raises(ConfigError, match="use --opset 18"):
        export_onnx(model, tmp_path / "m.onnx", opset=17)
    assert export_onnx(model, tmp_path / "m.onnx", batch_size=2) <= 1e-4
    assert onnx_dynamic_axes(model, opset=17) == ("batch",)


def test_export_help_names_the_dynamic_axes(capsys):
    assert main(["export", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "batch is dynamic for every family" in text and "local-global" in text and "Swin" in text
