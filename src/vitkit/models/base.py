"""What every vitkit model shares: its config, its input shape, the hooks checkpoints use, the model protocol
(what the layers above ask a model instead of knowing its class: layer-decay groups, export axes, position
tables, attention layouts, data configs, the name of its weight layout, its init from an image ViT;
docs/architecture.md), and the small checks each family's `validate_config` is made of (each raises ConfigError
with one sentence)."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from typing import Any, ClassVar, NamedTuple

from torch import Tensor, nn

from ..errors import ConfigError
from ..layers import Linear
from ..layers.checkpointing import set_grad_checkpointing
from ..layers.tokens import AttentionCall, TokenLayout
from .features import FeatureInfo, check_output_fmt, feature_take_indices, format_tokens, split_prefix


def to_2tuple(v: int | tuple[int, int]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)


def check_at_least(cfg: Any, minimum: int, *names: str) -> None:
    """Every named option (an int or a tuple of ints) is ≥ minimum (1 for sizes, heads and strides, 0 for paddings)."""
    for name in names:
        value = getattr(cfg, name)
        if any(v < minimum for v in (value if isinstance(value, tuple) else (value,))):
            raise ConfigError(f"{name} {value} must be {'positive' if minimum == 1 else f'at least {minimum}'}"
                              f"{' in every entry' if isinstance(value, tuple) else ''}")


def check_divisible(name: str, value: int, by_name: str, by: int, expected: str | None = None) -> None:
    """value % by == 0, e.g. a width and its head count."""
    if value % by:
        raise ConfigError(f"{name} {value} is not divisible by {by_name} {by}; "
                          f"{expected or f'choose {by_name} dividing {name}'}")


def check_per_stage(cfg: Any, num_stages: int, source: str, names: Iterable[str]) -> None:
    """Each named per-stage tuple has one value per stage (num_stages, counted from the option `source`)."""
    bad = {n: getattr(cfg, n) for n in names if len(getattr(cfg, n)) != num_stages}
    if num_stages == 0 or bad:
        raise ConfigError(f"per-stage options must have one value per stage, with at least one stage ({num_stages} "
                          f"from {source}), got {', '.join(f'{n}={v}' for n, v in bad.items()) or f'{source}=()'}")


def check_choice(name: str, value: str, choices: Iterable[str]) -> None:
    """value is one of the accepted strings."""
    choices = tuple(choices)
    if value not in choices:
        raise ConfigError(f"{name} must be {', '.join(map(repr, choices[:-1]))} or {choices[-1]!r}, got {value!r}")


def check_patch_multiple(img_size: int | tuple[int, int], patch_size: int) -> None:
    """Both sides of the image the model is built for are multiples of the patch size."""
    if any(s % patch_size for s in to_2tuple(img_size)):
        raise ConfigError(f"img_size {img_size} is not divisible by the patch size (patch_size {patch_size}); choose an "
                          f"image size whose sides it divides")


# --- pieces of the model protocol (the methods are on VitkitModel) ----------------------------------------------
HEAD_GROUP = r"(norm|fc_norm|temporal_norm|head|head_dist)\."  # the final norms and the classifiers
DataConfigs = tuple[tuple[str, dict[str, dict]], ...]  # (registry-name pattern, {source: preprocessing})


def block_groups(container: str, num_blocks: int, entry: Sequence[str] = ()) -> list[str]:
    """Layer-decay groups of one stack: a pattern per block `container.j.`; the `entry` parameter-name prefixes
    (a stage's downsampling, its class token) join the stage's first block."""
    groups = [re.escape(f"{container}.{j}.") for j in range(num_blocks)]
    if entry and groups:
        groups[0] = "|".join([groups[0], *map(re.escape, entry)])
    return groups


def data_cfg(mean: Sequence[float], std: Sequence[float], interpolation: str, crop_pct: float,
             crop_mode: str = "center") -> dict:
    """Evaluation preprocessing of a set of weights, in timm's keys (the input size comes from the model)."""
    return {"interpolation": interpolation, "mean": tuple(mean), "std": tuple(std), "crop_pct": crop_pct,
            "crop_mode": crop_mode}


class PositionTable(NamedTuple):
    """A learned position table to look at. kind "embedding": `values` (N, D), one row per position of `grid`
    ((H, W), (T, H, W) or (n,)); kind "bias": `values` (h, *grid), one map per head over relative offsets."""
    title: str
    values: Tensor
    grid: tuple[int, ...]
    kind: str = "embedding"


class VitkitModel(nn.Module):
    """Base of every model: `config` (a frozen dataclass) rebuilds it; `adapt_state_dict` lets a checkpoint
    saved at another size load (position tables resampled, derived buffers rebuilt)."""

    config: Any
    model_name: str | None = None
    is_video: bool = False
    hierarchical: ClassVar[bool] = False  # levels are stages (the final norm fits the last one only), not blocks
    feature_info: FeatureInfo  # one entry per level (models/features.py)
    num_classes: int
    num_features: int

    def __init__(self, cfg: Any, num_features: int):
        """Keep the (validated) config that rebuilds the model, its class count and the width of the pooled
        features the head reads."""
        super().__init__()
        self.config = cfg
        self.num_classes, self.num_features = cfg.num_classes, num_features

    def input_shape(self) -> tuple[int, ...]:
        """(C, H, W) for images, (C, T, H, W) for videos, from the config."""
        c = self.config
        hw = to_2tuple(c.img_size)
        return (c.in_chans, c.num_frames, *hw) if self.is_video else (c.in_chans, *hw)

    def no_weight_decay(self) -> set[str]:
        """Parameter names excluded from weight decay besides biases and norms (tokens, position tables)."""
        return set()

    def adapt_state_dict(self, state_dict: dict[str, Tensor]) -> dict[str, Tensor]:
        """Reshape entries of a checkpoint from another size to this model's sizes; default: unchanged."""
        return state_dict

    def forward_features(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        """x: images (B, C, H, W) or videos (B, C, T, H, W) -> logits (B, num_classes) (features (B, num_features)
        when num_classes is 0)."""
        return self.forward_head(self.forward_features(x))

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute each block's activations in the backward pass (non-reentrant activation checkpointing)."""
        set_grad_checkpointing(self, enable)

    def new_head(self, num_classes: int) -> nn.Module:
        """The classifier on pooled features: Linear(num_features, num_classes), or Identity for 0 classes."""
        return Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the classifier (fine-tuning on another label set); the config follows."""
        self.num_classes = num_classes
        self.config = replace(self.config, num_classes=num_classes)
        self.head = self.new_head(num_classes)

    # --- the model protocol: what train/, tools/, data/ and convert/ ask a model (docs/architecture.md) ----------
    # The name of the family's state-dict layout: convert/ registers its key maps to and from other libraries under
    # it (models with the same keys share one, as DeiT is ViT's); None: no key maps.
    weight_layout: ClassVar[str | None] = None
    image_init: ClassVar[bool] = False  # an image ViT checkpoint initialises it as its paper says (convert/video_init.py)
    # With image_init, how the parameters an image ViT does not have start: (regex searched in the name, the image
    # parameter copied as its `re.sub` replacement, or None for zeros); first match wins; the rest keep their init.
    image_init_rules: ClassVar[tuple[tuple[str, str | None], ...]] = ()
    data_configs: ClassVar[DataConfigs] = ()  # the family's table, first match of `model_name` wins (`data_sources`)

    def image_model(self) -> VitkitModel | None:
        """With `image_init`: the image model (a ViT of this model's width, depth, heads and patch) whose checkpoint
        initialises this one; convert/video_init.py reads a checkpoint of another layout through its key maps."""
        return None

    def layer_groups(self) -> list[str]:
        """Layer-wise lr decay groups (timm's `group_matcher` idea): one regular expression over parameter names
        per group after the first, from the input side to the head; a parameter is in the first group whose
        pattern matches its name's start (ids 1, 2, ...), or in group 0 (patch embedding, tokens, position
        tables) when none does. The last group is the head. Default: an isotropic stack `blocks`."""
        return [*block_groups("blocks", len(self.blocks)), HEAD_GROUP]

    def size_dependence(self) -> dict[str, str]:
        """For each input axis beyond the batch ("frames" for videos, "height", "width"), what in the forward
        depends on its size: "none" (convolutions and pooling only), "positions" (only position tables resampled
        to the token grid) or "grid" (plans or masks built for one grid). ONNX export leaves the first kind free,
        the second where the exporter can record the resampling. Default: "grid" (fixed)."""
        return dict.fromkeys(("frames", "height", "width") if self.is_video else ("height", "width"), "grid")

    def input_steps(self) -> dict[str, int]:
        """The smallest change of each input axis that gives another valid token grid: one patch in space, one
        tubelet in time; 8 pixels and 1 frame for models without patches."""
        c = self.config
        p = getattr(c, "patch_size", 8)
        return {"batch": 1, "frames": getattr(c, "tubelet_size", 1), "height": p, "width": p}

    def position_tables(self) -> list[PositionTable]:
        """Every learned position table, to plot (tools/visualize.py); default none."""
        return []

    def attention_layout(self, call: AttentionCall) -> TokenLayout | None:
        """How the recorded attention layer `call` sits on this module's tokens (layers/tokens.py), or None when
        this module is not what groups them. The tools ask the modules running at the call innermost first (a
        block, then the model), so a family answers in its blocks or in its model; attention over a reduced
        token map (layers/reduced_attention.py) is mapped by the tools themselves. Default: None."""
        return None

    def data_sources(self) -> dict[str, dict]:
        """{source: evaluation preprocessing} of this model's compatible weights (the first is the default),
        from the family's `data_configs` by registry name; {} when the model has no entry."""
        name = self.model_name or ""
        return next((sources for pattern, sources in self.data_configs if fnmatch.fnmatch(name, pattern)), {})

    # --- intermediate features (timm's convention; the shared pieces are in models/features.py) -----------------
    def _intermediates(self, x: Tensor) -> Iterator[tuple[Tensor, tuple[int, ...]]]:
        """Yield each level's running tensor and its token grid, in order."""
        raise NotImplementedError

    def _split_tokens(self, x: Tensor, grid: tuple[int, ...]) -> tuple[Tensor | None, Tensor]:
        """A level's running tensor -> prefix tokens (B, P, C) or None, patch tokens (B, N, C)."""
        return split_prefix(x, grid)

    def _finish(self, x: Tensor, grid: tuple[int, ...]) -> Tensor:
        """The last level's running tensor -> what forward_features returns."""
        raise NotImplementedError

    def forward_intermediates(self, x: Tensor, indices: int | Sequence[int] | None = None, norm: bool = False,
                              output_fmt: str = "NCHW", intermediates_only: bool = False,
                              return_prefix_tokens: bool = False, stop_early: bool = False):
        """x: (B, C, H, W) or (B, C, T, H, W) -> (forward_features output, intermediates), or the intermediates
        alone with `intermediates_only`. `indices`: None takes every level, n the last n, a list those levels.
        Each intermediate is a map (B, C_i, H_i, W_i) (videos (B, C_i, T_i, H_i, W_i)) for "NCHW"/"NCTHW", or
        patch tokens (B, N_i, C_i) for "NLC"; class/distillation tokens are split off and, with
        `return_prefix_tokens`, paired with it as (map, prefix (B, P, C_i)). `norm` applies the final norm
        (every level of an isotropic model, the last stage of a hierarchical one). The levels are called as
        modules, so gradient checkpointing applies here too; the pass ends at the last index taken when
        `stop_early` or `intermediates_only` (the final output is then the last level's raw tensor)."""
        check_output_fmt(output_fmt)
        num_levels = len(self.feature_info)
        take, last = feature_take_indices(num_levels, indices)
        out, i, y, grid = [], -1, x, ()
        for i, (y, grid) in enumerate(self._intermediates(x)):
            if i in take:
                prefix, patches = self._split_tokens(y, grid)
                final_norm = self._intermediate_norm(i) if norm else None
                if final_norm is not None:
                    prefix, patches = (None if prefix is None else final_norm(prefix)), final_norm(patches)
                patches = format_tokens(patches, grid, output_fmt)
                out.append((patches, prefix) if return_prefix_tokens and prefix is not None else patches)
            if i == last and (stop_early or intermediates_only):
                break
        if intermediates_only:
            return out
        return (self._finish(y, grid) if i == num_levels - 1 else y), out

    def _intermediate_norm(self, i: int) -> nn.Module | None:
        norm = getattr(self, "norm", None)
        return norm if not self.hierarchical or i == len(self.feature_info) - 1 else None

    def prune_intermediate_layers(self, indices: int | Sequence[int] = 1, prune_norm: bool = False,
                                  prune_head: bool = True) -> list[int]:
        """Drop the levels past the last of `indices` (and the head, and the final norm when asked or when a
        hierarchical model loses its last stage); returns the absolute indices kept."""
        take, last = feature_take_indices(len(self.feature_info), indices)
        pruned_end = last < len(self.feature_info) - 1
        container, end = self.feature_info[last]["module"].rsplit(".", 1)
        setattr(self, container, getattr(self, container)[:int(end) + 1])
        self.feature_info = FeatureInfo(self.feature_info[:last + 1])
        stage_cut = self.hierarchical and pruned_end  # the final norm and the head are sized for the last stage
        if (prune_norm or stage_cut) and isinstance(getattr(self, "norm", None), nn.Module):
            self.norm = nn.Identity()
        if stage_cut:
            self.num_features = self.feature_info[-1]["num_chs"]
        if prune_head or stage_cut:
            self.reset_classifier(0)
        return take
