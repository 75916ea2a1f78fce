"""vitkit: one PyTorch toolkit for the vision-transformer family."""

from .checkpoint import save_checkpoint
from .convert.video_init import init_video_from_image
from .errors import CheckpointError, ConfigError, DataError, InputError, VitkitError
from .registry import create_model, list_models, load_checkpoint, register_model

__version__ = "0.1.0"
# Loaded on first use: the data pipeline (torchvision) and the tools layer, which sits above the models and is
# not part of what `import vitkit` costs.
_LAZY = {"create_transform": ".data.config", "data_config": ".data.config", "record_attention": ".tools.attention_maps",
         "export_onnx": ".tools.export", "onnx_dynamic_axes": ".tools.export", "optimize_for_inference": ".tools.fast"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module 'vitkit' has no attribute {name!r}")


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
    "export_onnx",
    "init_video_from_image",
    "list_models",
    "load_checkpoint",
    "onnx_dynamic_axes",
    "optimize_for_inference",
    "record_attention",
    "register_model",
    "save_checkpoint",
]
