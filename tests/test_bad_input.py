"""Every command and every kind of flag, misused: one line `error: ...` naming the culprit, exit 2, no traceback,
and nothing written. Paths: {ckpt} a tiny ViT checkpoint, {png} an image, {file} a text file, {dir} a folder,
{empty} an empty file, {tmp} the scratch folder (also the working directory)."""

import os
from dataclasses import dataclass
from typing import Literal

import pytest
import torch
from PIL import Image

import vitkit
from vitkit.cli import main
from vitkit.errors import ConfigError
from vitkit.registry import build_config

VIT = "vit_tiny_patch16_224"
TRAIN = ["train", "--model", VIT]
# a folder nothing can be created in: /sys refuses even root, a read-only folder refuses everyone else
UNWRITABLE = "/sys" if os.geteuid() == 0 else "{tmp}/read_only"

CASES = [
    # top level / list
    (["frobnicate"], "invalid choice: 'frobnicate'"),
    ([], "the following arguments are required: {{list,train,eval"),
    (["list", "nothing_like_this*"], "no registered model matches 'nothing_like_this*'"),
    (["list", "vit*", "deit*"], "unrecognized arguments: deit*"),
    # train: names, numbers, choices
    (["train", "--model", "deit_tiny_distiled_patch16_224"], "unknown model 'deit_tiny_distiled_patch16_224'; did you"),
    (["train", "--epochs", "3"], "--model is required"),
    ([*TRAIN, "--bogus"], "unrecognized arguments: --bogus"),
    ([*TRAIN, "--epochs", "0"], "argument --epochs: expected a positive integer, got 0"),
    ([*TRAIN, "--epochs", "two"], "argument --epochs: expected a positive integer, got 'two'"),
    ([*TRAIN, "--batch-size", "-3"], "argument --batch-size: expected a positive integer"),
    ([*TRAIN, "--lr", "abc"], "argument --lr: expected a positive number, got 'abc'"),
    ([*TRAIN, "--lr", "0"], "argument --lr: expected a positive number"),
    ([*TRAIN, "--weight-decay", "-1"], "argument --weight-decay: expected a non-negative number"),
    ([*TRAIN, "--warmup-epochs", "x"], "argument --warmup-epochs"),
    ([*TRAIN, "--label-smoothing", "-0.1"], "argument --label-smoothing"),
    ([*TRAIN, "--tau", "0"], "argument --tau"),
    ([*TRAIN, "--workers", "-1"], "argument --workers: expected a non-negative integer"),
    ([*TRAIN, "--seed", "1.5"], "argument --seed: expected an integer, got '1.5'"),
    ([*TRAIN, "--limit", "0"], "argument --limit"),
    ([*TRAIN, "--distill", "medium"], "argument --distill: invalid choice: 'medium'"),
    ([*TRAIN, "--soft-normalisation", "none"], "argument --soft-normalisation: invalid choice: 'none'"),
    ([*TRAIN, "--distill", "hard"], "needs --teacher"),
    # train: the papers' recipes (RandAugment string, optimiser, drop path, lr rule)
    ([*TRAIN, "--aa", "rand-m9-bogus1"], "--aa expects rand[-m<0-10>][-n<ops>]"),
    ([*TRAIN, "--aa", "rand-m12-mstd0.5"], "--aa 'rand-m12-mstd0.5' is out of range"),
    ([*TRAIN, "--opt", "lamb"], "argument --opt: invalid choice: 'lamb'"),
    ([*TRAIN, "--drop-path", "0.1,x"], "argument --drop-path: expected a rate in [0, 1) or one per stage"),
    ([*TRAIN, "--drop-path", "1.5"], "argument --drop-path: expected a rate in [0, 1)"),
    ([*TRAIN, "--drop-path", "0,0,0.1"], "drop_path_rate=[0.0, 0.0, 0.1] does not fit ViTConfig"),
    ([*TRAIN, "--lr-base", "0"], "argument --lr-base: expected a positive number"),
    ([*TRAIN, "--lr-base", "5e-4", "--lr-base-size", "0"], "argument --lr-base-size: expected a positive integer"),
    ([*TRAIN, "--lr-rule", "cubic"], "argument --lr-rule: invalid choice: 'cubic'"),
    ([*TRAIN, "--momentum", "1.5", "--opt", "sgd"], "--momentum must be in [0, 1), got 1.5"),
    ([*TRAIN, "--test-views", "4by3"], "--test-views expects TxS"),
    # overrides: syntax, unknown keys, and each field type (int, float, bool, tuple of ints, choice of strings)
    ([*TRAIN, "--override", "depth"], "--override expects key=value"),
    ([*TRAIN, "--override", "depth=[1,"], "--override depth: cannot parse the value '[1,'"),
    ([*TRAIN, "--override", "depht=3"], "unknown option 'depht'"),
    ([*TRAIN, "--override", "img_size=abc"], "img_size='abc' does not fit ViTConfig: expected an integer or a list"),
    ([*TRAIN, "--override", "img_size=[32]"], "img_size=[32] does not fit ViTConfig"),
    ([*TRAIN, "--override", "depth=2.5"], "depth=2.5 does not fit ViTConfig: expected an integer"),
    ([*TRAIN, "--override", "drop_rate=fast"], "drop_rate='fast' does not fit ViTConfig: expected a number"),
    ([*TRAIN, "--override", "qkv_bias=maybe"], "qkv_bias='maybe' does not fit ViTConfig: expected true or false"),
    ([*TRAIN, "--override", "global_pool=1"], "global_pool=1 does not fit ViTConfig: expected a string"),
    (["train", "--model", "cvt_13_224", "--override", "depths=4"], "depths=4 does not fit CvTConfig: expected a list"),
    (["train", "--model", "cvt_13_224", "--override", "depths=[1,2.5,1]"], "depths=[1, 2.5, 1] does not fit CvTConfig"),
    (["train", "--model", "mvitv2_tiny", "--override", "pool_mode=median"], "pool_mode must be 'conv', 'avg' or 'max'"),
    (["train", "--model", "timesformer_base_8x224_divided_space_time", "--override", "attention_type=diagonal"],
     "attention_type must be"),
    # train: paths
    ([*TRAIN, "--data", "{file}"], "--data '{file}' is a file; expected 'digits' or 'moving-digits' or a folder"),
    ([*TRAIN, "--data", "/dev/null"], "--data '/dev/null' is a character device"),
    ([*TRAIN, "--data", "{tmp}/nowhere"], "unknown dataset '{tmp}/nowhere'"),
    ([*TRAIN, "--distill", "hard", "--teacher", "{tmp}/missing.safetensors"],
     "--teacher '{tmp}/missing.safetensors' does not exist"),
    ([*TRAIN, "--distill", "hard", "--teacher", "{empty}"], "--teacher '{empty}' is an empty file (0 bytes)"),
    ([*TRAIN, "--distill", "hard", "--teacher", VIT, "--teacher-weights", "{dir}"],
     "--teacher-weights '{dir}' is a folder, not a file"),
    ([*TRAIN, "--out", "{file}"], "run folder '{file}' is a file; expected a folder"),
    ([*TRAIN, "--out", "{file}/run"], "cannot write run folder '{file}/run': '{file}' is a file, not a folder"),
    ([*TRAIN, "--out", f"{UNWRITABLE}/run"], f"the folder '{UNWRITABLE}' is not writable"),
    (["train", "--model", "resnet_tiny_cifar", "--override", "img_size=16", "--epochs", "1", "--limit", "8",
      "--resume", "--out", "{dir}"], "--resume: the run state '{dir}/last.pt' does not exist"),
    # eval
    (["eval"], "the following arguments are required: checkpoint"),
    (["eval", "{tmp}/none.safetensors"], "checkpoint '{tmp}/none.safetensors' does not exist"),
    (["eval", "{dir}"], "checkpoint '{dir}' is a folder, not a file"),
    (["eval", "/dev/null"], "checkpoint '/dev/null' is a character device, not a file"),
    (["eval", "{empty}"], "checkpoint '{empty}' is an empty file (0 bytes)"),
    (["eval", "--checkpoint", "{dir}"], "checkpoint '{dir}' is a folder"),
    (["eval", "{ckpt}", "--checkpoint", "{ckpt}"], "the checkpoint is given twice"),
    (["eval", "{png}"], "checkpoint '{png}' could not be read"),
    (["eval", "{ckpt}", "--split", "dev"], "argument --split: invalid choice: 'dev'"),
    (["eval", "{ckpt}", "--batch-size", "0"], "argument --batch-size: expected a positive integer, got 0"),
    (["eval", "{ckpt}", "--data", "{file}"], "--data '{file}' is a file"),
    (["eval", "{ckpt}", "--override", "embed_dim=wide"], "embed_dim='wide' does not fit ViTConfig"),
    (["eval", "{ckpt}", "--model", "vit_nano"], "unknown model 'vit_nano'"),
    # predict
    (["predict", "{ckpt}"], "no input files given"),
    (["predict", "{ckpt}", "{dir}"], "input file '{dir}' is a folder, not a file"),
    (["predict", "{ckpt}", "/dev/null"], "input file '/dev/null' is a character device, not a file"),
    (["predict", "{ckpt}", "{empty}"], "input file '{empty}' is an empty file"),
    (["predict", "--checkpoint", "{ckpt}", "{png}", "{tmp}/missing.png"], "input file '{tmp}/missing.png' does not"),
    (["predict", "{ckpt}", "{file}"], "cannot read image '{file}'"),
    (["predict", "{ckpt}", "{png}", "--topk", "0"], "argument --topk: expected a positive integer, got 0"),
    (["predict", "{ckpt}", "{png}", "--data", "{tmp}/nowhere"], "unknown dataset '{tmp}/nowhere'"),
    # profile
    (["profile", "vit_nano"], "unknown model 'vit_nano'"),
    (["profile", "zzz*"], "no registered model matches 'zzz*'"),
    (["profile", VIT, "--batch-size", "0"], "argument --batch-size"),
    (["profile", VIT, "--override", "num_heads=three"], "num_heads='three' does not fit ViTConfig"),
    # visualize
    (["visualize", "{ckpt}"], "the following arguments are required: --out"),
    (["visualize", "{ckpt}", "--what", "heatmap", "--out", "{tmp}/v.png"], "argument --what: invalid choice"),
    (["visualize", "{ckpt}", "--what", "rollout", "--out", "{tmp}/v.png"], "needs --input"),
    (["visualize", "{ckpt}", "--what", "rollout", "--input", "/dev/null", "--out", "{tmp}/v.png"],
     "--input '/dev/null' is a character device, not a file"),
    (["visualize", "{ckpt}", "--what", "rollout", "--input", "{dir}", "--out", "{tmp}/v.png"], "--input '{dir}' is a"),
    (["visualize", "{ckpt}", "--out", "{file}/v.png"], "cannot write --out '{file}/v.png': '{file}' is a file"),
    (["visualize", "{ckpt}", "--out", "{dir}"], "--out '{dir}' is a folder; expected a file name"),
    (["visualize", "/dev/null", "--out", "{tmp}/v.png"], "checkpoint '/dev/null' is a character device"),
    # convert
    (["convert", "{tmp}/missing.pth", "--model", VIT, "--out", "{tmp}/c.safetensors"],
     "weights file '{tmp}/missing.pth' does not exist"),
    (["convert", "{empty}", "--model", VIT, "--out", "{tmp}/c.safetensors"], "weights file '{empty}' is an empty"),
    (["convert", "{ckpt}", "--out", "{tmp}/c.safetensors"], "the following arguments are required: --model"),
    (["convert", "{ckpt}", "--model", "vit_nano", "--out", "{tmp}/c.safetensors"], "unknown model 'vit_nano'"),
    (["convert", "{ckpt}", "--model", VIT, "--out", "{file}/c.safetensors"], "'{file}' is a file, not a folder"),
    # export
    (["export", "{ckpt}", "--out", "{file}/sub/m.onnx"], "cannot write --out '{file}/sub/m.onnx': '{file}' is a"),
    (["export", "{ckpt}", "--out", "{dir}"], "--out '{dir}' is a folder; expected a file name"),
    (["export", "{ckpt}", "--out", ""], "--out '' is a folder; expected a file name"),
    (["export", "{ckpt}", "--out", "/dev/null"], "--out '/dev/null' is a character device; expected a file name"),
    (["export", "{ckpt}", "--out", f"{UNWRITABLE}/m.onnx"], f"the folder '{UNWRITABLE}' is not writable"),
    (["export", "{ckpt}", "--out", "{tmp}/m.onnx", "--opset", "0"], "argument --opset: expected a positive integer"),
    (["export", "--checkpoint", "{tmp}/none.safetensors", "--out", "{tmp}/m.onnx"], "'{tmp}/none.safetensors' does"),
]


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bad_input")
    model = vitkit.create_model(VIT, img_size=32, patch_size=8, depth=1, embed_dim=48, num_heads=3, num_classes=10)
    vitkit.save_checkpoint(model, tmp / "m.safetensors")
    Image.fromarray(torch.zeros(32, 32, 3, dtype=torch.uint8).numpy()).save(tmp / "x.png")
    (tmp / "notes.txt").write_text("not an image, not a folder\n")
    (tmp / "folder").mkdir()
    (tmp / "empty.pth").touch()
    (tmp / "read_only").mkdir(mode=0o500)
    paths = {"ckpt": tmp / "m.safetensors", "png": tmp / "x.png", "file": tmp / "notes.txt", "dir": tmp / "folder",
             "empty": tmp / "empty.pth", "tmp": tmp}
    return tmp, {k: str(v) for k, v in paths.items()}


