"""DeiT's distillation loss (Touvron et al., arXiv 2012.12877, §4 Eq. 2–3; official `losses.py`) as a wrapper
around any base criterion and any teacher:

    loss = (1 - α) · base(cls_logits, y) + α · distill(dist_logits, teacher(x))

- kind="none": the base loss only (α is ignored).
- kind="soft" (Eq. 2): τ² · KL(softmax(Z_t/τ) ‖ softmax(Z_s/τ)). Normalisation differs between
  implementations: the official code sums the KL over batch and classes and divides by batch × classes
  (`outputs_kd.numel()`, soft_normalisation="elementwise", the default here, so the official α/τ reproduce);
  timm and lucidrains take the mean over the batch only (`reduction="batchmean"`, soft_normalisation="batch"),
  which makes the soft term num_classes times larger for the same α.
- kind="hard" (Eq. 3): cross-entropy against the teacher's argmax label (the paper's best variant;
  α = 0.5 gives Eq. 3's ½ / ½).
- kind="labels": no teacher; the distillation head learns the labels with the base loss (DeiT §4's control, a
  second class token: it tells what the extra token brings without distillation).

Students with a distillation token give (cls_logits, dist_logits) through `forward_distill` (wrapped by
`engine.DistillHeads` for the training loop); a plain model's single output is used for both terms. The teacher
always runs in eval mode without gradients.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError

KINDS = ("none", "soft", "hard", "labels")
TEACHERLESS = ("none", "labels")  # the kinds that need no teacher
NORMALISATIONS = ("elementwise", "batch")


class DistillationLoss(nn.Module):
    def __init__(self, base_criterion: nn.Module, teacher: nn.Module | None = None, kind: str = "none",
                 alpha: float = 0.5, tau: float = 1.0, soft_normalisation: str = "elementwise"):
        super().__init__()
        if kind not in KINDS:
            raise ConfigError(f"unknown distillation kind {kind!r}; expected one of {', '.join(KINDS)}")
        if soft_normalisation not in NORMALISATIONS:
            raise ConfigError(f"unknown soft_normalisation {soft_normalisation!r}; expected one of "
                              f"{', '.join(NORMALISATIONS)}")
        if kind not in TEACHERLESS and teacher is None:
            raise ConfigError(f"{kind} distillation needs a teacher model")
        if not 0.0 <= alpha <= 1.0:
            raise ConfigError(f"distillation alpha must be in [0, 1], got {alpha}")
        if tau <= 0:
            raise ConfigError(f"distillation temperature tau must be positive, got {tau}")
        self.base_criterion = base_criterion
        # Kept outside the module tree so the teacher's weights never enter the student's optimiser or state dict.
        self._teacher = [teacher] if teacher is not None else []
        self.kind, self.alpha, self.tau, self.soft_normalisation = kind, alpha, tau, soft_normalisation

    @property
    def teacher(self) -> nn.Module | None:
        return self._teacher[0] if self._teacher else None

    @torch.no_grad()
    def teacher_logits(self, x: Tensor) -> Tensor:
        teacher = self.teacher
        teacher.eval()
        return teacher(x).float()

    def forward(self, inputs: Tensor, outputs: Tensor | tuple[Tensor, Tensor], labels: Tensor) -> Tensor:
        """inputs (B, ...) images for the teacher; outputs logits (B, K) or (cls, dist) logits; labels (B,)."""
        cls_logits, dist_logits = outputs if isinstance(outputs, tuple) else (outputs, outputs)
        base = self.base_criterion(cls_logits, labels)
        if self.kind == "none":
            return base
        if self.kind == "labels":
            return (1 - self.alpha) * base + self.alpha * self.base_criterion(dist_logits, labels)
        t = self.teacher_logits(inputs)
        s = dist_logits.float()
        if self.kind == "soft":
            T = self.tau
            kl = F.kl_div(F.log_softmax(s / T, dim=1), F.log_softmax(t / T, dim=1), reduction="sum", log_target=True)
            denom = s.numel() if self.soft_normalisation == "elementwise" else s.shape[0]
            distill = kl * (T * T) / denom
        else:
            distill = F.cross_entropy(s, t.argmax(dim=1))
        return (1 - self.alpha) * base + self.alpha * distill
