"""Tiny overrides per registry pattern, so every registered name can be built and run in a test.
First matching pattern wins; each family adds its line. Full sizes are built on the meta device (`meta_model`)."""

import fnmatch

import torch

import vitkit

TINY: dict[str, dict] = {
    "vit_*": dict(img_size=32, patch_size=8, embed_dim=48, depth=2, num_heads=3, num_classes=7),
    "deit_*": dict(img_size=32, patch_size=8, embed_dim=48, depth=2, num_heads=3, num_classes=7),
    "swin_*": dict(img_size=32, patch_size=2, embed_dim=16, depths=(2, 2, 2), num_heads=(1, 2, 4), window_size=4,
                   num_classes=7),
    "cvt_*": dict(img_size=32, embed_dims=(16, 32, 48), depths=(1, 1, 2), num_heads=(1, 2, 3), num_classes=7),
    "vivit_*": dict(img_size=32, patch_size=8, num_frames=4, tubelet_size=2, embed_dim=48, depth=2, temporal_depth=1,
                    num_heads=4, num_classes=7),
    "timesformer_*": dict(img_size=32, patch_size=8, num_frames=4, embed_dim=48, depth=2, num_heads=3, num_classes=7),
    "mvit*x*": dict(img_size=32, num_frames=4, embed_dim=16, depths=(1, 1), pool_stride_kv=(1, 4, 4), num_classes=7),
    "mvitv2_*": dict(img_size=32, embed_dim=16, depths=(1, 1), num_classes=7),
    "resnet*_cifar": dict(img_size=16, widths=(8, 16, 32), num_classes=7),
}


def tiny_overrides(name: str) -> dict:
    for pattern, overrides in TINY.items():
        if fnmatch.fnmatch(name, pattern):
            return dict(overrides)
    raise KeyError(f"no tiny overrides for {name}: add a pattern to tests/tiny.py")


def meta_model(name: str, **overrides) -> torch.nn.Module:
    """A registered model at full size on the meta device (no memory, no init): for parameter counts and GMACs."""
    with torch.device("meta"):
        return vitkit.create_model(name, **overrides).eval()
