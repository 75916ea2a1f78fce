"""What the video families share: an invalid configuration is one ConfigError sentence (one line and exit 2 from the
CLI, before any data is read), a bad clip is one InputError, and the model files sit below convert/,
checkpoint.py and train/."""

import ast
import pathlib

import pytest
import torch

import vitkit.models
from vitkit.cli import main
from vitkit.errors import InputError

VIVIT, TIMESFORMER = "vivit_base_16x2_spatiotemporal", "timesformer_base_8x224_divided_space_time"


@pytest.mark.parametrize("name, overrides, match", [
    (VIVIT, ["num_heads=5"], "embed_dim 768 is not divisible by num_heads 5"),
    (VIVIT, ["num_frames=7"], "num_frames 7 is not divisible by tubelet_size 2"),
    ("vivit_base_16x2_factorised_dot_product", ["num_heads=3", "embed_dim=48"], "num_heads 3 is odd"),
    (VIVIT, ["variant=joint"], "variant must be"),
    ("vivit_base_16x2_factorised_encoder", ["img_size=200"], "img_size 200 is not divisible by the patch size (patch_size 16)"),
    (TIMESFORMER, ["num_heads=5"], "embed_dim 768 is not divisible by num_heads 5"),
    (TIMESFORMER, ["attention_type=divided"], "attention_type must be"),
    ("timesformer_base_8x224_axial", ["img_size=100"], "img_size 100 is not divisible by the patch size (patch_size 16)"),
])
def test_cli_invalid_config_is_one_line_exit_2(capsys, name, overrides, match):
    code = main(["train", "--model", name, *(a for o in overrides for a in ("--override", o))])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and match in lines[0], err


@pytest.mark.parametrize("name", [*vitkit.list_models("vivit_base_*"), *vitkit.list_models("timesformer_base_*")])
def test_bad_clip_is_one_input_error(name):
    tiny = dict(img_size=32, patch_size=8, num_frames=4, embed_dim=32, depth=1, num_heads=4)
    model = vitkit.create_model(name, **tiny, **({"temporal_depth": 1} if "vivit" in name else {}))
    with pytest.raises(InputError, match=r"expected a video batch \(B, C, T, H, W\)"):
        model(torch.randn(1, 3, 32, 32))
    with pytest.raises(InputError, match="3 input channels"):
        model(torch.randn(1, 1, 4, 32, 32))
    with pytest.raises(InputError, match="not divisible by the patch size"):
        model(torch.randn(1, 3, 4, 30, 32))


@pytest.mark.parametrize("family", ["vivit", "timesformer"])
def test_video_family_imports_only_layers_and_the_registry(family):
    """Initialising from image weights is conversion work (convert/video_init.py), not model code."""
    path = pathlib.Path(vitkit.models.__file__).parent / f"{family}.py"
    imported = {(n.module or "", tuple(a.name for a in n.names)) for n in ast.walk(ast.parse(path.read_text()))
                if isinstance(n, ast.ImportFrom) and n.level > 0}
    for module, names in imported:
        assert not module.startswith(("convert", "checkpoint", "train")), module
        if module == "registry":
            assert set(names) <= {"register_model", "build_config"}, names
