"""Writing a vitkit model in another library's format (`vitkit convert CKPT --to timm|hf|torchvision --out FILE`):
the target's key layout (`from_vitkit`), as .safetensors or a torch .pth/.bin by the file's suffix, and for
transformers its config.json beside the file, so `from_pretrained(folder)` finds both."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from ..io import atomic_write
from . import from_vitkit


def export_weights(model: nn.Module, target: str, out: str | Path) -> list[Path]:
    """Write `model`'s weights for `target` to `out` (and config.json beside it for hf); returns the files written."""
    state_dict, config = from_vitkit(model, target)
    tensors = {k: v.detach().contiguous().clone() for k, v in state_dict.items()}  # no shared storage (safetensors)
    out = Path(out)
    if out.suffix == ".safetensors":
        from safetensors.torch import save_file

        atomic_write(out, lambda tmp: save_file(tensors, tmp, metadata={"format": "pt"}))
    else:
        atomic_write(out, lambda tmp: torch.save(tensors, tmp))
    written = [out]
    if config is not None:
        cfg = out.parent / "config.json"
        atomic_write(cfg, lambda tmp: Path(tmp).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8"))
        written.append(cfg)
    return written


def export_notes(model: nn.Module, target: str) -> list[str]:
    """What the target library computes differently from this model (printed by `convert --to`)."""
    if target == "hf" and getattr(model.config, "act_layer", None) == "quick_gelu":
        return ["transformers' CvT uses GELU where this model (like the official weights) uses QuickGELU: its logits "
                "will differ slightly"]
    return []
