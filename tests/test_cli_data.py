"""The CLI's data options end to end: multi-view video eval, predict with a model's data config, and bad data
flags as one sentence with exit 2."""

import numpy as np
import pytest
import torch
from PIL import Image
from test_cli import assert_one_line_error, run
from test_video_data import _write_noise_video

import vitkit


@pytest.fixture(scope="module")
def video_setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("videos")
    for c in ("a", "b"):
        (root / "data" / c).mkdir(parents=True)
        _write_noise_video(root / "data" / c / "v.mp4", 20, size=(24, 32), seed=ord(c))
    model = vitkit.create_model("timesformer_base_8x224_divided_space_time", img_size=16, patch_size=8, num_frames=4,
                                embed_dim=16, depth=1, num_heads=2, num_classes=2)
    vitkit.save_checkpoint(model, root / "m.safetensors")
    return root


def test_eval_with_test_views(capsys, video_setup):
    ckpt, data = str(video_setup / "m.safetensors"), str(video_setup / "data")
    code, out, err = run(capsys, "eval", ckpt, "--data", data, "--test-views", "2x3", "--frame-stride", "2",
                         "--batch-size", "2")
    assert code == 0 and "(2 samples, 2x3 views): top-1" in out, err
    code, out, err = run(capsys, "eval", ckpt, "--data", data, "--sampling", "uniform")
    assert code == 0, err
    for views, match in (("0x3", "at least 1 temporal and 1 spatial view"), ("4by3", "--test-views expects TxS"),
                         ("30x1", "has 20 frames, too few for 30 different clips")):
        code, _, err = run(capsys, "eval", ckpt, "--data", data, "--test-views", views)
        assert_one_line_error(code, err, match)


def test_test_views_on_an_image_model(capsys, tmp_path):
    model = vitkit.create_model("deit_tiny_patch16_224", img_size=16, patch_size=4, embed_dim=16, depth=1,
                                num_heads=2, num_classes=10)
    vitkit.save_checkpoint(model, tmp_path / "m.safetensors")
    code, _, err = run(capsys, "eval", str(tmp_path / "m.safetensors"), "--test-views", "1x3")
    assert_one_line_error(code, err, "is for evaluating video models")


def test_predict_uses_the_models_data_config(capsys, tmp_path):
    from vitkit.data import prediction_inputs

    model = vitkit.create_model("vit_tiny_patch16_224", img_size=32, patch_size=8, embed_dim=16, depth=1,
                                num_heads=2, num_classes=3)
    f = tmp_path / "x.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 60, 3), dtype=np.uint8)).save(f)
    cfg = vitkit.data_config(model)
    x, _ = prediction_inputs([str(f)], model.input_shape(), data_cfg=cfg)
    ref = vitkit.create_transform(cfg)(Image.open(f).convert("RGB"))
    assert torch.equal(x[0], ref)
    # Inception statistics (timm's ViT weights): [0, 255] maps to [-1, 1]
    assert x.min() >= -1 - 1e-6 and x.max() <= 1 + 1e-6 and x.min() < -0.5
    vitkit.save_checkpoint(model, tmp_path / "m.safetensors")
    code, out, err = run(capsys, "predict", str(tmp_path / "m.safetensors"), str(f), "--topk", "2")
    assert code == 0 and out.startswith(f"{f}: "), err
