"""Weight conversion: each source ecosystem (timm, hf, torchvision, official) has one file of pure
state-dict key/shape maps, registered per model class with a test that recognises its key layout.

`to_vitkit(state_dict, model)` returns a state dict in vitkit's own key layout for `model`: unchanged if
it already is one, else converted by the first registered converter whose detector accepts it.
`video_init.init_video_from_image` maps an image ViT's weights onto a ViViT or TimeSformer (the papers' inits).
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

StateDict = dict[str, Tensor]


@dataclass(frozen=True)
class Converter:
    source: str                                   # "timm", "hf", "torchvision", "official"
    model_cls: type[nn.Module]                    # the vitkit class it produces weights for
    detect: Callable[[StateDict], bool]           # does this state dict have the source's key layout?
    convert: Callable[[StateDict, nn.Module], StateDict]


_CONVERTERS: list[Converter] = []


def register_converter(source: str, model_cls: type[nn.Module], detect: Callable[[StateDict], bool]):
    """Decorator: register `fn(state_dict, model) -> vitkit state dict` for one source and model class."""
    def wrap(fn: Callable[[StateDict, nn.Module], StateDict]):
        _CONVERTERS.append(Converter(source, model_cls, detect, fn))
        return fn
    return wrap


Rules = list[tuple[str, object]]  # (regex, replacement string or function), applied in order


def rename(key: str, rules: Rules) -> str:
    """One key through every (pattern, replacement) rule in order."""
    for pattern, repl in rules:
        key = re.sub(pattern, repl, key)
    return key


def rename_keys(state_dict: StateDict, rules: Rules) -> StateDict:
    """Every key renamed through `rules` (see `rename`)."""
    return {rename(k, rules): v for k, v in state_dict.items()}


def fuse_qkv(state_dict: StateDict, q: str, k: str, v: str, qkv: str) -> StateDict:
    """Separate q/k/v projections -> one fused `qkv` (rows in q, k, v order): every key containing the substring
    `q` is joined with its `k` and `v` siblings under the name with `q` replaced by `qkv`."""
    out = dict(state_dict)
    for name in [n for n in out if q in n]:
        out[name.replace(q, qkv)] = torch.cat([out.pop(name.replace(q, part)) for part in (q, k, v)])  # -> (3D, ...)
    return out


def _load_sources() -> None:
    for m in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{m.name}")


def detect_source(state_dict: StateDict, model: nn.Module) -> Converter | None:
    """The converter for this state dict and model, or None if it is already in vitkit's layout."""
    _load_sources()
    own = set(model.state_dict())
    if set(state_dict) <= own and len(set(state_dict) & own) >= 0.9 * len(own):
        return None
    for c in _CONVERTERS:
        if isinstance(model, c.model_cls) and c.detect(state_dict):
            return c
    return None


def to_vitkit(state_dict: StateDict, model: nn.Module) -> tuple[StateDict, str]:
    """(state dict in vitkit's layout, name of the source it came from)."""
    c = detect_source(state_dict, model)
    return (state_dict, "vitkit") if c is None else (c.convert(state_dict, model), c.source)
