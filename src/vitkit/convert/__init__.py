"""Weight conversion: each source ecosystem (timm, hf, torchvision, official) has one file of pure
state-dict key/shape maps, registered per model class with a test that recognises its key layout.

`to_vitkit(state_dict, model)` returns a state dict in vitkit's own key layout for `model`: unchanged if
it already is one, else converted by the first registered converter whose detector accepts it.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass

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
