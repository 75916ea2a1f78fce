"""The published checkpoints of each registered model, as tags `name.tag` (timm's convention): where each file
lives, its format, its checksum where the source publishes one, the data config it was trained with, and its
published accuracy with the citation. The first tag of a name is its default.

Sources of the facts (read from the installed packages or the projects' repositories):
- timm: `timm/models/{vision_transformer,deit,swin_transformer,mvitv2}.py` `default_cfgs` (hub repository
  `timm/<name>.<tag>`, file `model.safetensors`, data config); top-1 from huggingface/pytorch-image-models
  `results/results-imagenet.csv` (commit aa4b5850, the row of the tag).
- torchvision: the `Weights` enums in `torchvision/models/{swin_transformer,vision_transformer}.py` and
  `torchvision/models/video/mvit.py` (URL with its sha256 prefix, transforms, `_metrics` acc@1).
- transformers hub repositories: the weights the papers' authors released, converted by transformers; their
  accuracy is the official release's (microsoft/CvT README.md; facebookresearch/TimeSformer README.md;
  google-research/scenic `scenic/projects/vivit/README.md`).
- official releases: facebookresearch/TimeSformer README.md (model zoo URLs).
"""

from __future__ import annotations

from dataclasses import dataclass, field

IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
INCEPTION = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
SLOWFAST = ((0.45, 0.45, 0.45), (0.225, 0.225, 0.225))

TIMM_RESULTS = "huggingface/pytorch-image-models results/results-imagenet.csv @aa4b5850"
NOT_PUBLISHED = None  # top1 is None only with a `top1_note` saying why


@dataclass(frozen=True)
class DataSpec:
    """The preprocessing the weights were trained and evaluated with (timm's keys) and their label set."""
    input_size: tuple[int, int, int]          # (C, H, W)
    interpolation: str
    mean: tuple[float, ...]
    std: tuple[float, ...]
    crop_pct: float
    num_classes: int                          # 0: no classifier (a feature extractor)
    classes: str | None                       # "imagenet-1k", "kinetics-400" (files vitkit ships) or None
    crop_mode: str = "center"
    num_frames: int | None = None             # video weights: frames per clip


@dataclass(frozen=True)
class Weights:
    """One published checkpoint of a registered model."""
    tag: str                                  # "<registered name>.<tag>"
    source: str                               # the ecosystem that publishes it: timm, torchvision, hf, official
    fmt: str                                  # file format: safetensors, pth, bin, pyth
    data: DataSpec
    top1: float | None                        # published top-1 (%) on the data's label set, or NOT_PUBLISHED
    citation: str                             # where top1 (and the file) are stated
    hub_repo: str | None = None               # Hugging Face hub repository id ...
    filename: str | None = None               # ... and the file in it
    url: str | None = None                    # or a plain URL
    sha256: str | None = None                 # the published sha256 (or its prefix, as torchvision's file names)
    top1_note: str = ""                       # evaluation protocol, or why there is no figure
    overrides: tuple[tuple[str, object], ...] = field(default=())  # config fields the checkpoint needs

    @property
    def model(self) -> str:
        return self.tag.split(".", 1)[0]

    @property
    def where(self) -> str:
        """The source in words, for messages: `hub timm/x.y:model.safetensors` or the URL."""
        return f"hub {self.hub_repo}:{self.filename}" if self.hub_repo else str(self.url)


def _timm(tag: str, top1: float | None, stats=IMAGENET, size: int = 224, num_classes: int = 1000,
          note: str = "") -> Weights:
    crop = 1.0 if size == 384 else 0.9
    return Weights(tag, "timm", "safetensors",
                   DataSpec((3, size, size), "bicubic", *stats, crop, num_classes,
                            "imagenet-1k" if num_classes == 1000 else None),
                   top1, TIMM_RESULTS if top1 is not None else "timm default_cfgs", hub_repo=f"timm/{tag}",
                   filename="model.safetensors", top1_note=note,
                   overrides=() if num_classes == 1000 else (("num_classes", num_classes),))


def _tv_image(tag: str, url: str, top1: float, resize: int, interpolation: str, file: str) -> Weights:
    return Weights(tag, "torchvision", "pth",
                   DataSpec((3, 224, 224), interpolation, *IMAGENET, 224 / resize, 1000, "imagenet-1k"),
                   top1, f"torchvision {file} (acc@1)", url=url, sha256=url.rsplit("-", 1)[1].split(".")[0])


def _tv_video(tag: str, url: str, top1: float) -> Weights:
    return Weights(tag, "torchvision", "pth",
                   DataSpec((3, 224, 224), "bilinear", *SLOWFAST, 224 / 256, 400, "kinetics-400", num_frames=16),
                   top1, "torchvision models/video/mvit.py (acc@1)", url=url,
                   sha256=url.rsplit("-", 1)[1].split(".")[0],
                   top1_note="video-level, 5 clips of 16 frames (torchvision's _docs)")


