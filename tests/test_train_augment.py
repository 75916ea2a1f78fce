"""Training with DeiT's augmentation recipe through the CLI (RandAugment, random erasing, Mixup/CutMix with
soft targets, repeated augmentation, hard distillation), and every bad augmentation flag: one sentence, exit 2."""

import pytest
from test_cli import TINY_DEIT, assert_one_line_error, run


def test_deit_recipe_on_digits_trains_end_to_end(capsys, tmp_path):
    code, out, err = run(capsys, "train", "--model", "deit_tiny_distilled_patch16_224", *TINY_DEIT, "--epochs", "1",
                         "--limit", "96", "--batch-size", "32", "--mixup", "0.8", "--cutmix", "1.0", "--randaugment",
                         "2,9", "--reprob", "0.25", "--repeated-aug", "3", "--distill", "hard", "--teacher",
                         "resnet_tiny_cifar", "--override", "drop_path_rate=0.1", "--out", str(tmp_path / "r"),
                         "--no-progress")
    assert code == 0, err
    assert (tmp_path / "r" / "model.safetensors").is_file() and "val acc" in out
    rows = (tmp_path / "r" / "metrics.csv").read_text().splitlines()
    assert len(rows) == 2 and "nan" not in rows[1]


@pytest.mark.parametrize("argv,match", [
    (["--randaugment", "2"], "--aa expects rand[-m<0-10>]"),
    (["--randaugment", "2,40"], "a magnitude m in 0..mmax"),
    (["--aa", "rand-m9-mstd0.5-inc2"], "--aa 'rand-m9-mstd0.5-inc2' is out of range"),
    (["--aa", "augmix-m5"], "--aa expects rand[-m<0-10>]"),
    (["--reprob", "1.5"], "--reprob must be a probability in [0, 1], got 1.5"),
    (["--mixup", "0.8", "--mix-prob", "2"], "--mix-prob must be a probability in [0, 1], got 2.0"),
    (["--cutmix", "1", "--switch-prob", "-0.5"], "--switch-prob must be a probability in [0, 1], got -0.5"),
    (["--repeated-aug", "0"], "--repeated-aug"),
])
def test_bad_augmentation_flags(capsys, argv, match):
    code, _, err = run(capsys, "train", "--model", "deit_tiny_patch16_224", *TINY_DEIT, "--epochs", "1", *argv)
    assert_one_line_error(code, err, match)


def test_video_folder_training_with_uniform_sampling_and_mixing(capsys, tmp_path):
    from test_video_data import TINY_TIMESFORMER, noise_video_folder

    noise_video_folder(tmp_path / "v")
    code, out, err = run(capsys, "train", *TINY_TIMESFORMER, "--data",
                         str(tmp_path / "v"), "--epochs", "1", "--batch-size", "2", "--sampling", "uniform",
                         "--mixup", "0.5", "--cutmix", "1.0", "--randaugment", "1,5", "--workers", "0",
                         "--out", str(tmp_path / "r"), "--no-progress")
    assert code == 0 and "val acc" in out, err


def test_repeated_copies_are_augmented_apart_and_batches_mix_the_same_after_a_resume():
    import torch

    from vitkit.data import build_dataset
    from vitkit.data.mixing import BatchMix
    from vitkit.train.data import build_loaders
    from vitkit.train.distributed import DistInfo

    digits = build_dataset("digits", "train", (1, 16, 16), randaugment=(2, 9))
    loaders = build_loaders(torch.utils.data.Subset(digits, range(16)), digits, 8, DistInfo(), seed=3, repeated_aug=3,
                            mix=BatchMix(10, 0.8, 1.0))
    loaders.start_epoch(1)
    keys = list(loaders.sampler)
    assert len(keys) == 16 and keys[0][1] == keys[1][1] == keys[2][1]  # one image's three copies, side by side
    copies = [loaders.samples[k][0] for k in keys[:3]]
    assert not torch.equal(copies[0], copies[1]) and not torch.equal(copies[1], copies[2])
    assert torch.equal(loaders.samples[keys[1]][0], copies[1])  # a copy's augmentation is fixed by its position
    _, y = next(iter(loaders.train))
    assert y.shape == (8, 10) and torch.allclose(y.sum(1), torch.ones(8)) and (y.max(1).values < 1).any()
    loaders.start_epoch(1, step=1)  # resumed after the first batch: the second batch and its mixing draws repeat
    torch.manual_seed(123)
    resumed = next(iter(loaders.train))
    loaders.start_epoch(1)
    second = list(loaders.train)[1]
    assert torch.equal(resumed[0], second[0]) and torch.equal(resumed[1], second[1])


def test_an_image_folder_run_follows_the_models_data_config(capsys, tmp_path):
    import json

    from test_data import _make_folder

    root = _make_folder(tmp_path / "data", size=(40, 30))
    code, _, err = run(capsys, "train", "--model", "vit_tiny_patch16_224", "--override", "img_size=16", "--override",
                       "patch_size=8", "--override", "embed_dim=16", "--override", "depth=1", "--override", "num_heads=2",
                       "--data", str(root), "--epochs", "1", "--batch-size", "2", "--randaugment", "2,9", "--reprob",
                       "0.25", "--out", str(tmp_path / "r"), "--no-progress")
    assert code == 0, err
    info = json.loads((tmp_path / "r" / "data.json").read_text())
    assert info["mean"] == info["std"] == [0.5, 0.5, 0.5] and info["classes"] == ["cat", "dog"]  # augreg's, not ImageNet's