def _tree(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_the_table_covers_every_command():
    commands = {argv[0] for argv, _ in CASES if argv}
    assert commands == {"list", "train", "eval", "predict", "profile", "visualize", "convert", "export",
                        "frobnicate"}
    assert len(CASES) >= 40


@pytest.mark.parametrize("argv, culprit", CASES, ids=lambda v: " ".join(v)[:60] if isinstance(v, list) else "")
def test_bad_input_is_one_line_exit_2(scratch, argv, culprit, capsys, monkeypatch):
    tmp, paths = scratch
    monkeypatch.chdir(tmp)  # default run folders (runs/<model>) land in the scratch folder, and must not appear
    before = _tree(tmp)
    code = main([a.format(**paths) for a in argv])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert "Traceback" not in err and len(lines) == 1 and lines[0].startswith("error: "), err
    assert culprit.format(**paths) in lines[0], lines[0]
    assert _tree(tmp) == before, "a failed command left files behind"


def test_unexpected_failures_are_one_line_naming_the_command(scratch, capsys, monkeypatch):
    """Not a user error (here a bug simulated inside export): one line, exit 1; --debug adds the traceback."""
    import vitkit.tools.export as export

    def broken(*args, **kwargs):
        raise RuntimeError("Expand node: invalid expand shape\nmore detail")

    monkeypatch.setattr(export, "export_onnx", broken)
    tmp, paths = scratch
    argv = ["export", paths["ckpt"], "--out", str(tmp / "m.onnx")]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.strip() == ("error: vitkit export failed: RuntimeError: Expand node: invalid expand shape "
                           "(run again with --debug for the traceback)")
    assert main([*argv, "--debug"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().splitlines()[-1] == (
        "error: vitkit export failed: RuntimeError: Expand node: invalid expand shape")


@dataclass(frozen=True)
class _Config:
    size: int | tuple[int, int] = 8
    depths: tuple[int, ...] = (1, 1)
    rate: float = 0.0
    rates: tuple[float, ...] | float = 0.0
    flag: bool = True
    limit: int | None = None
    mode: Literal["conv", "avg"] = "conv"


def test_build_config_converts_what_fits():
    cfg = build_config(_Config(), dict(size=[4, 6], depths=[2, 3, 4], rate=1, rates=[0, 0.5], limit=None, mode="avg"))
    assert cfg == _Config(size=(4, 6), depths=(2, 3, 4), rate=1.0, rates=(0.0, 0.5), mode="avg")
    assert type(cfg.rate) is float and all(type(r) is float for r in cfg.rates)
    assert build_config(_Config(), dict(size=torch.tensor(5).item(), limit=3)).size == 5


@pytest.mark.parametrize("key, value, expected", [
    ("size", 4.0, "an integer or a list of 2 integers"),
    ("size", (4, 5, 6), "an integer or a list of 2 integers"),
    ("depths", True, "a list of integers (e.g. [2, 2])"),
    ("rate", "0.1", "a number"),
    ("rate", False, "a number"),
    ("rates", ["a"], "a list of numbers or a number"),
    ("flag", "yes", "true or false"),
    ("limit", "3", "an integer or null"),
    ("mode", "max", "one of 'conv', 'avg'"),
])
def test_build_config_names_key_value_and_expected_type(key, value, expected):
    with pytest.raises(ConfigError) as e:
        build_config(_Config(), {key: value})
    assert str(e.value) == f"option {key}={value!r} does not fit _Config: expected {expected}"
