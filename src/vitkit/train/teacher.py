"""Choosing a DeiT teacher (arXiv 2012.12877, §5.2: a convnet teacher beats a transformer one): a vitkit
checkpoint file, a registered vitkit model name (random init or a weights file), or "tv:<name>" for any
torchvision classification model (random init or a local state-dict file; timm's RegNet layout, as DeiT's
regnety_160.pth, is converted for torchvision's RegNets). The teacher is returned frozen in eval mode;
`DistillationLoss` keeps it out of the student's optimiser and state dict.
"""

from __future__ import annotations

import difflib
from pathlib import Path

from torch import nn

from ..checkpoint import read_state_dict
from ..convert.regnet import is_timm_regnet, regnet_from_timm
from ..errors import CheckpointError, ConfigError
from ..registry import create_model, load_checkpoint

TORCHVISION_PREFIX = "tv:"


def torchvision_model(name: str, num_classes: int, weights: str | Path | None = None) -> nn.Module:
    """A torchvision classification model by name (random init, or a local state-dict file), as a teacher."""
    import torchvision  # only when a torchvision teacher is asked for

    available = torchvision.models.list_models(module=torchvision.models)
    if name not in available:
        close = difflib.get_close_matches(name, available, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ConfigError(f"unknown torchvision classification model {name!r}{hint}")
    model = torchvision.models.get_model(name, weights=None, num_classes=num_classes)
    if weights is not None:
        sd, _ = read_state_dict(weights)
        if name.startswith("regnet") and is_timm_regnet(sd):  # DeiT's teacher file (timm's regnety_160)
            sd = regnet_from_timm(sd)
        missing, unexpected = model.load_state_dict(sd, strict=False)
        if missing or unexpected:
            raise CheckpointError(f"{str(weights)!r} does not match torchvision {name}: {len(missing)} missing and "
                                  f"{len(unexpected)} unexpected keys (e.g. {', '.join((missing + unexpected)[:3])})")
    return model


def build_teacher(spec: str, num_classes: int, weights: str | Path | None = None, **overrides) -> nn.Module:
    """A teacher from a vitkit checkpoint file, a vitkit model name (with overrides and optional weights), or
    "tv:<name>" for a torchvision model. Returned in eval mode with gradients off."""
    if spec.startswith(TORCHVISION_PREFIX):
        model = torchvision_model(spec[len(TORCHVISION_PREFIX):], num_classes, weights)
    elif spec.endswith((".safetensors", ".pth", ".pt")) or Path(spec).is_file():
        model = load_checkpoint(spec)
    else:
        model = create_model(spec, checkpoint=str(weights) if weights else None, num_classes=num_classes, **overrides)
    model.eval().requires_grad_(False)
    return model
