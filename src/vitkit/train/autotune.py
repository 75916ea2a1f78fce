"""The speed routes of one training run: precision and the fp32 linear route, by `vitkit.routes`' rules, or timed
on the run's own model and batch where no rule is safe (a CPU with native bf16), cached per machine.

Timing costs a dozen steps, so it is done only for runs long enough to repay it (`MEASURE_MIN_STEPS` optimiser
steps: the timing is then under 2 % of the run); a shorter run on such a CPU trains in fp32, the exact route
that is never emulated. An explicit `--precision` is taken as given (bf16 where it would be emulated gets one
line saying so). The timing runs on a copy of the model and leaves the random state as it found it, so the
choice changes a run's speed and rounding, nothing else.
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass

import torch
from torch import nn

from ..layers import set_layer_config
from ..routes import (
    Candidate,
    Processor,
    emulated_bf16_warning,
    linear_route,
    machine_key,
    measure,
    processor,
    training_candidates,
    training_precision,
)
from .distributed import DistInfo, autocast
from .engine import loss_fn
from .optim import _fusable

MEASURE_MIN_STEPS = 600  # 3 candidates × 4 steps = 12 steps, 2 % of this


@dataclass(frozen=True)
class TrainingRoutes:
    precision: str            # fp32 | bf16 | fp16: what the run trains in
    onednn_linear: bool       # the fp32 linear route while training (the inference switch stays the rule's)
    lines: tuple[str, ...]    # why, one line each: printed at start and saved in config.yaml

    def as_dict(self) -> dict:
        return {"precision": self.precision, "onednn_linear_train": self.onednn_linear, "why": list(self.lines)}

    def apply(self) -> set_layer_config:
        """Set the layer switches for the run; `with routes.apply():` restores them afterwards."""
        return set_layer_config(onednn_linear_train=self.onednn_linear)


def _timed_step(model: nn.Module, criterion: nn.Module, x: torch.Tensor, y: torch.Tensor, device: torch.device):
    """A training step of a throw-away copy of `model` under a candidate's routes."""
    model = copy.deepcopy(model).train()
    params = list(model.parameters())
    opt = torch.optim.AdamW(params, lr=1e-6, fused=_fusable([{"params": params}]))  # the run's optimiser

    def step(c: Candidate) -> None:
        with set_layer_config(onednn_linear_train=c.onednn_linear), autocast(device, c.precision):
            loss = loss_fn(model, criterion, x, y)
        loss.float().backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    return step


def choose(requested: str, model: nn.Module, criterion: nn.Module, input_shape: tuple[int, ...], device: torch.device,
           batch_size: int, total_steps: int, key: dict, info: DistInfo | None = None,
           proc: Processor | None = None) -> TrainingRoutes:
    """The routes for a run that asked for `requested` precision ("auto" or explicit). `model` is what the
    training loop calls (the distillation wrapper included), on inputs (batch_size, *input_shape); `key`
    describes the run's model and shapes for the cache."""
    proc = proc or processor(device)
    linear = linear_route(proc, training=True)
    wait = os.environ.get("OMP_WAIT_POLICY", "the OpenMP runtime's default")  # idle threads: ACTIVE spin, PASSIVE sleep
    lines = [f"processor: {proc.name or proc.device} ({proc.kind}), {torch.get_num_threads()} threads, "
             f"OMP_WAIT_POLICY {wait}"]
    if requested != "auto":
        warning = emulated_bf16_warning(proc, requested)
        lines.append(f"precision {requested}: asked for" + (f" ({warning})" if warning else ""))
        return TrainingRoutes(requested, bool(linear.value),
                              (*lines, _linear_line(linear.value, linear.why, requested)))
    rule = training_precision(proc)
    if rule is not None:
        lines.append(f"precision {rule.value}: {rule.why}")
        return TrainingRoutes(str(rule.value), bool(linear.value),
                              (*lines, _linear_line(linear.value, linear.why, str(rule.value))))
    if total_steps < MEASURE_MIN_STEPS or (info is not None and info.enabled):
        why = (f"a run of {total_steps} steps is too short to repay timing the routes" if total_steps < MEASURE_MIN_STEPS
               else "ranks would time the routes apart; pass --precision to choose")
        lines.append(f"precision fp32: {why} (fp32 is exact and never emulated)")
        return TrainingRoutes("fp32", bool(linear.value), (*lines, _linear_line(linear.value, linear.why)))
    with torch.random.fork_rng(devices=[]):
        x = torch.randn(batch_size, *input_shape, device=device)
        y = torch.randint(0, 2, (batch_size,), device=device)
        found = measure(training_candidates(proc), _timed_step(model, criterion, x, y, device),
                        json.dumps({"machine": machine_key(proc), **key}, sort_keys=True))
    times = ", ".join(f"{label} {ms:.0f} ms" for label, ms in found.ms_per_step.items())
    lines.append(f"precision {found.best.precision}: the fastest of the routes timed on this run's model and batch "
                 f"({times} per step{'; cached for this machine' if found.cached else ''})")
    return TrainingRoutes(found.best.precision, found.best.onednn_linear,
                          (*lines, _linear_line(found.best.onednn_linear, "timed with the precision", found.best.precision)))


def _linear_line(on: object, why: str, precision: str = "fp32") -> str:
    if precision != "fp32":
        return f"linears in training: {precision} under autocast (the fp32 oneDNN route does not apply)"
    return f"fp32 linears in training: {'oneDNN' if on else 'default BLAS'} ({why})"
