"""Model registry: builders are registered by function name (timm's names where timm has the model)."""

from __future__ import annotations

import difflib
import fnmatch
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

from torch import nn

from .config_types import build_config  # noqa: F401  (models import it from here)
from .errors import CheckpointError, ConfigError

_MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Register a builder under its function name; a second builder with the same name is a bug."""
    name = fn.__name__
    if name in _MODELS:
        raise ValueError(f"model {name!r} is registered twice")
    _MODELS[name] = fn
    return fn


def _load_families() -> None:
    from . import models  # noqa: F401  (importing the package registers every family)


def list_models(pattern: str = "*") -> list[str]:
    """Registered names matching a shell-style pattern, sorted."""
    _load_families()
    return sorted(n for n in _MODELS if fnmatch.fnmatch(n, pattern))


def create_model(name: str, checkpoint: str | None = None, features_only: bool = False,
                 out_indices: int | Sequence[int] | None = None, pretrained: bool = False, **overrides) -> nn.Module:
    """Build a registered model; `overrides` replace config fields; `checkpoint` is any supported weights file.
    With `features_only`, a backbone whose forward gives the maps at `out_indices` (timm's rule: an int takes the
    last n levels, a list those levels; default every stage of a hierarchical model, the last 3 blocks of an
    isotropic one), with `feature_info` per output (models/features.py). `name` may be a published checkpoint's
    tag `name.tag` or an alias (`swin_t`, `microsoft/cvt-13`); with `pretrained` its weights are fetched and loaded
    (a bare name takes its default tag) and the model carries their data config (hub/)."""
    if out_indices is not None and not features_only:
        raise ConfigError("out_indices selects backbone outputs; pass features_only=True with it")
    _load_families()
    from .hub import resolve, weights_overrides

    name, weights = resolve(name, pretrained)
    base, dot, _ = name.partition(".")
    if weights is None and dot and name not in _MODELS and base in _MODELS:
        from .hub import WeightsError

        raise WeightsError(f"unknown weights tag {name!r}: vitkit has no published weights for {base} "
                           "(`vitkit weights` lists the models that have)")
    if weights is not None:
        overrides = {**weights_overrides(weights), **overrides}
        if pretrained:
            if checkpoint is not None:
                raise ConfigError("give either pretrained=True or checkpoint=PATH, not both")
            from .hub import fetch

            checkpoint = fetch(weights)  # before the model is built: a download that fails, fails fast
    if name not in _MODELS:
        close = difflib.get_close_matches(name, list(_MODELS), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else "; `vitkit list` shows the registered names."
        raise ConfigError(f"unknown model {name!r}{hint}")
    model = _MODELS[name](**overrides)
    model.model_name = name
    if weights is not None:
        model.pretrained_weights = weights  # its data config and class names travel with the model
    if checkpoint is not None:
        from .checkpoint import load_weights

        load_weights(model, checkpoint)
    if features_only:
        from .models.features import FeatureBackbone

        return FeatureBackbone(model, out_indices)
    return model


def load_checkpoint(path: str | os.PathLike, **overrides) -> nn.Module:
    """Rebuild a model from a vitkit safetensors file (its name and config are in the metadata; `overrides`
    replace config fields)."""
    from .checkpoint import load_state_dict, read_state_dict

    state_dict, meta = read_state_dict(path)
    if "vitkit_model" not in meta:
        raise CheckpointError(f"{str(path)!r} has no vitkit metadata; use create_model(name, checkpoint=path) instead")
    config = json.loads(meta["vitkit_config"])
    model = create_model(meta["vitkit_model"], **{**config, **overrides})
    load_state_dict(model, state_dict, str(path))
    return model


def is_weights_name(text: str) -> bool:
    """Whether `text` names published weights rather than a file: an alias, or `name.tag` of a registered name
    (an unknown tag included, so that it is reported with the known ones instead of as a missing file)."""
    from .hub import ALIASES, FILE_SUFFIXES, tags_of

    if Path(text).exists():
        return False
    if text in ALIASES:
        return True
    base, dot, tag = text.partition(".")
    if not dot or tag in FILE_SUFFIXES:  # vit_base_patch16_224.pth is a (missing) file, not a tag
        return False
    return bool(tags_of(base)) or base in list_models()


def weights_file(text: str) -> str:
    """`text` itself if it is a file (or not a tag), else the local path of the tag's (or alias') file, fetched."""
    if not is_weights_name(text):
        return text
    from .hub import fetch, resolve

    _, weights = resolve(text, pretrained=True)
    return str(fetch(weights))
