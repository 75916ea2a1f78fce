"""Weight conversion: each source ecosystem (timm, hf, torchvision, official) has one file of pure
state-dict key/shape maps, registered per weight layout (the `weight_layout` a family declares in its own file
under models/: convert/ never names a model class) with a test that recognises the source's key layout.

`to_vitkit(state_dict, model)` returns a state dict in vitkit's own key layout for `model`: unchanged if
it already is one, else converted by the first registered converter whose detector accepts it.
`from_vitkit(model, target)` goes the other way (timm, hf, torchvision): each source file registers its inverse
maps next to its forward ones, both derived from one two-way key table (`Pairs`) where the map is a renaming.
`video_init.init_video_from_image` maps an image ViT's weights onto a ViViT or TimeSformer (the papers' inits).
A family defined elsewhere (a plug-in, a test) registers its own maps under its layout name the same way.
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
    layout: str                                   # the `weight_layout` of the vitkit models it produces weights for
    detect: Callable[[StateDict], bool]           # does this state dict have the source's key layout?
    convert: Callable[[StateDict, nn.Module], StateDict]


_CONVERTERS: list[Converter] = []


def weight_layout(model: nn.Module) -> str | None:
    """The name `model`'s family registers its key maps under (models/base.py), or None."""
    return getattr(model, "weight_layout", None)


def register_converter(source: str, layout: str, detect: Callable[[StateDict], bool]):
    """Decorator: register `fn(state_dict, model) -> vitkit state dict` for one source and weight layout."""
    def wrap(fn: Callable[[StateDict, nn.Module], StateDict]):
        _CONVERTERS.append(Converter(source, layout, detect, fn))
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


Pairs = list[tuple[str, str]]  # (foreign template, vitkit template): one key table for both directions
_SLOT = re.compile(r"\{(?:(\d+)\*)?([a-z])(?:\+(\d+))?\}")  # {i}, {i+1}, {2*i+1}: an index and its linear map


def _template_regex(template: str) -> tuple[str, list[tuple[int, str, int]]]:
    """A template's regex (literal text, `^`/`$` anchors, each slot a captured integer) and its slots (a, x, b)."""
    head, tail = template.startswith("^"), template.endswith("$")
    body = template[head:len(template) - tail]
    pattern, slots, pos = "", [], 0
    for m in _SLOT.finditer(body):
        pattern += re.escape(body[pos:m.start()]) + r"(\d+)"
        slots.append((int(m[1] or 1), m[2], int(m[3] or 0)))
        pos = m.end()
    return ("^" if head else "") + pattern + re.escape(body[pos:]) + ("$" if tail else ""), slots


def _pair_rule(src: str, dst: str) -> tuple[str, Callable]:
    pattern, slots = _template_regex(src)
    out = dst.strip("^$")

    def repl(m: re.Match) -> str:
        values = {}
        for (a, x, b), text in zip(slots, m.groups()):
            n = int(text) - b
            if n < 0 or n % a:  # not this slot's form (e.g. an even index for {2*i+1}): leave the key alone
                return m[0]
            values[x] = n // a
        return _SLOT.sub(lambda s: str(int(s[1] or 1) * values[s[2]] + int(s[3] or 0)), out)
    return pattern, repl


def pair_rules(pairs: Pairs, to_foreign: bool = False) -> Rules:
    """`rename` rules from a two-way table: foreign -> vitkit in table order, or vitkit -> foreign in reverse order
    (each rule undone after the rules that followed it)."""
    if to_foreign:
        return [_pair_rule(v, f) for f, v in reversed(pairs)]
    return [_pair_rule(f, v) for f, v in pairs]


def split_qkv(state_dict: StateDict, qkv: str, q: str, k: str, v: str) -> StateDict:
    """The inverse of `fuse_qkv`: every key containing `qkv` split into its q, k, v thirds (rows in that order)."""
    out = {}
    for name, t in state_dict.items():
        if qkv in name:
            for part, piece in zip((q, k, v), t.chunk(3)):  # (3D, ...) -> 3 × (D, ...)
                out[name.replace(qkv, part)] = piece.clone()
        else:
            out[name] = t
    return out


Exporter = Callable[[nn.Module], tuple[StateDict, dict | None]]  # model -> (target state dict, config.json or None)
_EXPORTERS: dict[tuple[str, str], Exporter] = {}  # (target, weight layout) -> exporter
TARGETS = ("timm", "hf", "torchvision")


def register_exporter(target: str, layout: str):
    """Decorator: register `fn(model) -> (state dict in the target's layout, transformers config dict or None)` for
    the models of one weight layout."""
    def wrap(fn: Exporter) -> Exporter:
        _EXPORTERS[(target, layout)] = fn
        return fn
    return wrap


def from_vitkit(model: nn.Module, target: str) -> tuple[StateDict, dict | None]:
    """`model`'s weights in `target`'s key layout (and, for transformers, its config.json as a dict)."""
    from ..errors import ConfigError

    if target not in TARGETS:
        raise ConfigError(f"unknown conversion target {target!r}; expected one of {', '.join(TARGETS)}")
    _load_sources()
    layout = weight_layout(model)
    if (target, layout) in _EXPORTERS:
        return _EXPORTERS[(target, layout)](model)
    have = sorted(name for t, name in _EXPORTERS if t == target)
    raise ConfigError(f"{target} has no {layout or type(model).__name__} model to convert "
                      f"{getattr(model, 'model_name', '')} into; {target} covers {', '.join(have)}")


def _load_sources() -> None:
    for m in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{m.name}")


def detect_source(state_dict: StateDict, model: nn.Module) -> Converter | None:
    """The converter for this state dict and model, or None if it is already in vitkit's layout."""
    _load_sources()
    own = set(model.state_dict())
    if set(state_dict) <= own and len(set(state_dict) & own) >= 0.9 * len(own):
        return None
    layout = weight_layout(model)
    return next((c for c in _CONVERTERS if c.layout == layout and c.detect(state_dict)), None)


def to_vitkit(state_dict: StateDict, model: nn.Module) -> tuple[StateDict, str]:
    """(state dict in vitkit's layout, name of the source it came from)."""
    c = detect_source(state_dict, model)
    return (state_dict, "vitkit") if c is None else (c.convert(state_dict, model), c.source)
