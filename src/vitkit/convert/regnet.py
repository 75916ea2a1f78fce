"""timm's RegNet (`regnety_160`, the layout of DeiT's teacher file regnety_160.pth) -> torchvision's RegNet
(`regnet_y_16gf`): the same network (Radosavovic et al., arXiv 2003.13678: RegNetY-16GF, w0 200, wa 106.23,
wm 2.48, group width 112, depth 18, SE ratio 0.25), so the conversion is a renaming of keys."""

from __future__ import annotations

import re

from . import StateDict, rename_keys


def _block(m: re.Match) -> str:
    stage, block = int(m.group(1)), int(m.group(2))
    return f"trunk_output.block{stage}.block{stage}-{block - 1}."


_TIMM_REGNET = [
    (r"^stem\.conv\.", "stem.0."),
    (r"^stem\.bn\.", "stem.1."),
    (r"^s(\d+)\.b(\d+)\.", _block),
    (r"\.conv1\.conv\.", ".f.a.0."), (r"\.conv1\.bn\.", ".f.a.1."),
    (r"\.conv2\.conv\.", ".f.b.0."), (r"\.conv2\.bn\.", ".f.b.1."),
    (r"\.conv3\.conv\.", ".f.c.0."), (r"\.conv3\.bn\.", ".f.c.1."),
    (r"\.se\.fc([12])\.", r".f.se.fc\1."),
    (r"\.downsample\.conv\.", ".proj.0."), (r"\.downsample\.bn\.", ".proj.1."),
    (r"^head\.fc\.", "fc."),
]


def is_timm_regnet(sd: StateDict) -> bool:
    return "stem.conv.weight" in sd and "s1.b1.conv1.conv.weight" in sd


def regnet_from_timm(sd: StateDict) -> StateDict:
    """timm RegNet keys (stem.conv, s{i}.b{j}.conv{1,2,3}.{conv,bn}, se.fc{1,2}, downsample, head.fc) ->
    torchvision's (stem.{0,1}, trunk_output.block{i}.block{i}-{j-1}.f.{a,b,c}.{0,1}, f.se, proj, fc)."""
    return rename_keys(sd, _TIMM_REGNET)
