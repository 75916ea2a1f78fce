"""Invalid head/width/window/stride combinations, one or two per family, are caught by the family's
`validate_config` before anything is built: `vitkit train --override ...` prints one line and exits 2."""

import pytest

from vitkit.cli import main

CASES = {  # model, overrides -> part of the one sentence expected
    "vit heads": ("vit_tiny_patch16_224", ["num_heads=5"], "embed_dim 192 is not divisible by num_heads 5"),
    "vit patch": ("vit_tiny_patch16_224", ["img_size=40", "patch_size=16"], "img_size 40 is not divisible by the patch size"),
    "deit pool": ("deit_tiny_distilled_patch16_224", ["global_pool=max"], "global_pool must be 'token' or 'avg', got 'max'"),
    "swin heads": ("swin_tiny_patch4_window7_224", ["num_heads=[3,6,12,25]"], "num_heads[3] = 25"),
    "swin window": ("swin_tiny_patch4_window7_224", ["img_size=32", "window_size=12"], "window_size 12 cannot fit"),
    "cvt heads": ("cvt_13_224", ["num_heads=[1,3,5]"], "embed_dims[2] 384 is not divisible by num_heads[2] 5"),
    "cvt stride": ("cvt_13_224", ["stride_kv=0"], "stride_kv 0 must be positive"),
    "cvt stages": ("cvt_13_224", ["depths=[1,2]"], "one value per stage"),
    "mvit heads": ("mvit_base_16x4", ["num_heads=5"], "embed_dim 96 is not divisible by num_heads 5"),
    "mvit strides": ("mvitv2_tiny", ["img_size=16"], "too small for the strides of 4 stages"),
    "mvit pool": ("mvitv2_tiny", ["pool_stride_q=[2,0]"], "pool_stride_q (2, 0) must be positive in every entry"),
    "cnn widths": ("resnet_tiny_cifar", ["widths=[8,16]"], "must be non-empty and of equal length"),
    "cnn stride": ("resnet_tiny_cifar", ["stem_stride=0"], "stem_stride 0 must be positive"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_invalid_config_is_one_line_and_exit_2(case, tmp_path, capsys):
    model, overrides, expected = CASES[case]
    args = ["train", "--model", model, "--epochs", "1", "--limit", "8", "--no-progress", "--out", str(tmp_path)]
    rc = main([*args, *(a for o in overrides for a in ("--override", o))])
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert rc == 2, captured
    assert len(lines) == 1 and expected in lines[0] and "Traceback" not in captured.out + captured.err, lines
