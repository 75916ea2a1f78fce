"""vitkit: one PyTorch toolkit for the vision-transformer family."""

from .checkpoint import load_checkpoint, save_checkpoint
from .errors import CheckpointError, ConfigError, DataError, InputError, VitkitError
from .registry import create_model, list_models, register_model
from .tools.fast import optimize_for_inference

__version__ = "0.1.0"

__all__ = [
    "CheckpointError",
    "ConfigError",
    "DataError",
    "InputError",
    "VitkitError",
    "__version__",
    "create_model",
    "list_models",
    "load_checkpoint",
    "optimize_for_inference",
    "register_model",
    "save_checkpoint",
]
