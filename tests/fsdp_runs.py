"""Run under torchrun by tests/test_fsdp.py (2 gloo ranks, one launch for every check): the same tiny runs with DDP
and with FSDP, one model per family, plus gradient checkpointing, EMA (on the host, every 2 steps), accumulation
and a distillation teacher; then an FSDP run of 2 epochs, and one stopped after epoch 1 and resumed. Each run
writes its folder under argv[1]; the test compares the files."""

import contextlib
import json
import shutil
import sys
from pathlib import Path

import torch
import torch.distributed as dist

from vitkit.train import run
from vitkit.train.run import TrainConfig, train

OUT = Path(sys.argv[1])
RUNS = json.loads(sys.argv[2])  # [[name, TrainConfig fields], ...]; "resume:" runs stop after epoch 1 and resume

torch.set_num_threads(1)
dist.init_process_group("gloo")
run.cleanup = lambda info: None  # one process group for every run of this launch
for name, fields in RUNS:
    if name.startswith("resume:"):  # killed at the start of epoch 2, a copy of the folder, then resumed
        name = name.removeprefix("resume:")

        def killed(*args, real=run.train_one_epoch, **kwargs):
            if args[5] == 1:  # the epoch
                raise KeyboardInterrupt
            return real(*args, **kwargs)

        real, run.train_one_epoch = run.train_one_epoch, killed
        with contextlib.suppress(KeyboardInterrupt):
            train(TrainConfig(**{**fields, "out": str(OUT / name)}))
        run.train_one_epoch = real
        if dist.get_rank() == 0:
            shutil.copytree(OUT / name, OUT / f"{name}-epoch1", ignore=shutil.ignore_patterns(".lock"))
        dist.barrier()
        fields = {**fields, "resume": True}
    train(TrainConfig(**{**fields, "out": str(OUT / name)}))
dist.destroy_process_group()
