"""A run's conveniences: --checkpoint-hist keeps the best K (metric in each file's metadata) and best.safetensors the
best; --val-batch-size sets the evaluation batch (default the training batch); workers default to this rank's share
of the cores; eval's batch counts a video's views; eval and profile --sweep show progress on a terminal only; every
new flag's bad value is one line and exit 2."""

import csv
import os

import pytest
import torch
from safetensors import safe_open
from test_cli import assert_one_line_error, run
from test_cli_data import video_setup  # noqa: F401 (a fixture)

import vitkit
from vitkit.data import default_workers
from vitkit.data.video_folder import ViewAverage
from vitkit.models.timesformer import TimeSformer
from vitkit.train import run as run_mod
from vitkit.train.run import TrainConfig, train

TINY = dict(img_size=16, patch_size=8, embed_dim=24, depth=1, num_heads=2)
FLAGS = ["--model", "vit_tiny_patch16_224", "--data", "digits", "--limit", "32", "--no-progress",
         *[f"--override={k}={v}" for k, v in TINY.items()]]


def test_checkpoint_hist_keeps_the_two_best_and_val_batch_size_and_workers_follow_the_flags(tmp_path, monkeypatch):
    seen = {"val_batch": [], "workers": []}
    real_eval, real_workers = run_mod.evaluate, run_mod.default_workers

    def evaluate(model, loader, *args, **kwargs):
        seen["val_batch"].append(loader.batch_size)
        return real_eval(model, loader, *args, **kwargs)

    monkeypatch.setattr(run_mod, "evaluate", evaluate)
    monkeypatch.setattr(run_mod, "default_workers", lambda *a: seen["workers"].append(a) or real_workers(*a))
    out = tmp_path / "run"
    result = train(TrainConfig(model="vit_tiny_patch16_224", data="digits", overrides=TINY, epochs=5, limit=64,
                               batch_size=16, lr=3e-3, warmup_epochs=0, val_batch_size=7, checkpoint_hist=2,
                               progress=False, out=str(out)))
    assert set(seen["val_batch"]) == {7} and seen["workers"] == [("digits", 1)]
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    ranked = sorted(rows, key=lambda r: (float(r["val_acc1"]), int(r["epoch"])), reverse=True)
    assert len({r["val_acc1"] for r in rows}) > 2  # the test is not decided by ties
    kept = sorted(p.name for p in out.glob("checkpoint-*.safetensors"))
    assert kept == sorted(f"checkpoint-{int(r['epoch']) + 1}.safetensors" for r in ranked[:2])
    for r in ranked[:2]:
        with safe_open(str(out / f"checkpoint-{int(r['epoch']) + 1}.safetensors"), "pt") as f:
            meta = f.metadata()
        assert float(meta["vitkit_val_acc1"]) == float(r["val_acc1"]) and meta["vitkit_epoch"] == str(int(r["epoch"]) + 1)
    best = vitkit.load_checkpoint(out / "best.safetensors").state_dict()
    top = vitkit.load_checkpoint(out / f"checkpoint-{int(ranked[0]['epoch']) + 1}.safetensors").state_dict()
    assert all(torch.equal(best[k], top[k]) for k in top)
    assert (out / "last.pt").is_file() and (out / "model.safetensors").is_file() and len(result.history) == 5

    loaders = run_mod.build_loaders(range(40), range(40), 16, run_mod.DistInfo())
    assert loaders.val.batch_size == 16  # the default: the training batch (it was max(batch, 256))


def test_default_workers_are_this_ranks_share_of_the_cores(monkeypatch, tmp_path):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)))
    assert default_workers(str(tmp_path)) == 8 and default_workers(str(tmp_path), 2) == 4
    assert default_workers(str(tmp_path), 16) == 1 and default_workers("digits", 2) == 0


def test_eval_counts_a_videos_views_in_its_batch(capsys, monkeypatch, video_setup):  # noqa: F811
    clips, real = [], TimeSformer.forward
    monkeypatch.setattr(TimeSformer, "forward", lambda self, x: clips.append(len(x)) or real(self, x))
    ckpt, data = str(video_setup / "m.safetensors"), str(video_setup / "data")
    code, out, err = run(capsys, "eval", ckpt, "--data", data, "--test-views", "2x3", "--batch-size", "12")
    assert code == 0 and "(2 samples, 2x3 views)" in out, err
    assert clips == [12]  # 2 videos × 6 views in one forward of 12 clips, not a batch of 12 videos (72 clips)
    clips.clear()
    code, out, _ = run(capsys, "eval", ckpt, "--data", data, "--test-views", "2x3", "--batch-size", "4")
    assert code == 0 and clips == [4, 2, 4, 2]  # one video per batch, its 6 views chunked to fit 4 clips
    torch.manual_seed(0)  # the chunked average equals the one-forward average
    net = vitkit.load_checkpoint(ckpt).eval()
    x = torch.randn(2, 6, *net.input_shape())
    torch.testing.assert_close(ViewAverage(net, max_clips=5)(x), ViewAverage(net)(x), rtol=0, atol=1e-6)


@pytest.mark.parametrize("terminal", [True, False])
def test_eval_and_profile_sweep_show_progress_on_a_terminal_only(capsys, monkeypatch, tmp_path, terminal):
    monkeypatch.setenv("TTY_COMPATIBLE", "1" if terminal else "0")  # rich's switch for "stderr is a terminal"
    vitkit.save_checkpoint(vitkit.create_model("vit_tiny_patch16_224", **TINY, num_classes=10), tmp_path / "m.safetensors")
    for argv, label in ((["eval", str(tmp_path / "m.safetensors"), "--batch-size", "64"], "eval"),
                        (["profile", "vit_tiny_patch16_224", "--no-throughput", "--sweep", "img_size=16,32",
                          *[f"--override={k}={v}" for k, v in TINY.items() if k != "img_size"]], "sweep img_size")):
        code, _, err = run(capsys, *argv)
        assert code == 0 and (label in err) == terminal, err
        code, _, err = run(capsys, *argv, "--no-progress")
        assert code == 0 and label not in err, err


@pytest.mark.parametrize("argv, match", [
    (["--ema-every", "0"], "--ema-every: expected a positive integer, got 0"),
    (["--ema-device", "gpu"], "--ema-device: invalid choice: 'gpu'"),
    (["--val-batch-size", "0"], "--val-batch-size: expected a positive integer, got 0"),
    (["--checkpoint-hist", "-1"], "--checkpoint-hist: expected a non-negative integer, got -1"),
    (["--fsdp-offload"], "--fsdp-offload needs --fsdp"),
    (["--fsdp", "--resume"], "--resume: the run state"),
])
def test_a_bad_value_of_a_new_train_flag_is_one_line(capsys, tmp_path, argv, match):
    code, _, err = run(capsys, "train", *FLAGS, "--out", str(tmp_path / "run"), *argv)
    assert_one_line_error(code, err, match)
