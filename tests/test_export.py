"""Every registered family exports to ONNX and onnxruntime agrees with PyTorch at another batch size."""

import pytest
from tiny import tiny_overrides

import vitkit
from vitkit.tools.export import export_onnx

# one representative per family and per attention scheme (the whole registry would repeat the same graphs)
NAMES = ["vit_tiny_patch16_224", "deit_tiny_distilled_patch16_224", "swin_tiny_patch4_window7_224", "cvt_13_224",
         "vivit_base_16x2_spatiotemporal", "vivit_base_16x2_factorised_encoder",
         "vivit_base_16x2_factorised_self_attention", "vivit_base_16x2_factorised_dot_product",
         "timesformer_base_8x224_space_only", "timesformer_base_8x224_divided_space_time",
         "timesformer_base_8x224_local_global", "timesformer_base_8x224_axial", "mvit_base_16x4",
         "mvitv2_small_16x4", "mvitv2_tiny"]


@pytest.mark.parametrize("name", NAMES)
def test_onnx_export_matches(name, tmp_path):
    pytest.importorskip("onnxruntime")
    model = vitkit.create_model(name, **tiny_overrides(name))
    diff = export_onnx(model, tmp_path / f"{name}.onnx")
    assert diff is not None and diff <= 1e-4
