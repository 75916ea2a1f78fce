"""Recipes as files: every shipped recipe loads, validates and starts (a few steps at a tiny size on generated
data, with its own teacher and init kind: timm's regnety_160 layout for DeiT, the original ViT-B/16 layouts for
the video papers, random weights) and resolves its lr by its rule; an unknown key is one error listing the valid
ones; `--config` then `--resume` uses the saved settings."""

from pathlib import Path

import numpy as np
import pytest
import timm
import torch
import yaml
from PIL import Image
from tiny import tiny_overrides

import vitkit
from vitkit.cli import main
from vitkit.errors import ConfigError
from vitkit.train.config_file import load_config
from vitkit.train.run import TrainConfig

RECIPES = sorted((Path(__file__).parent.parent / "recipes").glob("*.yaml"))
SHIPPED = {"deit_small_distilled_imagenet", "deit_base_distilled_imagenet", "swin_tiny_imagenet", "cvt_13_imagenet",
           "timesformer_divided_8x224_k400", "vivit_b_factorised_encoder_k400", "mvitv2_small_imagenet"}


def _image_folder(root: Path) -> Path:
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for c in ("cat", "dog"):
            (root / split / c).mkdir(parents=True)
            for i in range(2):
                Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(root / split / c / f"{i}.png")
    return root


def _random_regnety_160(num_classes: int) -> dict:
    """A state dict in timm's regnety_160 layout with small random weights (faster than timm's init)."""
    with torch.device("meta"):
        layout = timm.create_model("regnety_160", num_classes=num_classes).state_dict()
    g = torch.Generator().manual_seed(0)
    return {k: torch.ones(v.shape) if k.endswith("running_var") else torch.zeros(v.shape, dtype=v.dtype)
            if v.dtype == torch.long else torch.randn(v.shape, generator=g) * 0.02 for k, v in layout.items()}


def test_the_papers_recipes_are_shipped():
    assert {p.stem for p in RECIPES} == SHIPPED


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.stem)
def test_recipe_loads_validates_and_starts(tmp_path, recipe):
    settings = load_config(recipe)
    cfg = TrainConfig(**settings)
    cfg.validate()
    tiny = {k: v for k, v in tiny_overrides(cfg.model).items() if k != "num_classes"}
    video = "num_frames" in tiny and "mvit" not in recipe.stem
    argv = ["train", "--config", str(recipe), "--epochs", "1", "--limit", "2", "--batch-size", "2", "--precision",
            "fp32", "--device", "cpu", "--no-progress", "--out", str(tmp_path / "run"),
            "--data", "moving-digits" if video else str(_image_folder(tmp_path / "data")),
            *[f"--override={k}={list(v) if isinstance(v, tuple) else v}" for k, v in tiny.items()]]
    if cfg.teacher:  # DeiT's own: RegNetY-16GF from a file in timm's regnety_160 layout (as regnety_160.pth)
        assert cfg.teacher == "tv:regnet_y_16gf"
        torch.save({"model": _random_regnety_160(num_classes=2)}, tmp_path / "t.pth")
        argv += ["--teacher-weights", str(tmp_path / "t.pth")]
    if cfg.init:  # the recipe's own kind: the original ViT-B/16 layout (orig_in21k: no head), at the tiny width
        head = 0 if cfg.init.endswith("orig_in21k.pth") else 1000
        vit = timm.create_model("vit_tiny_patch16_224", img_size=32, patch_size=8, embed_dim=tiny["embed_dim"],
                                depth=tiny["depth"], num_heads=tiny["num_heads"], num_classes=head)
        torch.save(vit.state_dict(), tmp_path / Path(cfg.init).name)
        argv += ["--init", str(tmp_path / Path(cfg.init).name)]
    assert main(argv) == 0
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved["model"] == cfg.model and saved["epochs"] == 1
    assert saved["lr"] == pytest.approx(cfg.lr_base * 2 / cfg.lr_base_size)  # the rule at 2 images × 1 process
    assert saved["teacher"] == cfg.teacher and saved["init"] == (cfg.init and str(tmp_path / Path(cfg.init).name))
    assert vitkit.load_checkpoint(tmp_path / "run" / "model.safetensors").model_name == cfg.model


def test_unknown_key_lists_the_valid_ones(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: vit_tiny_patch16_224\nlearning_rate: 0.1\n")
    with pytest.raises(ConfigError, match=r"unknown key learning_rate; valid keys are model, data, .*\blr\b"):
        load_config(bad)
    assert main(["train", "--config", str(bad)]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_config_then_resume_uses_the_saved_settings(tmp_path, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump({"model": "vit_tiny_patch16_224", "epochs": 1, "batch_size": 8, "limit": 8,
                                      "lr": 3e-3, "label_smoothing": 0.2, "ema": 0.9,
                                      "overrides": {"img_size": 16, "patch_size": 8, "embed_dim": 24, "depth": 1,
                                                    "num_heads": 2}}))
    out = str(tmp_path / "run")
    assert main(["train", "--config", str(recipe), "--out", out, "--seed", "3", "--no-progress"]) == 0
    saved = load_config(Path(out) / "config.yaml")
    assert (saved["lr"], saved["label_smoothing"], saved["seed"], saved["ema"]) == (3e-3, 0.2, 3, 0.9)
    # --resume alone picks up every saved setting (a default would differ: lr, smoothing, seed, EMA, overrides)
    assert main(["train", "--out", out, "--resume", "--no-progress"]) == 0
    # a flag given with --resume overrides the saved value and is named
    assert main(["train", "--out", out, "--resume", "--lr", "0.1"]) == 2
    assert "lr (0.003 -> 0.1)" in capsys.readouterr().err
    assert main(["train", "--out", out, "--resume", "--epochs", "2", "--force", "--no-progress"]) == 0
    assert load_config(Path(out) / "config.yaml")["epochs"] == 2
    assert (Path(out) / "curves.png").stat().st_size > 1000


def test_deit_recipes_carry_table_9s_augmentation():
    for name in ("deit_small_distilled_imagenet", "deit_base_distilled_imagenet"):
        cfg = TrainConfig(**load_config(Path(__file__).parent.parent / "recipes" / f"{name}.yaml"))
        assert (cfg.randaugment, cfg.reprob, cfg.mixup, cfg.cutmix, cfg.repeated_aug) == (
            "rand-m9-mstd0.5-inc1", 0.25, 0.8, 1.0, 3)
