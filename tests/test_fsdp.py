"""FSDP2 over 2 gloo ranks on the CPU: after 3 optimiser steps the weights equal DDP's (≤ 1e-5) for one model per
family, also with gradient checkpointing, a host-memory EMA, accumulation, CPU offload and a distillation teacher; a sharded
checkpoint written by 2 ranks resumes bit-identically in 2 and loads in 1 process (resharded); a save killed
half-way leaves the previous checkpoint in use; `vitkit convert` turns a sharded checkpoint into one file."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tiny import tiny_overrides

import vitkit
from vitkit.cli import main
from vitkit.errors import CheckpointError
from vitkit.train.run import TrainConfig, train
from vitkit.train.sharded_state import POINTER, load_sharded_weights, save_sharded_state, sharded_folder

FAMILIES = {"vit_tiny_patch16_224": "digits", "swin_tiny_patch4_window7_224": "digits", "cvt_13_224": "digits",
            "vivit_base_16x2_factorised_encoder": "moving-digits", "timesformer_base_8x224_divided_space_time":
            "moving-digits", "mvitv2_tiny": "digits"}
# no qkv bias: the key bias has an exactly-zero gradient, and Adam turns rounding noise there into ±lr steps
BASE = dict(epochs=1, limit=48, batch_size=8, augment=False, warmup_epochs=0, lr=1e-3, progress=False, device="cpu")


def _overrides(name: str) -> dict:
    tiny = {k: v for k, v in tiny_overrides(name).items() if k != "num_classes"}
    return {**tiny, "qkv_bias": False, "drop_path_rate": 0.0, "drop_rate": 0.0}


def _runs(teacher: Path) -> list:
    runs = []
    for name, data in FAMILIES.items():
        runs += [[f"{kind}-{name}", dict(BASE, model=name, data=data, overrides=_overrides(name), fsdp=kind == "fsdp")]
                 for kind in ("ddp", "fsdp")]
    deit = dict(BASE, model="deit_tiny_distilled_patch16_224", data="digits", overrides=_overrides("deit_tiny_patch16_224"),
                grad_checkpointing=True, distill="hard", teacher=str(teacher))
    ema = dict(BASE, model="vit_tiny_patch16_224", data="digits", overrides=_overrides("vit_tiny_patch16_224"),
               ema=0.5, ema_device="cpu", ema_every=2, accum_steps=2, limit=96)
    runs += [[f"{kind}-{tag}", dict(cfg, fsdp=kind == "fsdp")] for tag, cfg in (("deit", deit), ("ema", ema))
             for kind in ("ddp", "fsdp")]
    runs[-1][1]["fsdp_offload"] = True  # fsdp-ema: shards and AdamW's moments in host memory
    resume = dict(ema, fsdp=True, epochs=2, ema_every=1, accum_steps=1, save_every=2)
    return [*runs, ["whole", resume], ["resume:cut", resume]]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fsdp")
    teacher = vitkit.create_model("resnet_tiny_cifar", num_classes=10, img_size=32, widths=(4, 8, 8))
    vitkit.save_checkpoint(teacher, tmp / "teacher.safetensors")
    script = Path(__file__).with_name("fsdp_runs.py")
    env = dict(os.environ, OMP_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(script), str(tmp),
           json.dumps(_runs(tmp / "teacher.safetensors"))]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, cwd=tmp, check=False)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return tmp


def _weights(path: Path) -> dict:
    return vitkit.load_checkpoint(path).state_dict()


@pytest.mark.parametrize("tag", [*FAMILIES, "deit", "ema"])
def test_fsdp_equals_ddp_after_three_steps(runs, tag):
    ddp, fsdp = (_weights(runs / f"{kind}-{tag}" / "model.safetensors") for kind in ("ddp", "fsdp"))
    assert ddp.keys() == fsdp.keys()
    for k in ddp:
        torch.testing.assert_close(fsdp[k], ddp[k], rtol=0, atol=1e-5, msg=k)
    assert (runs / f"fsdp-{tag}" / POINTER).is_file() and not (runs / f"fsdp-{tag}" / "last.pt").exists()
    assert (runs / f"ddp-{tag}" / "last.pt").is_file()  # DDP keeps its single file
    if tag == "ema":  # the host-memory EMA, sharded under FSDP, matches DDP's whole copy
        ddp_ema = torch.load(runs / "ddp-ema" / "last.pt", weights_only=True)["ema"]
        fsdp_ema = load_sharded_weights(runs / "fsdp-ema", ema=True).state_dict()
        for k, v in fsdp_ema.items():
            torch.testing.assert_close(v, ddp_ema[f"module.{k}"], rtol=0, atol=1e-5, msg=k)
        assert int(ddp_ema["steps_seen"]) == 3 and int(ddp_ema["n_averaged"]) == 2  # steps 1 and 3 of 3


def test_sharded_checkpoint_resumes_bit_identically_at_two_ranks_and_loads_in_one(runs, monkeypatch):
    whole, cut = (_weights(runs / name / "model.safetensors") for name in ("whole", "cut"))
    assert all(torch.equal(whole[k], cut[k]) for k in whole)
    for ema in (False, True):
        a, b = (load_sharded_weights(runs / name, ema=ema).state_dict() for name in ("whole", "cut"))
        assert all(torch.equal(a[k], b[k]) for k in a)
    assert len(list((runs / "cut" / "sharded").iterdir())) == 1  # the previous checkpoint folders are gone

    # the 2-rank checkpoint after epoch 1, resumed in one process, starts from the 2 ranks' weights and moments
    epoch1 = runs / "cut-epoch1"
    assert len([p for p in sharded_folder(epoch1).iterdir() if p.suffix == ".distcp"]) == 2  # a shard per rank
    written = _weights(epoch1 / "best.safetensors")  # epoch 1's weights, gathered by the 2 ranks
    from vitkit.train import run

    real, seen = run.train_one_epoch, {}

    def recorded(model, loader, criterion, optimizer, *args, **kwargs):
        seen["model"] = {k: v.clone() for k, v in model.state_dict().items()}
        seen["moments"] = sum(len(s) for s in optimizer.state.values())
        return real(model, loader, criterion, optimizer, *args, **kwargs)

    monkeypatch.setattr(run, "train_one_epoch", recorded)
    fields = dict(_runs(Path("t"))[-1][1], resume=True, out=str(epoch1))
    result = train(TrainConfig(**fields))
    assert all(torch.equal(seen["model"][k], written[k]) for k in written)
    assert seen["moments"] == 3 * len(list(result.model.parameters()))  # step, exp_avg, exp_avg_sq of each
    assert len(result.history) == 2 and all(torch.isfinite(v).all() for v in result.model.state_dict().values())


def test_sharded_checkpoint_in_one_process_resumes_bit_identically(tmp_path, monkeypatch):
    from vitkit.train import run

    fields = dict(BASE, model="vit_tiny_patch16_224", data="digits", overrides=_overrides("vit_tiny_patch16_224"),
                  limit=32, epochs=2, ema=0.5, fsdp=True)
    whole = train(TrainConfig(**fields, out=str(tmp_path / "whole"))).model.state_dict()
    real = run.train_one_epoch
    monkeypatch.setattr(run, "train_one_epoch", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt) if a[5] == 1
                        else real(*a, **k))
    with pytest.raises(KeyboardInterrupt):
        train(TrainConfig(**fields, out=str(tmp_path / "cut")))
    monkeypatch.setattr(run, "train_one_epoch", real)
    resumed = train(TrainConfig(**fields, out=str(tmp_path / "cut"), resume=True)).model.state_dict()
    assert all(torch.equal(whole[k], resumed[k]) for k in whole)
    assert (tmp_path / "cut" / POINTER).is_file() and not (tmp_path / "cut" / "last.pt").exists()


def test_a_save_killed_halfway_leaves_the_previous_checkpoint(runs, tmp_path):
    from vitkit.train.distributed import DistInfo
    from vitkit.train.optim import build_optimizer

    out = tmp_path / "run"
    import shutil

    shutil.copytree(runs / "cut-epoch1", out)
    before = sharded_folder(out)
    model = load_sharded_weights(out)
    optimizer = build_optimizer(model, 1e-3, 0.05)

    def killed(tensors, folder):
        (folder / "__0_0.distcp").write_bytes(b"half a shard")
        raise KeyboardInterrupt  # the process dies here: no metadata, no rename, no new pointer

    with pytest.raises(KeyboardInterrupt):
        save_sharded_state(out, model, optimizer, None, 1, [], {}, DistInfo(), write=killed)
    assert sharded_folder(out) == before and any(p.name.endswith(".tmp") for p in (out / "sharded").iterdir())
    reloaded = load_sharded_weights(out).state_dict()
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in reloaded.items())
    save_sharded_state(out, model, optimizer, None, 1, [], {}, DistInfo())  # the next save cleans up the leftover
    assert sorted(p.name for p in (out / "sharded").iterdir()) == ["epoch0002-step000000"]


def test_convert_turns_a_sharded_checkpoint_into_one_safetensors(runs, tmp_path, capsys):
    assert main(["convert", str(runs / "whole" / POINTER), "--out", str(tmp_path / "m.safetensors")]) == 0
    a, b = _weights(tmp_path / "m.safetensors"), load_sharded_weights(runs / "whole").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in b)
    assert main(["convert", str(runs / "whole" / POINTER), "--ema", "--out", str(tmp_path / "e.safetensors")]) == 0
    assert main(["convert", str(runs / "ddp-ema" / "last.pt"), "--out", str(tmp_path / "x.safetensors")]) == 2
    assert "--model" in capsys.readouterr().err
    with pytest.raises(CheckpointError, match="not a complete vitkit sharded checkpoint"):
        sharded_folder(tmp_path)
