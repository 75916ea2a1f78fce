"""vitkit: one PyTorch toolkit for the vision-transformer family."""

from .checkpoint import load_checkpoint, save_checkpoint
from .convert.video_init import init_video_from_image
from .errors import CheckpointError, ConfigError, DataError, InputError, VitkitError
from .registry import create_model, list_models, register_model
from .tools.attention_maps import record_attention

__version__ = "0.1.0"

__all__ = [
    "CheckpointError",
    "ConfigError",
    "DataError",
    "InputError",
    "VitkitError",
    "__version__",
    "create_model",
    "init_video_from_image",
    "list_models",
    "load_checkpoint",
    "record_attention",
    "register_model",
    "save_checkpoint",
]
