"""Training: losses (incl. DeiT's DistillationLoss), the epoch loop, optimiser/schedule, training state."""

from .engine import evaluate, train_one_epoch
from .losses import DistillationLoss
from .optim import build_optimizer, param_groups
from .schedule import WarmupCosine

__all__ = ["DistillationLoss", "WarmupCosine", "build_optimizer", "evaluate", "param_groups", "train_one_epoch"]
