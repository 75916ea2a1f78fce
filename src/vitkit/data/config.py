"""Each registered model's data config: the preprocessing its compatible weights were trained and evaluated
with, so converted weights score in vitkit as they do in their home library.

`data_config(model)` returns a dict with timm's keys — input_size (C, H, W), interpolation, mean, std,
crop_pct, crop_mode — plus num_frames for video models and `source` (whose weights the values follow).
Each family declares its table beside its builders (`data_configs` in models/<family>.py, keyed by
registry-name patterns, first match wins) and the model answers `data_sources()`; a name can list several
sources, the first being the default (`data_config(model, source="torchvision")` picks another):

- ViT: timm's default weights (augreg, Inception 0.5 statistics, bicubic, crop_pct 0.9; 1.0 at 384);
  torchvision's vit_b_16 (ImageNet statistics, bilinear, 224/256).
- DeiT, Swin, MViTv2 images: timm (ImageNet statistics, bicubic, crop_pct 0.9; 1.0 at 384); Swin also
  torchvision's swin_t/s/b (bicubic, resize 232 -> crop 224 for T, 246 for S, 238 for B).
- CvT: transformers' ConvNextImageProcessor as configured for microsoft/cvt-* (ImageNet, bicubic,
  crop_pct 224/256; at 384 a warp to 384×384, crop_mode "squash").
- ViViT: Scenic (pixels in [-1, 1]: mean = std = 0.5; shorter side 256, centre crop 224, bilinear).
- TimeSformer: the official SlowFast-based code (mean 0.45, std 0.225, shorter side to the crop size).
- MViT video: torchvision's mvit_v1_b / mvit_v2_s (SlowFast's 0.45 / 0.225, bilinear, shorter side 256, crop 224).

The input size follows the model (its config's img_size / in_chans / num_frames), so a model built at another
resolution keeps its weights' interpolation, statistics and crop ratio.
"""

from __future__ import annotations

from torch import nn

from ..errors import ConfigError
from .transforms import CROP_MODES, channel_stats, image_pipeline


def __getattr__(name: str):
    if name == "DATA_CONFIGS":  # every family's table, (registry-name pattern, {source: values}), for listings
        return _all_tables()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _all_tables() -> tuple[tuple[str, dict[str, dict]], ...]:
    from .. import models  # noqa: F401  (importing the package defines every family)
    from ..models.base import VitkitModel

    tables, todo = [], [VitkitModel]
    while todo:
        cls = todo.pop(0)
        tables += vars(cls).get("data_configs", ())
        todo += cls.__subclasses__()
    return tuple(tables)


def data_config(model: nn.Module | str, source: str | None = None) -> dict:
    """The preprocessing of `model`'s compatible weights as a dict with timm's keys (see the module doc).
    `model` is a vitkit model (its registry name and input size are used) or a registered name; a model built from
    a published checkpoint (`create_model("name.tag")`) gets that checkpoint's values unless `source` is given."""
    if isinstance(model, str):
        import torch

        from ..registry import create_model

        with torch.device("meta"):
            model = create_model(model)
    name = getattr(model, "model_name", None)
    if name is None:
        raise ConfigError("the model has no registry name (build it with vitkit.create_model) so its data config "
                          "is unknown; pass a config dict instead")
    from ..hub import attached_weights, data_values

    tagged = data_values(model) if source is None else None  # built from published weights: theirs
    if tagged is not None:
        values, source = tagged, attached_weights(model).source
    else:
        sources = model.data_sources() if hasattr(model, "data_sources") else {}
        if not sources:
            raise ConfigError(f"no data config for model {name!r}; pass a config dict (timm's keys: input_size, "
                              "interpolation, mean, std, crop_pct) instead")
        if source is None:
            source = next(iter(sources))
        if source not in sources:
            raise ConfigError(f"model {name!r} has data configs for {', '.join(sources)}, not {source!r}")
        values = dict(sources[source])
    shape = model.input_shape()  # (C, H, W) or (C, T, H, W)
    values["mean"], values["std"] = (tuple(v) for v in channel_stats(values["mean"], values["std"], shape[0]))
    cfg = {"input_size": (shape[0], *shape[-2:]), **values}
    if len(shape) == 4:
        cfg["num_frames"] = shape[1]
    cfg["source"] = source
    return cfg


def model_data_config(model: nn.Module) -> dict | None:
    """`data_config(model)`, or None for a model without a table entry or a registry name (callers then fall
    back to `default_config`)."""
    try:
        return data_config(model)
    except ConfigError:
        return None


def resolve_config(model_or_config: nn.Module | str | dict) -> dict:
    """A data config from a model, a registered name, or a config dict (checked)."""
    if not isinstance(model_or_config, dict):
        return data_config(model_or_config)
    cfg = dict(model_or_config)
    missing = {"input_size", "mean", "std"} - set(cfg)
    if missing:
        raise ConfigError(f"the data config lacks {', '.join(sorted(missing))}; expected timm's keys input_size, "
                          "interpolation, mean, std, crop_pct")
    if len(cfg["mean"]) != cfg["input_size"][0] or len(cfg["std"]) != cfg["input_size"][0]:
        raise ConfigError(f"the data config has {len(cfg['mean'])} mean and {len(cfg['std'])} std values for "
                          f"{cfg['input_size'][0]} channels; expected one per channel")
    if cfg.get("crop_mode", "center") not in CROP_MODES:
        raise ConfigError(f"unknown crop_mode {cfg['crop_mode']!r}; expected one of {', '.join(CROP_MODES)}")
    return cfg


def create_transform(model_or_config: nn.Module | str | dict, train: bool = False,
                     randaugment: str | None = None, reprob: float = 0.0, hflip: float = 0.5, **train_options):
    """The v2 pipeline for a model (or a data config): eval — shorter side to size / crop_pct, centre crop,
    normalise; train — DeiT's RandomResizedCrop + flip (+ RandAugment, random erasing; `train_options`:
`image_pipeline`'s scale_jitter, aspect_jitter, color_augment for the video papers). Takes PIL images or
    uint8 (C, H, W) tensors (video models: uint8 clips (C, T, H, W)) and gives normalised float tensors."""
    cfg = resolve_config(model_or_config)
    return image_pipeline(tuple(cfg["input_size"][-2:]), cfg["mean"], cfg["std"], train,
                          interpolation=cfg.get("interpolation", "bicubic"), crop_pct=cfg.get("crop_pct", 1.0),
                          crop_mode=cfg.get("crop_mode", "center"), randaugment=randaugment, reprob=reprob,
                          hflip=hflip, video="num_frames" in cfg, **train_options)
