"""The learning rate by rule, as the papers' code computes it: a recipe states `lr_base` at a reference batch
`lr_base_size` and the run uses lr = lr_base × global batch / lr_base_size (Goyal et al., arXiv 1706.02677;
DeiT's main.py, Swin's config.py), or × sqrt(global batch / lr_base_size) where a paper scales so, with
global batch = per-process batch × accumulation steps × processes."""

from __future__ import annotations

import math

from ..errors import ConfigError

LR_RULES = ("linear", "sqrt")


def check_lr_rule(lr_base: float | None, lr_base_size: int, rule: str) -> None:
    if lr_base is not None and not (isinstance(lr_base, (int, float)) and not isinstance(lr_base, bool)
                                    and lr_base > 0):
        raise ConfigError(f"lr_base must be a positive number (the lr at the reference batch lr_base_size), "
                          f"got {lr_base!r}")
    if not (isinstance(lr_base_size, int) and not isinstance(lr_base_size, bool) and lr_base_size >= 1):
        raise ConfigError(f"lr_base_size must be a positive integer (the reference global batch of lr_base), "
                          f"got {lr_base_size!r}")
    if rule not in LR_RULES:
        raise ConfigError(f"lr_rule must be one of {', '.join(LR_RULES)}, got {rule!r}")


def resolve_lr(lr: float, lr_base: float | None, lr_base_size: int, rule: str, batch_size: int, accum_steps: int,
               world_size: int, ref_global_batch: int | None = None) -> tuple[float, str | None]:
    """(the run's peak lr, a one-line note or None). Without `lr_base`, `lr` is used as it is (an absolute
    `--lr`). The note states the rule's arithmetic, and whether the global batch differs from the recipe's
    reference `ref_global_batch` (the paper's)."""
    if lr_base is None:
        return lr, None
    check_lr_rule(lr_base, lr_base_size, rule)
    batch = batch_size * accum_steps * world_size
    ratio = batch / lr_base_size
    resolved = lr_base * (ratio if rule == "linear" else math.sqrt(ratio))
    arithmetic = (f"lr {resolved:.4g} = lr_base {lr_base:g} × {'' if rule == 'linear' else 'sqrt'}"
                  f"({batch}/{lr_base_size}) ({rule} rule; global batch {batch} = {batch_size} per process × "
                  f"{accum_steps} accumulation × {world_size} process{'es' if world_size > 1 else ''})")
    if ref_global_batch is not None and batch != ref_global_batch:
        ref = lr_base * (ref_global_batch / lr_base_size if rule == "linear" else
                         math.sqrt(ref_global_batch / lr_base_size))
        return resolved, (f"global batch {batch} differs from the recipe's {ref_global_batch} (where lr is "
                          f"{ref:.4g}): {arithmetic}")
    return resolved, arithmetic