def _official_timesformer(name: str, paper_name: str, size: int, frames: int, top1: float, dropbox: str) -> Weights:
    return Weights(f"{name}.official_k400", "official", "pyth",
                   DataSpec((3, size, size), "bilinear", *SLOWFAST, 1.0, 400, "kinetics-400", num_frames=frames),
                   top1, f"facebookresearch/TimeSformer README.md ({paper_name}, K400, {frames} frames, {size})",
                   url=f"https://www.dropbox.com/s/{dropbox}?dl=1",
                   top1_note="the README links the file with ?dl=0 (a page); ?dl=1 is Dropbox's direct download")


_ORIG_IN21K = "ImageNet-21k pretraining without a classifier (timm num_classes=0): no top-1 to publish"

WEIGHTS: tuple[Weights, ...] = (
    # --- ViT (timm hub; torchvision) --------------------------------------------------------------------------
    _timm("vit_base_patch16_224.augreg2_in21k_ft_in1k", 85.108, INCEPTION),
    _timm("vit_base_patch16_224.augreg_in21k_ft_in1k", 84.534, INCEPTION),
    _timm("vit_base_patch16_224.orig_in21k", NOT_PUBLISHED, INCEPTION, num_classes=0, note=_ORIG_IN21K),
    _tv_image("vit_base_patch16_224.tv_in1k", "https://download.pytorch.org/models/vit_b_16-c867db91.pth", 81.072,
              256, "bilinear", "models/vision_transformer.py"),
    _timm("vit_tiny_patch16_224.augreg_in21k_ft_in1k", 75.452, INCEPTION),
    _timm("vit_small_patch16_224.augreg_in21k_ft_in1k", 81.402, INCEPTION),
    _timm("vit_base_patch16_384.augreg_in21k_ft_in1k", 86.010, INCEPTION, size=384),
    _timm("vit_base_patch32_224.augreg_in21k_ft_in1k", 80.732, INCEPTION),
    _timm("vit_large_patch16_224.augreg_in21k_ft_in1k", 85.856, INCEPTION),
    _timm("vit_large_patch32_224.orig_in21k", NOT_PUBLISHED, INCEPTION, num_classes=0, note=_ORIG_IN21K),
    _timm("vit_huge_patch14_224.orig_in21k", NOT_PUBLISHED, INCEPTION, num_classes=0, note=_ORIG_IN21K),
    # --- DeiT (timm hub: the official DeiT weights; distilled ones keep both heads) ----------------------------
    _timm("deit_tiny_patch16_224.fb_in1k", 72.190),
    _timm("deit_small_patch16_224.fb_in1k", 79.856),
    _timm("deit_base_patch16_224.fb_in1k", 81.980),
    _timm("deit_base_patch16_384.fb_in1k", 83.108, size=384),
    _timm("deit_tiny_distilled_patch16_224.fb_in1k", 74.538, note="mean of the class and distillation heads"),
    _timm("deit_small_distilled_patch16_224.fb_in1k", 81.204, note="mean of the class and distillation heads"),
    _timm("deit_base_distilled_patch16_224.fb_in1k", 83.384, note="mean of the class and distillation heads"),
    _timm("deit_base_distilled_patch16_384.fb_in1k", 85.438, size=384, note="mean of the class and distillation heads"),
    # --- Swin (timm hub: the official microsoft/Swin-Transformer weights; torchvision) -------------------------
    _timm("swin_tiny_patch4_window7_224.ms_in1k", 81.388),
    _tv_image("swin_tiny_patch4_window7_224.tv_in1k", "https://download.pytorch.org/models/swin_t-704ceda3.pth",
              81.474, 232, "bicubic", "models/swin_transformer.py"),
    _timm("swin_tiny_patch4_window7_224.ms_in22k_ft_in1k", 80.966),
    _timm("swin_small_patch4_window7_224.ms_in1k", 83.228),
    _tv_image("swin_small_patch4_window7_224.tv_in1k", "https://download.pytorch.org/models/swin_s-5e29d889.pth",
              83.196, 246, "bicubic", "models/swin_transformer.py"),
    _timm("swin_base_patch4_window7_224.ms_in1k", 83.604),
    _tv_image("swin_base_patch4_window7_224.tv_in1k", "https://download.pytorch.org/models/swin_b-68c6b09e.pth",
              83.582, 238, "bicubic", "models/swin_transformer.py"),
    _timm("swin_base_patch4_window12_384.ms_in1k", 84.478, size=384),
    _timm("swin_large_patch4_window7_224.ms_in22k_ft_in1k", 86.320),
    _timm("swin_large_patch4_window12_384.ms_in22k_ft_in1k", 87.142, size=384),
    # --- MViTv2 images (timm hub: the official facebookresearch/mvit weights) ----------------------------------
    _timm("mvitv2_tiny.fb_in1k", 82.408),
    _timm("mvitv2_small.fb_in1k", 83.772),
    _timm("mvitv2_base.fb_in1k", 84.424),
    # --- MViT video (torchvision, ported from the papers' releases) --------------------------------------------
    _tv_video("mvit_base_16x4.tv_k400", "https://download.pytorch.org/models/mvit_v1_b-dbeb1030.pth", 78.477),
    _tv_video("mvitv2_small_16x4.tv_k400", "https://download.pytorch.org/models/mvit_v2_s-ae3be167.pth", 80.757),
    # --- CvT (transformers hub: the official weights, converted) ----------------------------------------------
    Weights("cvt_13_224.hf_in1k", "hf", "bin",
            DataSpec((3, 224, 224), "bicubic", *IMAGENET, 224 / 256, 1000, "imagenet-1k"),
            81.6, "microsoft/CvT README.md (CvT-13, 224x224, ImageNet-1k)", hub_repo="microsoft/cvt-13",
            filename="pytorch_model.bin",
            top1_note="official QuickGELU activation (transformers' port uses GELU)"),
    # --- TimeSformer (transformers hub; the official release) -------------------------------------------------
    Weights("timesformer_base_8x224_divided_space_time.hf_k400", "hf", "bin",
            DataSpec((3, 224, 224), "bilinear", *SLOWFAST, 1.0, 400, "kinetics-400", num_frames=8),
            77.9, "facebookresearch/TimeSformer README.md (TimeSformer, K400, 8 frames, 224)",
            hub_repo="facebook/timesformer-base-finetuned-k400", filename="pytorch_model.bin",
            top1_note="the official K400 weights converted by transformers; 1 x 3 views x 10 clips (README)"),
    _official_timesformer("timesformer_base_8x224_divided_space_time", "TimeSformer", 224, 8, 77.9,
                          "g5t24we9gl5yk88/TimeSformer_divST_8x32_224_K400.pyth"),
    _official_timesformer("timesformer_hr_16x448_divided_space_time", "TimeSformer-HR", 448, 16, 79.6,
                          "6f0x172lpqy3oxt/TimeSformer_divST_16x16_448_K400.pyth"),
    _official_timesformer("timesformer_large_96x224_divided_space_time", "TimeSformer-L", 224, 96, 80.6,
                          "r1iuxahif3sgimo/TimeSformer_divST_96x4_224_K400.pyth"),
    # --- ViViT Model 1 (transformers hub: the scenic ViViT-B/16x2 K400 weights, converted) ---------------------
    Weights("vivit_base_16x2_spatiotemporal.hf_k400", "hf", "bin",
            DataSpec((3, 224, 224), "bilinear", *INCEPTION, 224 / 256, 400, "kinetics-400", num_frames=32),
            79.9, "google-research/scenic scenic/projects/vivit/README.md (ViViT-B/16x2, Kinetics 400)",
            hub_repo="google/vivit-b-16x2-kinetics400", filename="pytorch_model.bin",
            top1_note="multi-view evaluation, 4 temporal x 3 spatial views (scenic README)"),
)

