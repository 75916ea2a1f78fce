"""DeiT's teacher: timm's regnety_160 (the layout of DeiT's regnety_160.pth) converted to torchvision's
regnet_y_16gf gives the same logits (random weights, a small input), and such a file teaches through
`--teacher tv:regnet_y_16gf --teacher-weights regnety_160.pth`."""

import timm
import torch

from vitkit.convert.regnet import is_timm_regnet, regnet_from_timm
from vitkit.train.teacher import build_teacher


def _timm_regnety_160(num_classes: int = 10) -> torch.nn.Module:
    torch.manual_seed(0)
    model = timm.create_model("regnety_160", num_classes=num_classes).eval()
    with torch.no_grad():  # non-trivial batch-norm statistics, so a swapped bn would show
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.1, 0.1)
    return model


def test_timm_regnety_160_converts_to_torchvision_regnet_y_16gf(tmp_path):
    ref = _timm_regnety_160()
    sd = ref.state_dict()
    assert is_timm_regnet(sd)
    torch.save({"model": sd}, tmp_path / "regnety_160.pth")  # DeiT's file: {"model": state dict}
    teacher = build_teacher("tv:regnet_y_16gf", num_classes=10, weights=tmp_path / "regnety_160.pth")
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        want, got = ref(x), teacher(x)
    assert torch.allclose(got, want, atol=1e-5, rtol=0), (got - want).abs().max()
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())
    converted = regnet_from_timm(sd)
    assert set(converted) == set(teacher.state_dict())  # every key has its place, none left over
