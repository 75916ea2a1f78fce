"""Fine-tuning: `--init PATH` loads any weights file vitkit reads (timm, transformers, torchvision, official,
vitkit; the layout is auto-detected) into the model built for this run. Position tables of every kind are
resampled by the model's `adapt_state_dict` (absolute 2-D and temporal tables, Swin bias tables, MViT relative
tables); the classifier is re-initialised when the class count differs; everything else loads strictly. An
image-ViT checkpoint given to a ViViT or TimeSformer model initialises it as the papers do."""

from __future__ import annotations

import os

from torch import Tensor, nn

from ..checkpoint import load_state_dict, read_state_dict
from ..convert import to_vitkit
from ..convert.video_init import init_video_from_image

_CLASSIFIERS = ("head.", "head_dist.")
_PATCH_WEIGHTS = ("patch_embed.proj.weight", "patch_embeddings.projection.weight")


def is_image_vit(state_dict: dict[str, Tensor]) -> bool:
    """A 2-D patch embedding and nothing temporal: an image ViT / DeiT checkpoint in any known layout."""
    patch = [v for k, v in state_dict.items() if k.endswith(_PATCH_WEIGHTS)]
    temporal = any("time" in k or "temporal" in k for k in state_dict)
    return len(patch) == 1 and patch[0].ndim == 4 and not temporal


def init_from_checkpoint(model: nn.Module, path: str | os.PathLike, inflate: str = "central") -> list[str]:
    """Load `path` into `model` in place for fine-tuning; returns what was adapted, one line each (to print).
    `path` may be a published tag or alias (`vitkit weights`): its file is fetched first."""
    from ..registry import weights_file

    state_dict, _ = read_state_dict(weights_file(str(path)))
    notes = []
    if getattr(model, "image_init", False) and is_image_vit(state_dict):  # the model says its paper does this
        init_video_from_image(model, state_dict, inflate)
        how = f"{inflate} tubelet init" if hasattr(model.config, "tubelet_size") else "TimeSformer App. A init"
        return [f"initialised {model.model_name} from the image ViT {str(path)!r} ({how})"]
    state_dict, source = to_vitkit(state_dict, model)
    if hasattr(model, "adapt_state_dict"):
        state_dict = model.adapt_state_dict(dict(state_dict))
    own = model.state_dict()
    stale = [k for k, v in state_dict.items() if k.startswith(_CLASSIFIERS) and k in own and v.shape != own[k].shape]
    if stale:
        old = state_dict[stale[0]].shape[0]
        for k in stale:
            state_dict[k] = own[k]
        notes.append(f"the classifier was re-initialised: the checkpoint predicts {old} classes, this run "
                     f"{model.num_classes}")
    load_state_dict(model, state_dict, str(path))
    notes.insert(0, f"initialised {model.model_name} from {str(path)!r} ({source} layout)")
    return notes
