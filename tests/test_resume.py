"""Resume that cannot be fooled: a run SIGKILLed mid-epoch and resumed ends with the same weights, bit for bit,
as one never interrupted; a changed setting is named in one error and `--force` accepts it."""

import csv
import dataclasses
import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest
import torch

import vitkit
from vitkit.errors import CheckpointError
from vitkit.train.run import TrainConfig, train
from vitkit.train.state import load_training_state

STUDENT = dict(img_size=16, patch_size=8, embed_dim=16, depth=1, num_heads=2, drop_path_rate=0.2, drop_rate=0.1)

RUNNER = textwrap.dedent('''
    import json, os, signal, sys
    import torch
    from vitkit.train import engine
    from vitkit.train.run import TrainConfig, train

    torch.set_num_threads(1)
    cfg = TrainConfig(**json.loads(sys.argv[1]))
    kill_at = int(sys.argv[2])  # SIGKILL in the forward of this micro-batch (counted over the whole run)
    real, calls = engine.loss_fn, [0]

    def loss_fn(*args):
        calls[0] += 1
        if calls[0] == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(*args)

    engine.loss_fn = loss_fn
    train(cfg)
''')


def _run(tmp_path, settings: dict, kill_at: int = -1) -> subprocess.CompletedProcess:
    script = tmp_path / "runner.py"
    script.write_text(RUNNER)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, str(script), json.dumps(settings), str(kill_at)], capture_output=True,
                          text=True, env=env, timeout=300, check=False)


def test_sigkill_mid_epoch_then_resume_is_bit_identical(tmp_path):
    # 64 samples, micro-batch 8, 2 per optimiser step: 4 steps an epoch; a checkpoint every 2 steps.
    base = dict(model="deit_tiny_patch16_224", overrides=STUDENT, epochs=2, batch_size=8, accum_steps=2, lr=2e-3,
                warmup_epochs=1, limit=64, ema=0.9, save_every=2, progress=False)
    whole = _run(tmp_path, {**base, "out": str(tmp_path / "whole")})
    assert whole.returncode == 0, whole.stderr[-2000:]
    # killed in the 2nd micro-batch of epoch 1's 3rd step: after the step-2 checkpoint, before the next
    cut = _run(tmp_path, {**base, "out": str(tmp_path / "cut")}, kill_at=8 + 2 * 2 + 2)
    assert cut.returncode == -signal.SIGKILL
    state = load_training_state(tmp_path / "cut" / "last.pt")
    assert (state["epoch"], state["step"]) == (0, 2) and state["ema"] is not None
    resumed = _run(tmp_path, {**base, "out": str(tmp_path / "cut"), "resume": True})
    assert resumed.returncode == 0, resumed.stderr[-2000:]

    a = vitkit.load_checkpoint(tmp_path / "whole" / "model.safetensors").state_dict()
    b = vitkit.load_checkpoint(tmp_path / "cut" / "model.safetensors").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    ema_a = load_training_state(tmp_path / "whole" / "last.pt")["ema"]
    ema_b = load_training_state(tmp_path / "cut" / "last.pt")["ema"]
    assert all(torch.equal(ema_a[k], ema_b[k]) for k in ema_a)
    rows = [list(csv.DictReader((tmp_path / run / "metrics.csv").read_text().splitlines())) for run in ("whole", "cut")]
    assert [r["train_loss"] for r in rows[0]] == [r["train_loss"] for r in rows[1]]


def test_a_changed_setting_is_named_and_force_accepts_it(tmp_path):
    cfg = TrainConfig(model="deit_tiny_patch16_224", overrides=STUDENT, epochs=1, batch_size=16, limit=32,
                      progress=False, out=str(tmp_path / "run"))
    train(cfg)
    for change, name in [(dict(label_smoothing=0.2), r"label_smoothing \(0.1 -> 0.2\)"),
                         (dict(precision="bf16"), "precision"), (dict(clip_grad=None), "clip_grad"),
                         (dict(ema=0.99), "ema"), (dict(accum_steps=2), "accum_steps"), (dict(augment=False), "augment"),
                         (dict(soft_normalisation="batch"), "soft_normalisation")]:
        with pytest.raises(CheckpointError, match=f"other settings \\({name}"):
            train(dataclasses.replace(cfg, resume=True, epochs=1, **change))
    # where and how fast it runs may change
    train(dataclasses.replace(cfg, resume=True, workers=1, save_every=3))
    again = train(dataclasses.replace(cfg, resume=True, epochs=2, label_smoothing=0.2, force=True))
    assert len(again.history) == 2


@pytest.mark.parametrize("augmentation", [{}, dict(randaugment="2,9", reprob=0.25, mixup=0.8, cutmix=1.0, repeated_aug=3)],
                         ids=["digits", "deit-recipe"])
def test_augmentation_does_not_depend_on_workers_and_a_mid_epoch_resume_with_workers_matches(tmp_path, monkeypatch,
                                                                                             augmentation):
    from vitkit.train import engine

    base = dict(model="deit_tiny_patch16_224", overrides=STUDENT, epochs=1, batch_size=8, limit=32, save_every=1,
                progress=False, **augmentation)  # digits augmentation on, drop-path and dropout on; DeiT's
    # recipe adds RandAugment, random erasing, Mixup/CutMix in the workers' collate, and repeated augmentation
    whole = train(TrainConfig(out=str(tmp_path / "whole"), **base)).model.state_dict()
    real, calls = engine.loss_fn, []

    def interrupted(*args):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt  # in the third of 4 steps, after the checkpoint of step 2
        return real(*args)

    monkeypatch.setattr(engine, "loss_fn", interrupted)
    cfg = TrainConfig(out=str(tmp_path / "cut"), workers=2, **base)
    with pytest.raises(KeyboardInterrupt):
        train(cfg)
    assert load_training_state(tmp_path / "cut" / "last.pt")["step"] == 2
    monkeypatch.setattr(engine, "loss_fn", real)
    resumed = train(dataclasses.replace(cfg, resume=True)).model.state_dict()
    assert all(torch.equal(whole[k], resumed[k]) for k in whole)
