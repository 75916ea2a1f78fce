"""Fully sharded data parallel training (FSDP2: `torch.distributed.fsdp.fully_shard`, Zhao et al. 2023, arXiv
2304.11277) for models whose weights, gradients and optimiser state do not fit one device beside a replica.

The sharding plan is one unit per transformer block (the modules that mix in `GradCheckpointing`, so every
family declares its blocks once, for both features) plus the root for what lies outside the blocks (patch
embedding, tokens, position tables, final norm, heads). Each unit's parameters live as dim-0 shards (DTensors) on
the ranks and are all-gathered just before the unit runs, then freed; gradients are reduce-scattered (averaged,
as DDP averages them). `--precision bf16` / `fp16` becomes the units' parameter dtype for compute with fp32
gradient reduction (MixedPrecisionPolicy), on top of autocast; `--fsdp-offload` keeps the shards and the
optimiser state in host memory (CPUOffloadPolicy).

Gradient accumulation reduce-scatters every micro-batch (the sharded gradients accumulate): holding unsharded
gradients across micro-batches, as DDP's `no_sync` does, would cost the memory FSDP is chosen to save.
The distillation teacher stays replicated on every rank: it is frozen (no gradients, no optimiser state), so
sharding would save only its weights at the price of an all-gather per unit on every forward.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from ..layers.checkpointing import GradCheckpointing
from .distributed import DistInfo

_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def shard_units(model: nn.Module) -> list[nn.Module]:
    """The blocks that become FSDP units: the outermost `GradCheckpointing` modules of `model`, in order."""
    units: list[nn.Module] = []
    for name, module in model.named_modules():
        if isinstance(module, GradCheckpointing) and not any(name.startswith(f"{u}.") for u, _ in units):
            units.append((name, module))
    return [m for _, m in units]


def is_sharded(model: nn.Module) -> bool:
    from torch.distributed.fsdp import FSDPModule

    return isinstance(getattr(model, "_orig_mod", model), FSDPModule)


def fully_shard_model(model: nn.Module, info: DistInfo, device: torch.device, precision: str = "fp32",
                      offload: bool = False) -> nn.Module:
    """Shard `model` in place over all ranks (a unit per block, then the root) and return it. With one process
    there is nothing to shard across, and the model is returned unchanged."""
    if not info.enabled:
        return model
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import (
        CPUOffloadPolicy,
        MixedPrecisionPolicy,
        OffloadPolicy,
        fully_shard,
        register_fsdp_forward_method,
    )

    mesh = init_device_mesh(device.type, (info.world_size,))
    options = dict(mesh=mesh, offload_policy=CPUOffloadPolicy(pin_memory=device.type == "cuda") if offload else OffloadPolicy(),
                   mp_policy=MixedPrecisionPolicy(param_dtype=_DTYPES.get(precision), reduce_dtype=torch.float32))
    for unit in shard_units(model):
        fully_shard(unit, **options)
    fully_shard(model, **options)
    # FSDP warns, on the first forward, that the logits are a view (of the class-token slice): nothing in the
    # trainer writes into them in place, which is the case the warning is about
    warnings.filterwarnings("ignore", message=r"FSDP2-wrapped module \(FSDP\w+\) returned a view tensor")
    if hasattr(model, "forward_distill"):  # DeiT's two heads are called through this method, not forward
        register_fsdp_forward_method(model, "forward_distill")
    return model


def full_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The whole (unsharded) state dict on the CPU of rank 0 (an empty dict on the other ranks); a collective:
    every rank calls it. A model that is not sharded gives its own state dict."""
    if not is_sharded(model):
        return model.state_dict()
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    return get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))

