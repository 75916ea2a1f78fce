"""Devices, precision and multi-process training through torchrun (DDP: NCCL on GPUs, gloo on the CPU).

The process group is joined from the environment torchrun sets (WORLD_SIZE, RANK, LOCAL_RANK, MASTER_ADDR/PORT)
only when WORLD_SIZE > 1, so a plain `vitkit train` never touches torch.distributed; multi-node runs are plain
torchrun with its own rendezvous flags. Each rank uses one device (`cuda:$LOCAL_RANK` on GPUs). Only rank 0
writes files and prints; anything that decides to stop (the non-finite-loss guard) is agreed by all ranks."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from ..errors import ConfigError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")  # auto: by processor (vitkit.routes), resolved where a run starts
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1  # ranks on this node (torchrun's LOCAL_WORLD_SIZE)

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _mps_available() -> bool:
    return getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()


def resolve_device(spec: str = "auto", local_rank: int = 0) -> torch.device:
    """`auto` (CUDA if present, else the CPU), `cpu`, `cuda`, `cuda:N` or `mps` -> a torch.device; a bare
    `cuda` (and `auto` on a GPU machine) is `cuda:local_rank`, the GPU torchrun gives this rank."""
    spec = spec.strip().lower()
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    if spec == "cpu":
        return torch.device("cpu")
    if spec == "mps":
        if not _mps_available():
            raise ConfigError("--device mps was asked for but this machine has no usable MPS (Apple GPU) device; "
                              "use --device cpu or auto")
        return torch.device("mps")
    if spec == "cuda" or spec.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {spec} was asked for but no CUDA device is available; use --device cpu or auto")
        index = local_rank if spec == "cuda" else spec.partition(":")[2]
        if not str(index).isdigit() or int(index) >= torch.cuda.device_count():
            raise ConfigError(f"--device {spec}: expected cuda:N with N below {torch.cuda.device_count()} "
                              "(the visible CUDA devices)")
        return torch.device("cuda", int(index))
    raise ConfigError(f"unknown --device {spec!r}; expected auto, cpu, cuda, cuda:N or mps")


def check_precision(precision: str, device: torch.device) -> None:
    """fp32 everywhere; bf16 on CPUs, MPS and GPUs that have it; fp16 only on accelerators (the CPU has no fast
    fp16 path and GradScaler is meant for GPUs)."""
    if precision not in PRECISIONS:
        raise ConfigError(f"unknown --precision {precision!r}; expected one of {', '.join(PRECISIONS)}")
    if precision == "auto":
        return
    if precision == "fp16" and device.type == "cpu":
        raise ConfigError("--precision fp16 is not supported on the CPU; use bf16 (or fp32) there")
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ConfigError(f"--precision bf16: {torch.cuda.get_device_name(device)} has no bf16 support; use fp16")


def autocast(device: torch.device, precision: str):
    """Autocast on the device's type in bf16 / fp16, or a no-op for fp32."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=_DTYPES[precision])


def init_distributed(device: str = "auto") -> DistInfo:
    """Join the process group torchrun describes (NCCL for CUDA ranks, else gloo); a single process gets
    DistInfo(0, 1, 0) and no process group."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        dev = resolve_device(device, local_rank)
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    return DistInfo(dist.get_rank(), dist.get_world_size(), local_rank, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))


def wrap_ddp(model: nn.Module, info: DistInfo, device: torch.device) -> nn.Module:
    if not info.enabled:
        return model
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def all_sum(values: list[float], info: DistInfo, device: torch.device) -> list[float]:
    """Element-wise sum of `values` over all ranks (float64, so counts and sums stay exact)."""
    if not info.enabled:
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.tolist()


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def cleanup(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()
