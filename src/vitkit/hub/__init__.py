"""Published weights by name: `create_model("name.tag", pretrained=True)`, aliases as the other ecosystems spell
the names, and the data config and class names that travel with the weights. The table is `weights.WEIGHTS`;
fetching is `download.fetch`."""

from __future__ import annotations

import fnmatch
from functools import cache
from importlib import resources

from torch import nn

from .download import WeightsError, fetch, mirrored
from .weights import ALIASES, LEFT_OUT, WEIGHTS, DataSpec, Weights

_BY_TAG = {w.tag: w for w in WEIGHTS}
FILE_SUFFIXES = {"safetensors", "pth", "pt", "bin", "ckpt", "pyth", "npz", "pkl"}


def tags_of(name: str) -> list[Weights]:
    """The table's checkpoints of a registered name, the default first."""
    return [w for w in WEIGHTS if w.model == name]


def list_weights(pattern: str = "*") -> list[Weights]:
    """Table entries whose tag (or registered name) matches a shell-style pattern, in table order."""
    return [w for w in WEIGHTS if fnmatch.fnmatch(w.tag, pattern) or fnmatch.fnmatch(w.model, pattern)]


def resolve(name: str, pretrained: bool = False) -> tuple[str, Weights | None]:
    """(registered name, the weights it names) for a registered name, `name.tag` or an alias. A bare name names
    weights only with `pretrained` (then its default tag); an unknown tag of a known name is a WeightsError that
    lists the known tags. A tag of a name without published weights is returned unchanged (the registry says
    whether the name is registered)."""
    name = ALIASES.get(name, name)
    base, _, tag = name.partition(".")
    known = tags_of(base)
    if tag:
        if name in _BY_TAG:
            return base, _BY_TAG[name]
        if known:
            raise WeightsError(f"unknown weights tag {name!r}; known tags of {base}: "
                               f"{', '.join(w.tag.split('.', 1)[1] for w in known)}")
        return name, None  # the registry tells an untagged registered name from an unknown one
    if not pretrained:
        return base, None
    if not known:
        raise WeightsError(f"pretrained=True: vitkit has no published weights for {base!r} (`vitkit weights` lists "
                           "them); pass checkpoint=PATH for a weights file")
    return base, known[0]


def weights_overrides(weights: Weights) -> dict:
    """The config fields the checkpoint needs (e.g. num_classes=0 for a classifier-free release)."""
    return dict(weights.overrides)


def attached_weights(model: nn.Module) -> Weights | None:
    """The table entry a model was built from (`create_model("name.tag")`), if any."""
    w = getattr(model, "pretrained_weights", None)
    return w if isinstance(w, Weights) else None


def data_values(model: nn.Module) -> dict | None:
    """The preprocessing of the weights a model was built from (timm's keys less input_size), or None."""
    w = attached_weights(model)
    if w is None:
        return None
    d: DataSpec = w.data
    return {"interpolation": d.interpolation, "mean": tuple(d.mean), "std": tuple(d.std), "crop_pct": d.crop_pct,
            "crop_mode": d.crop_mode}


@cache
def _read_names(label_set: str) -> tuple[str, ...]:
    text = resources.files("vitkit.data").joinpath("classes", f"{label_set}.txt").read_text(encoding="utf-8")
    return tuple(line for line in text.splitlines() if line)


def class_names(model: nn.Module) -> list[str] | None:
    """The class names of the weights a model was built from (ImageNet-1k, Kinetics-400), when they fit its head."""
    w = attached_weights(model)
    if w is None or w.data.classes is None:
        return None
    names = _read_names(w.data.classes)
    return list(names) if len(names) == getattr(model, "num_classes", len(names)) else None


__all__ = ["ALIASES", "LEFT_OUT", "WEIGHTS", "Weights", "WeightsError", "attached_weights", "class_names",
           "data_values", "fetch", "list_weights", "mirrored", "resolve",
           "tags_of", "weights_overrides"]
