"""Training: losses (incl. DeiT's DistillationLoss), the epoch loop, optimiser/schedule with layer-wise lr decay,
EMA of the weights, fine-tuning from foreign weights, training state."""

from .ema import EMA
from .engine import TrainState, evaluate, train_epoch, train_one_epoch
from .finetune import init_from_checkpoint
from .layer_decay import layer_ids, lr_scales
from .losses import DistillationLoss
from .optim import build_optimizer, param_groups
from .schedule import WarmupCosine

__all__ = ["EMA", "DistillationLoss", "TrainState", "WarmupCosine", "build_optimizer", "evaluate", "init_from_checkpoint",
           "layer_ids", "lr_scales", "param_groups", "train_epoch", "train_one_epoch"]