# Names as the other ecosystems spell them -> the tag they mean (torchvision builders, transformers repositories).
ALIASES: dict[str, str] = {
    "vit_b_16": "vit_base_patch16_224.tv_in1k",
    "swin_t": "swin_tiny_patch4_window7_224.tv_in1k",
    "swin_s": "swin_small_patch4_window7_224.tv_in1k",
    "swin_b": "swin_base_patch4_window7_224.tv_in1k",
    "mvit_v1_b": "mvit_base_16x4.tv_k400",
    "mvit_v2_s": "mvitv2_small_16x4.tv_k400",
    "microsoft/cvt-13": "cvt_13_224.hf_in1k",
    "facebook/timesformer-base-finetuned-k400": "timesformer_base_8x224_divided_space_time.hf_k400",
    "google/vivit-b-16x2-kinetics400": "vivit_base_16x2_spatiotemporal.hf_k400",
}

# Releases that exist but are not in the table, and why (shown by `vitkit weights` and checked by a test).
LEFT_OUT: dict[str, str] = {
    "mvit_base_32x3": "SlowFast's MViT-B 32x3 K400 file (MODEL_ZOO.md) is the 24-layer model its "
                      "MVIT_B_32x3_CONV.yaml builds, not the paper's 16-layer mvit_base_32x3",
    "mvit_base_16x4 (official)": "SlowFast's MViT-B 16x4 K400 release is a Google Drive page, not a file URL",
}
