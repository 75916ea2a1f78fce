"""vitkit: one PyTorch toolkit for the vision-transformer family."""

from .checkpoint import load_checkpoint, save_checkpoint
from .errors import CheckpointError, ConfigError, DataError, InputError, VitkitError
from .registry import create_model, list_models, register_model
from .tools.export import export_onnx, onnx_dynamic_axes

__version__ = "0.1.0"

__all__ = [
    "CheckpointError",
    "ConfigError",
    "DataError",
    "InputError",
    "VitkitError",
    "__version__",
    "create_model",
    "export_onnx",
    "list_models",
    "load_checkpoint",
    "onnx_dynamic_axes",
    "register_model",
    "save_checkpoint",
]
