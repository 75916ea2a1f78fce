"""vitkit: one PyTorch toolkit for the vision-transformer family."""

from .checkpoint import load_checkpoint, save_checkpoint
from .data.config import create_transform, data_config
from .errors import CheckpointError, ConfigError, DataError, InputError, VitkitError
from .registry import create_model, list_models, register_model

__version__ = "0.1.0"

__all__ = [
    "CheckpointError",
    "ConfigError",
    "DataError",
    "InputError",
    "VitkitError",
    "__version__",
    "create_model",
    "create_transform",
    "data_config",
    "list_models",
    "load_checkpoint",
    "register_model",
    "save_checkpoint",
]
