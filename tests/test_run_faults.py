"""Faults that reach a training run, each in one sentence: a full disk while writing a checkpoint (a 1 MiB tmpfs
mounted by the test when it may mount one, else a write that raises ENOSPC), a second run on a live run's folder,
a checkpoint with NaN weights, a pickle with a payload. Also the run's conveniences: --checkpoint-hist keeps the
best K, --val-batch-size, the default worker count per local rank, views counted in eval's batch, progress bars."""

import errno
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import vitkit
from vitkit.cli import main
from vitkit.errors import CheckpointError
from vitkit.train.distributed import DistInfo
from vitkit.train.optim import build_optimizer
from vitkit.train.sharded_state import save_sharded_state, sharded_folder
from vitkit.train.state import load_training_state, save_training_state

TINY = dict(img_size=16, patch_size=8, embed_dim=24, depth=1, num_heads=2, num_classes=10)
FLAGS = ["--model", "vit_tiny_patch16_224", "--data", "digits", "--limit", "32", "--batch-size", "16", "--no-progress",
         *[f"--override={k}={v}" for k, v in TINY.items() if k != "num_classes"]]


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB tmpfs (root may mount one here), else None."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    ok = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], capture_output=True,
                        check=False).returncode == 0 if shutil.which("mount") and os.geteuid() == 0 else False
    yield mnt if ok else None
    if ok:
        subprocess.run(["umount", "-l", str(mnt)], check=False)  # lazily: a failed write's traceback may hold a file


def _fill(folder: Path, leave: int) -> None:
    free = shutil.disk_usage(folder).free
    (folder / "filler").write_bytes(b"\0" * max(0, free - leave))


def test_a_full_disk_while_writing_a_checkpoint_is_one_sentence_and_keeps_the_previous(small_disk, tmp_path,
                                                                                      monkeypatch):
    model = vitkit.create_model("vit_tiny_patch16_224", **TINY)
    opt = build_optimizer(model, 1e-3)
    folder = small_disk or tmp_path / "simulated"
    last = folder / "last.pt"
    save_training_state(last, model, opt, None, 0, [], {})
    before = last.read_bytes()
    if small_disk is not None:
        _fill(folder, 4096)  # the next last.pt (~40 KB) no longer fits
    else:  # no tmpfs here: the write itself raises ENOSPC, as a full disk makes it
        monkeypatch.setattr(torch, "save", lambda *a, **k: (_ for _ in ()).throw(OSError(errno.ENOSPC, "No space")))
    with pytest.raises(CheckpointError) as e:
        save_training_state(last, model, opt, None, 1, [], {})
    message = str(e.value)
    assert message.startswith(f"the disk is full: writing {str(last)!r} failed with ") and "MiB free" in message
    assert "\n" not in message and message.count(". ") == 0
    assert last.read_bytes() == before and sorted(p.name for p in folder.iterdir()) == (
        ["filler", "last.pt"] if small_disk is not None else ["last.pt"])  # no partial file
    assert load_training_state(last)["epoch"] == 0

    if small_disk is not None:  # the sharded checkpoint of an FSDP run: the same sentence, the pointer kept
        (folder / "filler").unlink()
        last.unlink()
        save_sharded_state(folder, model, opt, None, 0, [], {}, DistInfo())
        kept = sharded_folder(folder)
        _fill(folder, 4096)
        with pytest.raises(CheckpointError, match=r"^the disk is full: writing .* failed with"):
            save_sharded_state(folder, model, opt, None, 1, [], {}, DistInfo())
        assert sharded_folder(folder) == kept and not [p for p in (folder / "sharded").iterdir() if p != kept]


def test_a_second_run_on_a_live_runs_folder_refuses_and_a_dead_runs_lock_is_taken_over(tmp_path, capsys):
    out = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", "import sys; from vitkit.train.lock import RunLock; "
                               "RunLock(sys.argv[1]).acquire(); print('held', flush=True); sys.stdin.read()", str(out)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                              env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    try:
        assert holder.stdout.readline().strip() == "held"
        assert main(["train", *FLAGS, "--epochs", "1", "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err == [f"error: another vitkit train (pid {holder.pid}) is running in {str(out)!r}; wait for it to "
                       "finish, or give this run another --out"]
        assert not (out / "metrics.csv").exists()
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    assert (out / ".lock").read_text().strip() == str(holder.pid)  # the dead run's lock file is still there
    assert main(["train", *FLAGS, "--epochs", "1", "--out", str(out)]) == 0
    assert (out / "metrics.csv").is_file()


def test_a_checkpoint_with_nan_weights_names_them(tmp_path, capsys):
    model = vitkit.create_model("vit_tiny_patch16_224", **TINY)
    with torch.no_grad():
        model.head.weight[0, 0] = float("nan")
        model.blocks[0].mlp.fc1.bias[1] = float("inf")
    vitkit.save_checkpoint(model, tmp_path / "m.safetensors")
    assert main(["eval", str(tmp_path / "m.safetensors"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds NaN or infinite values in 2 tensors (" in err[0], err
    assert "head.weight" in err[0] and "blocks.0.mlp.fc1.bias" in err[0]


class Payload:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return Path.touch, (self.marker,)  # what an unpickler that runs code would do


def test_a_pickled_checkpoint_with_a_payload_is_refused_and_not_run(tmp_path, capsys):
    marker = tmp_path / "ran"
    model = vitkit.create_model("vit_tiny_patch16_224", **TINY)
    torch.save({"model": model.state_dict(), "args": Payload(marker)}, tmp_path / "m.pth")
    assert main(["eval", str(tmp_path / "m.pth"), "--model", "vit_tiny_patch16_224", "--no-progress",
                 *[f"--override={k}={v}" for k, v in TINY.items()]]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {str(tmp_path / 'm.pth')!r} holds Python objects besides tensors, and vitkit loads weights "
                   "only (it never runs code from a checkpoint); save a plain state dict of tensors (or .safetensors) "
                   "instead"]
    with open(tmp_path / "last.pt", "wb") as f:
        pickle.dump(Payload(marker), f, protocol=2)  # torch.load warns about other protocols
    with pytest.raises(CheckpointError, match="^cannot resume: .* holds Python objects"):
        load_training_state(tmp_path / "last.pt")
    assert not marker.exists()
