import pytest
import torch

import vitkit
from vitkit.errors import CheckpointError, ConfigError, InputError
from vitkit.registry import register_model

SPEC_NAMES = [
    "vit_tiny_patch16_224", "vit_small_patch16_224", "vit_base_patch16_224", "vit_base_patch32_224",
    "vit_base_patch16_384", "vit_large_patch16_224", "vit_large_patch32_224", "vit_huge_patch14_224",
    "deit_tiny_patch16_224", "deit_small_patch16_224", "deit_base_patch16_224", "deit_base_patch16_384",
    "deit_tiny_distilled_patch16_224", "deit_small_distilled_patch16_224", "deit_base_distilled_patch16_224",
    "deit_base_distilled_patch16_384",
]


def test_spec_names_registered():
    assert set(SPEC_NAMES) <= set(vitkit.list_models())
    assert vitkit.list_models("deit_*_distilled*") == sorted(n for n in SPEC_NAMES if "distilled" in n)


def test_duplicate_registration_raises():
    def vit_tiny_patch16_224(**overrides):
        raise AssertionError

    with pytest.raises(ValueError, match="registered twice"):
        register_model(vit_tiny_patch16_224)


def test_unknown_name_suggests():
    with pytest.raises(ConfigError, match="did you mean vit_tiny_patch16_224"):
        vitkit.create_model("vit_tiny_patch16_244")


def test_unknown_override_lists_valid_keys():
    with pytest.raises(ConfigError, match=r"unknown option 'embed_dimm'.*valid options are: .*embed_dim"):
        vitkit.create_model("vit_tiny_patch16_224", embed_dimm=3)


def test_bad_inputs_one_sentence():
    m = vitkit.create_model("vit_tiny_patch16_224", img_size=32, patch_size=8, depth=1)
    with pytest.raises(InputError, match=r"not divisible by the patch size \(8, 8\)"):
        m(torch.randn(1, 3, 30, 32))
    with pytest.raises(InputError, match="expected 3 input channels, got 1"):
        m(torch.randn(1, 1, 32, 32))
    with pytest.raises(InputError, match=r"expected an image batch \(B, C, H, W\)"):
        m(torch.randn(3, 32, 32))


def test_other_input_size_resamples_position_embedding():
    m = vitkit.create_model("vit_tiny_patch16_224", img_size=32, patch_size=8, depth=1, num_classes=4).eval()
    assert m(torch.randn(2, 3, 48, 64)).shape == (2, 4)


def test_checkpoint_errors(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        vitkit.create_model("vit_tiny_patch16_224", checkpoint=tmp_path / "nope.pth")
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="could not be read"):
        vitkit.create_model("vit_tiny_patch16_224", checkpoint=bad)
    small = vitkit.create_model("vit_tiny_patch16_224", depth=1, num_classes=3)
    path = tmp_path / "small.safetensors"
    vitkit.save_checkpoint(small, path)
    with pytest.raises(CheckpointError, match="does not match model vit_tiny_patch16_224: .*missing keys"):
        vitkit.create_model("vit_tiny_patch16_224", depth=2, num_classes=3, checkpoint=path)
    with pytest.raises(CheckpointError, match="shape mismatches"):
        vitkit.create_model("vit_tiny_patch16_224", depth=1, num_classes=5, checkpoint=path)
    # and the right model loads it, auto-detected as vitkit's own layout
    same = vitkit.create_model("vit_tiny_patch16_224", depth=1, num_classes=3, checkpoint=path)
    torch.testing.assert_close(same.head.weight, small.head.weight)


def test_load_checkpoint_without_metadata(tmp_path):
    m = vitkit.create_model("vit_tiny_patch16_224", depth=1)
    path = tmp_path / "plain.pth"
    torch.save(m.state_dict(), path)
    with pytest.raises(CheckpointError, match="no vitkit metadata"):
        vitkit.load_checkpoint(path)
