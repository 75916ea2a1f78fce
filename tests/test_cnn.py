"""The small ResNet teacher and torchvision teachers by name."""

import pytest
import torch

import vitkit
from vitkit.errors import CheckpointError, ConfigError, InputError
from vitkit.train.teacher import build_teacher


def test_resnet_shapes_and_stem_stride():
    m = vitkit.create_model("resnet_tiny_cifar", num_classes=7, in_chans=1, widths=(8, 16, 32))
    x = torch.randn(2, 1, 32, 32)
    assert m(x).shape == (2, 7)
    # stride-2 stem then two stride-2 stages: 32 -> 16 -> 8 -> 4
    assert m.forward_features(x).shape == (2, 32, 4, 4)
    assert m.forward_head(m.forward_features(x), pre_logits=True).shape == (2, m.num_features)
    full = vitkit.create_model("resnet20_cifar", num_classes=10)
    assert full.forward_features(torch.randn(1, 3, 32, 32)).shape == (1, 64, 8, 8)


def test_resnet20_parameter_count_matches_he_et_al():
    # He et al. §4.2 Table 6: ResNet-20 on CIFAR-10 has 0.27M parameters (1×1 projection shortcuts here, so
    # slightly more than the paper's zero-padding shortcut A): count the layers by hand.
    m = vitkit.create_model("resnet20_cifar", num_classes=10)
    conv = lambda i, o, k=3: i * o * k * k
    bn = lambda c: 2 * c
    stem = conv(3, 16) + bn(16)
    stage1 = 3 * (2 * conv(16, 16) + 2 * bn(16))
    stage2 = (conv(16, 32) + conv(32, 32) + 2 * bn(32) + conv(16, 32, 1) + bn(32)) + 2 * (2 * conv(32, 32) + 2 * bn(32))
    stage3 = (conv(32, 64) + conv(64, 64) + 2 * bn(64) + conv(32, 64, 1) + bn(64)) + 2 * (2 * conv(64, 64) + 2 * bn(64))
    head = 64 * 10 + 10
    assert sum(p.numel() for p in m.parameters()) == stem + stage1 + stage2 + stage3 + head


def test_resnet_rejects_wrong_channels_and_bad_config():
    m = vitkit.create_model("resnet_tiny_cifar", in_chans=1)
    with pytest.raises(InputError, match="expected 1 input channels, got 3"):
        m(torch.randn(1, 3, 32, 32))
    with pytest.raises(ConfigError, match="equal length"):
        vitkit.create_model("resnet_tiny_cifar", widths=(8, 16), depths=(1,))
    with pytest.raises(ConfigError, match="unknown option 'depth'"):
        vitkit.create_model("resnet_tiny_cifar", depth=3)


def test_resnet_checkpoint_round_trip(tmp_path):
    m = vitkit.create_model("resnet_tiny_cifar", num_classes=4, widths=(8, 8, 8)).eval()
    vitkit.save_checkpoint(m, tmp_path / "t.safetensors")
    back = build_teacher(str(tmp_path / "t.safetensors"), num_classes=4)
    x = torch.randn(2, 3, 16, 16)
    assert torch.equal(m(x), back(x))
    assert not back.training and not any(p.requires_grad for p in back.parameters())


def test_torchvision_teacher_by_name_and_local_weights(tmp_path):
    import torchvision

    ref = torchvision.models.get_model("resnet18", weights=None, num_classes=5).eval()
    torch.save(ref.state_dict(), tmp_path / "r18.pth")
    t = build_teacher("tv:resnet18", num_classes=5, weights=tmp_path / "r18.pth")
    x = torch.randn(1, 3, 32, 32)
    assert torch.equal(ref(x), t(x))
    with pytest.raises(ConfigError, match="unknown torchvision classification model 'resnet19'"):
        build_teacher("tv:resnet19", num_classes=5)
    with pytest.raises(CheckpointError, match="does not match torchvision resnet34"):
        build_teacher("tv:resnet34", num_classes=5, weights=tmp_path / "r18.pth")
