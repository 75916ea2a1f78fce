"""The video families' configuration contract: an invalid configuration is one ConfigError sentence (one line and
exit 2 from the CLI, before any data is read), and the model files sit below convert/, checkpoint.py and train/."""

import ast
import pathlib

import pytest

import vitkit.models
from vitkit.cli import main

VIVIT, TIMESFORMER = "vivit_base_16x2_spatiotemporal", "timesformer_base_8x224_divided_space_time"


@pytest.mark.parametrize("name, overrides, match", [
    (VIVIT, ["num_heads=5"], "embed_dim 768 is not divisible by num_heads 5"),
    (VIVIT, ["num_frames=7"], "num_frames 7 is not divisible by tubelet_size 2"),
    ("vivit_base_16x2_factorised_dot_product", ["num_heads=3", "embed_dim=48"], "num_heads 3 is odd"),
    (VIVIT, ["variant=joint"], "variant must be"),
    ("vivit_base_16x2_factorised_encoder", ["img_size=200"], "img_size 200 is not a multiple of patch_size 16"),
    (TIMESFORMER, ["num_heads=5"], "embed_dim 768 is not divisible by num_heads 5"),
    (TIMESFORMER, ["attention_type=divided"], "attention_type must be"),
    ("timesformer_base_8x224_axial", ["img_size=100"], "img_size 100 is not a multiple of patch_size 16"),
])
def test_cli_invalid_config_is_one_line_exit_2(capsys, name, overrides, match):
    code = main(["train", "--model", name, *(a for o in overrides for a in ("--override", o))])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and match in lines[0], err


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
