"""Teachers for distillation (train/teacher.py): a vitkit checkpoint, or a torchvision model by name with local
weights; returned frozen in eval mode."""

import pytest
import torch

import vitkit
from vitkit.errors import CheckpointError, ConfigError
from vitkit.train.teacher import build_teacher


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
