"""README.md's `vitkit ...` commands: every one parses with the CLI's own parser, and the cheap ones run as
written (in a scratch folder holding a tiny student at the main job's checkpoint path and the README's input
files), with tiny settings appended where the README trains, times or converts full-size models."""

import re
import shlex
from pathlib import Path

import pytest
import timm
import torch
from PIL import Image

import vitkit
from vitkit.cli import build_parser, main
from vitkit.data import Digits
from vitkit.train.main_job import MainJob

README = Path(__file__).resolve().parents[1] / "README.md"
# appended to a README command to keep its real run tiny (argparse: a later flag wins)
TINY_TRAIN = ["--epochs", "1", "--limit", "8", "--batch-size", "8", "--no-progress"]
TINY_VIT = ["--override", "img_size=32", "--override", "patch_size=8", "--override", "depth=1",
            "--override", "embed_dim=48", "--override", "num_heads=3"]


def readme_commands() -> list[list[str]]:
    """The arguments after `vitkit` (or `-m vitkit`) of every command in the README's bash blocks."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", README.read_text(), re.S):
        for line in block.replace("\\\n", " ").splitlines():
            tokens = shlex.split(line, comments=True)
            starts = [i + 1 for i, t in enumerate(tokens) if t == "vitkit" and (i == 0 or tokens[i - 1] == "-m")]
            if starts:
                commands.append(tokens[starts[0]:])
    return commands


COMMANDS = readme_commands()
DDP = [shlex.split(line.split("-m vitkit", 1)[1], comments=True)
       for line in README.read_text().replace("\\\n", " ").splitlines() if line.startswith("torchrun")]


def _runs_for_real(argv: list[str]) -> list[str] | None:
    """The argv to run for real (the README's, plus tiny settings), or None where only parsing is cheap: the
    main job and the claims (minutes), DDP, and placeholders such as path/to/imagefolder."""
    if argv == ["train"] or "path/to/" in " ".join(argv) or argv in DDP or (argv[0] == "reproduce" and "--list" not in argv):
        return None
    extra = {"train": [*TINY_TRAIN, "--out", "swin_run"], "profile": ["--no-throughput"], "convert": TINY_VIT}
    return argv + extra.get(argv[0], [])


def test_readme_has_the_commands_we_expect():
    names = {argv[0] for argv in COMMANDS}
    assert names == {"list", "train", "eval", "predict", "profile", "convert", "export", "visualize", "reproduce",
                     "weights"}
    assert DDP and all(d in COMMANDS for d in DDP)
    # the checkpoint paths are where the main job writes its student
    student = str(Path(MainJob().out) / "student" / "model.safetensors")
    paths = [a for argv in COMMANDS for a in argv if a.startswith("runs/")]
    assert paths and set(paths) == {student}


@pytest.mark.parametrize("argv", COMMANDS, ids=" ".join)
def test_every_readme_command_parses(argv):
    args = build_parser().parse_args(argv)
    assert args.command == argv[0]


@pytest.fixture(scope="module")
def readme_folder(tmp_path_factory):
    """A folder with the files the README's commands name: a tiny main-job student, images, a timm file."""
    root = tmp_path_factory.mktemp("readme")
    student = MainJob().student
    tiny = dict(student.overrides, embed_dim=16, depth=1, num_heads=2, num_classes=10)
    vitkit.save_checkpoint(vitkit.create_model(student.model, **tiny), root / MainJob().out / "student" /
                           "model.safetensors")
    digits = Digits("test", img_size=32, in_chans=1)
    for name, i in (("some.png", 0), ("digit.png", 1)):
        Image.fromarray((digits.images[i, 0] * 255).byte().numpy()).save(root / name)
    timm_vit = timm.create_model("vit_base_patch16_224", pretrained=False, img_size=32, patch_size=8, depth=1,
                                 embed_dim=48, num_heads=3)
    torch.save(timm_vit.state_dict(), root / "timm_vit_b16.pth")
    return root


@pytest.mark.parametrize("argv", [a for a in COMMANDS if _runs_for_real(a)], ids=" ".join)
def test_cheap_readme_commands_run_as_written(argv, readme_folder, monkeypatch, capsys):
    monkeypatch.chdir(readme_folder)
    code = main(_runs_for_real(argv))
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.strip()
    outputs = [argv[i + 1] for i, a in enumerate(argv) if a == "--out"]
    assert all((readme_folder / o).stat().st_size > 0 for o in outputs)
