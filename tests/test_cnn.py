"""The small ResNet (the default DeiT teacher): shapes, parameter count, bad inputs."""

import pytest
import torch

import vitkit
from vitkit.errors import ConfigError, InputError


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
