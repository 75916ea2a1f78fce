"""Multi-process training through torchrun (DDP over gloo on the CPU): 2 ranks × batch 8 equal 1 process × batch
16; sharded validation is exact on an odd-sized set; a non-finite loss on one rank stops every rank."""

import csv
import os
import subprocess
import sys
import textwrap

import torch

import vitkit
from vitkit.train.run import TrainConfig, train

# No qkv bias: the key bias gets an exactly-zero gradient (softmax is shift-invariant), so AdamW would turn
# rounding noise of ±1e-9 there into ±lr steps whose sign differs between the two runs. Adam's early steps are
# ±lr whatever the gradient's size, so the float noise in the result scales with lr: 1e-3 keeps it near 3e-7.
VIT = dict(img_size=16, patch_size=8, embed_dim=24, depth=1, num_heads=2, qkv_bias=False, drop_rate=0.0,
           drop_path_rate=0.0)
FLAGS = ["--model", "vit_tiny_patch16_224", "--data", "digits", "--epochs", "1", "--limit", "48", "--no-augment",
         "--warmup-epochs", "0", "--lr", "1e-3", "--no-progress"] + [f"--override={k}={v}" for k, v in VIT.items()]
ENV = dict(os.environ, OMP_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE")


def _torchrun(args: list[str], cwd) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", *args]
    return subprocess.run(cmd, check=False, capture_output=True, text=True, env=ENV, timeout=300, cwd=cwd)


def test_two_ranks_of_8_equal_one_process_of_16(tmp_path):
    proc = _torchrun(["-m", "vitkit", "train", *FLAGS, "--batch-size", "8", "--out", str(tmp_path / "ddp")], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    single = train(TrainConfig(model="vit_tiny_patch16_224", data="digits", overrides=VIT, epochs=1, limit=48,
                               augment=False, warmup_epochs=0, lr=1e-3, batch_size=16, progress=False,
                               out=str(tmp_path / "one")))
    ddp = vitkit.load_checkpoint(tmp_path / "ddp" / "model.safetensors")
    one = single.model.state_dict()
    for k, v in ddp.state_dict().items():  # 3 optimiser steps (48 samples / 16) from the same start
        torch.testing.assert_close(v, one[k], rtol=0, atol=1e-6, msg=k)
    with open(tmp_path / "ddp" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1  # rank 0 alone writes
    assert float(rows[0]["val_acc1"]) == single.history[0]["val_acc1"]


SCRIPT = textwrap.dedent('''
    import json, os, sys
    import torch
    from torch.utils.data import DataLoader, Subset
    import vitkit
    from vitkit.cli import main
    from vitkit.data import build_dataset
    from vitkit.train import engine
    from vitkit.train.data import build_loaders
    from vitkit.train.distributed import init_distributed

    info = init_distributed("cpu")
    torch.manual_seed(0)
    model = vitkit.create_model("vit_tiny_patch16_224", img_size=16, patch_size=8, embed_dim=24, depth=1, num_heads=2,
                                num_classes=10)
    val = Subset(build_dataset("digits", "val", model.input_shape()), range(179))  # odd: one rank gets one sample more
    loaders = build_loaders(val, val, 16, info)
    m = engine.evaluate(model, loaders.val, info=info)
    if info.rank == 0:
        json.dump({"sharded": m, "n": len(loaders.val.dataset)}, open(sys.argv[1], "w"))

    real = engine.loss_fn
    def poisoned(model, criterion, images, targets):
        loss = real(model, criterion, images, targets)
        return loss * float("nan") if info.rank == 1 else loss  # rank 1 only
    engine.loss_fn = poisoned
    sys.exit(main(sys.argv[2:]))
''')


def test_sharded_validation_is_exact_and_a_nan_on_one_rank_stops_all(tmp_path):
    script = tmp_path / "script.py"
    script.write_text(SCRIPT)
    result = tmp_path / "sharded.json"
    proc = _torchrun([str(script), str(result), "train", *FLAGS, "--batch-size", "8", "--out", str(tmp_path / "run")],
                     tmp_path)
    assert proc.returncode != 0
    assert proc.stderr.count("error: the training loss became nan at epoch 0, step 0") == 2, proc.stderr[-3000:]
    assert not (tmp_path / "run" / "model.safetensors").exists()

    import json

    from torch.utils.data import DataLoader, Subset

    from vitkit.data import build_dataset
    from vitkit.train.engine import evaluate

    torch.manual_seed(0)
    model = vitkit.create_model("vit_tiny_patch16_224", img_size=16, patch_size=8, embed_dim=24, depth=1, num_heads=2,
                                num_classes=10)
    val = Subset(build_dataset("digits", "val", model.input_shape()), range(179))
    whole = evaluate(model, DataLoader(val, 16))
    sharded = json.loads(result.read_text())
    assert sharded["n"] == 90  # rank 0's shard of 179
    assert sharded["sharded"]["acc1"] == whole["acc1"] and sharded["sharded"]["acc5"] == whole["acc5"]
    assert abs(sharded["sharded"]["loss"] - whole["loss"]) < 1e-6
