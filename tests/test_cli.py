"""The `vitkit` command end to end on tiny configs, and every bad input: one line `error: ...`, exit 2."""

import subprocess
import sys

import pytest
import torch
from PIL import Image

import vitkit
from vitkit.cli import COMMANDS, _one_line, main, parse_override
from vitkit.data import Digits
from vitkit.errors import ConfigError, DataError

TINY_DEIT = ["--override", "img_size=16", "--override", "patch_size=4", "--override", "embed_dim=16",
             "--override", "depth=1", "--override", "num_heads=2"]


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code, err, match):
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert match in lines[0], lines[0]
    assert "Traceback" not in err


def test_help_for_every_command(capsys):
    assert run(capsys, "--help")[0] == 0
    for cmd in COMMANDS:
        code, out, _ = run(capsys, cmd, "--help")
        assert code == 0 and "usage: vitkit " + cmd in out


def test_list(capsys):
    code, out, _ = run(capsys, "list", "deit_tiny*")
    assert code == 0 and out.split() == ["deit_tiny_distilled_patch16_224", "deit_tiny_patch16_224"]


def _digit_png(path, i=0):
    img = (Digits("test", img_size=32, in_chans=1).images[i, 0] * 255).byte().numpy()
    Image.fromarray(img).save(path)
    return str(path)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 1-epoch CNN teacher and a hard-distilled tiny DeiT student, trained through the CLI."""
    root = tmp_path_factory.mktemp("cli")
    assert main(["train", "--model", "resnet_tiny_cifar", "--override", "widths=[4,8,8]", "--override", "img_size=16",
                 "--epochs", "1", "--limit", "64", "--batch-size", "32", "--out", str(root / "teacher"),
                 "--no-progress"]) == 0
    assert main(["train", "--model", "deit_tiny_distilled_patch16_224", *TINY_DEIT, "--epochs", "1", "--limit", "64",
                 "--batch-size", "32", "--distill", "hard", "--teacher", str(root / "teacher" / "model.safetensors"),
                 "--out", str(root / "student"), "--bf16", "--no-progress"]) == 0
    return root


def test_train_eval_predict(trained, capsys, tmp_path):
    student = trained / "student"
    assert {"model.safetensors", "last.pt", "metrics.csv", "data.json"} <= {p.name for p in student.iterdir()}
    code, out, _ = run(capsys, "eval", str(student / "model.safetensors"), "--split", "test")
    assert code == 0 and "top-1" in out and "(360 samples)" in out
    files = [_digit_png(tmp_path / "a.png", 0), _digit_png(tmp_path / "b.png", 1)]
    code, out, _ = run(capsys, "predict", str(student / "model.safetensors"), *files, "--topk", "3")
    lines = out.strip().splitlines()
    assert code == 0 and len(lines) == 2 and lines[0].startswith(files[0])
    assert len(lines[0].split(": ", 1)[1].split(", ")) == 3  # three "class prob" pairs
    # the probabilities of the top 3 are sorted and at most 1
    probs = [float(p.split()[1]) for p in lines[0].split(": ", 1)[1].split(", ")]
    assert probs == sorted(probs, reverse=True) and sum(probs) <= 1.0001


def test_resume_continues_a_run(trained, capsys):
    args = ["train", "--model", "resnet_tiny_cifar", "--override", "widths=[4,8,8]", "--override", "img_size=16",
            "--epochs", "1", "--limit", "64", "--batch-size", "32", "--out", str(trained / "teacher"), "--no-progress"]
    code, out, _ = run(capsys, *args, "--resume")  # already finished: nothing left to do, weights unchanged
    assert code == 0 and "after 1 epochs" in out


def test_torchvision_teacher_with_local_weights(capsys, tmp_path):
    import torchvision

    torch.save(torchvision.models.get_model("resnet18", weights=None, num_classes=10).state_dict(), tmp_path / "r.pth")
    code, _, err = run(capsys, *TRAIN, "--model", "deit_tiny_distilled_patch16_224", *TINY_DEIT, "--distill", "soft",
                         "--teacher", "tv:resnet18", "--teacher-weights", str(tmp_path / "r.pth"), "--out",
                         str(tmp_path / "s"))
    assert code == 0, err
    code, _, err = run(capsys, *TRAIN, "--model", "deit_tiny_distilled_patch16_224", *TINY_DEIT, "--distill", "hard",
                       "--teacher", "tv:resnet34", "--teacher-weights", str(tmp_path / "r.pth"), "--out",
                       str(tmp_path / "s2"))
    assert_one_line_error(code, err, "does not match torchvision resnet34")


def test_profile_table(capsys):
    code, out, _ = run(capsys, "profile", "deit_tiny_distilled_patch16_224", "resnet_tiny_cifar", "--no-throughput",
                       "--override", "img_size=32")
    assert code == 0 and "deit_tiny_distilled_patch16_224" in out and "GMACs" in out


def test_override_parsing():
    assert parse_override("depth=4") == ("depth", 4)
    assert parse_override("img_size=[32, 48]") == ("img_size", [32, 48])
    assert parse_override("qkv_bias=false") == ("qkv_bias", False)
    assert parse_override("global_pool=avg") == ("global_pool", "avg")
    assert parse_override("drop_rate=0.1") == ("drop_rate", 0.1)
    for bad in ("depth", "=3", "depth=[1,", "depth=3 4"):
        with pytest.raises(ConfigError):
            parse_override(bad)


def test_worker_errors_are_unwrapped_to_their_sentence():
    wrapped = DataError("Caught DataError in DataLoader worker process 0.\nOriginal Traceback (most recent call "
                        "last):\n  File \"x.py\", line 1\nvitkit.errors.DataError: cannot read image 'a/b.png' (bad)\n")
    assert _one_line(wrapped) == "cannot read image 'a/b.png' (bad)"


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("folders")
    (root / "empty").mkdir()
    for c in ("a", "b"):
        (root / "corrupt" / c).mkdir(parents=True)
        Image.fromarray(torch.zeros(8, 8, 3, dtype=torch.uint8).numpy()).save(root / "corrupt" / c / "ok.png")
    (root / "corrupt" / "b" / "zz_broken.png").write_bytes(b"\x89PNG not really")
    (root / "corrupt.safetensors").write_bytes(b"\x00" * 64)
    return root


TRAIN = ["train", "--epochs", "1", "--limit", "8", "--batch-size", "8", "--no-progress"]


# the table of bad flags, names, overrides and paths for every command is tests/test_bad_input.py


def test_image_size_not_divisible_by_patch(capsys, tmp_path):
    code, _, err = run(capsys, *TRAIN, "--model", "deit_tiny_distilled_patch16_224", *TINY_DEIT,
                       "--override", "img_size=18", "--out", str(tmp_path / "r"))
    assert_one_line_error(code, err, "not divisible by the patch size")


def test_wrong_channel_count(capsys, tmp_path):
    teacher = vitkit.create_model("resnet_tiny_cifar", in_chans=1, widths=(4, 4, 4))
    vitkit.save_checkpoint(teacher, tmp_path / "grey.safetensors")
    code, _, err = run(capsys, *TRAIN, "--model", "deit_tiny_distilled_patch16_224", *TINY_DEIT, "--distill", "hard",
                       "--teacher", str(tmp_path / "grey.safetensors"), "--out", str(tmp_path / "r"))
    assert_one_line_error(code, err, "expected 1 input channels, got 3")


def test_empty_and_corrupt_image_folders(capsys, folders, tmp_path):
    base = [*TRAIN, "--model", "resnet_tiny_cifar", "--override", "img_size=16", "--out", str(tmp_path / "r")]
    code, _, err = run(capsys, *base, "--data", str(folders / "empty"))
    assert_one_line_error(code, err, "has no class sub-folders")
    code, _, err = run(capsys, *base, "--data", str(folders / "corrupt"), "--limit", "3")
    assert_one_line_error(code, err, "zz_broken.png")
    code, _, err = run(capsys, *base, "--data", str(folders / "nowhere"))
    assert_one_line_error(code, err, "unknown dataset")


def test_missing_corrupt_and_mismatched_checkpoints(capsys, folders, trained, tmp_path):
    code, _, err = run(capsys, "eval", str(tmp_path / "none.safetensors"))
    assert_one_line_error(code, err, "does not exist")
    code, _, err = run(capsys, "eval", str(folders / "corrupt.safetensors"))
    assert_one_line_error(code, err, "could not be read")
    student = str(trained / "student" / "model.safetensors")
    code, _, err = run(capsys, "eval", student, "--override", "embed_dim=32")
    assert_one_line_error(code, err, "does not match model deit_tiny_distilled_patch16_224")
    code, _, err = run(capsys, "eval", student, "--model", "resnet_tiny_cifar")
    assert code == 2 and "Traceback" not in err
    code, _, err = run(capsys, "predict", student, str(tmp_path / "missing.png"))
    assert_one_line_error(code, err, "does not exist")


def test_debug_shows_the_traceback(capsys):
    code, _, err = run(capsys, "train", "--model", "nope", "--debug")
    assert code == 2 and "Traceback" in err and err.strip().splitlines()[-1].startswith("error: unknown model")


def test_entry_point_in_a_subprocess(tmp_path):
    """`python -m vitkit` is the same program, with the exit status and one-line error."""
    p = subprocess.run([sys.executable, "-m", "vitkit", "train", "--model", "resnet_tiny_cifar", "--epochs", "0"],
                       capture_output=True, text=True, timeout=300, check=False)
    assert p.returncode == 2 and p.stderr.strip() == (
        "error: vitkit train: argument --epochs: expected a positive integer, got 0 (see `vitkit train --help`)")


def test_checkpoint_is_positional_or_a_flag_for_every_model_command(trained, tmp_path, capsys):
    """eval / predict / visualize / export: `CMD CKPT ...` and `CMD --checkpoint CKPT ...` are the same command."""
    from vitkit.cli import build_parser, check_paths

    ckpt = str(trained / "student" / "model.safetensors")
    png = _digit_png(tmp_path / "a.png")
    rest = {"eval": [], "predict": [png], "visualize": ["--out", str(tmp_path / "v.png")],
            "export": ["--out", str(tmp_path / "m.onnx")]}
    for cmd, more in rest.items():
        for argv in ([cmd, ckpt, *more], [cmd, "--checkpoint", ckpt, *more], [cmd, *more, "--checkpoint", ckpt]):
            args = build_parser().parse_args(argv)
            check_paths(args)
            assert args.checkpoint == ckpt and getattr(args, "files", [png]) == [png], argv
    for argv in (["--checkpoint", ckpt, png, png, "--topk", "2"], [png, "--checkpoint", ckpt, "--topk", "2", png],
                 [ckpt, png, "--topk", "2", png]):  # flags and positionals in any order
        code, out, err = run(capsys, "predict", *argv)
        assert code == 0 and len(out.strip().splitlines()) == 2 and out.count(", ") == 2, (argv, err)
