"""The DeiT runs behind C3, C4 and C5: a ResNet teacher and tiny DeiT students on the bundled digits (16×16,
patch 4: 16 patch tokens), trained without distillation, with soft distillation (τ = 3, α = 0.1, the paper's
values) and with hard distillation (α = 0.5, Eq. 3). Runs are cached, so the three claims share them."""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path

import common as C

IMG = 16
STUDENT = dict(img_size=IMG, patch_size=4, embed_dim=96, depth=4, num_heads=3, in_chans=1, num_classes=10,
               drop_path_rate=0.1)
ARMS = {
    "none": ("deit_tiny_patch16_224", C.Fit(distill="none")),
    "soft": ("deit_tiny_distilled_patch16_224", C.Fit(distill="soft", alpha=0.1, tau=3.0)),
    "hard": ("deit_tiny_distilled_patch16_224", C.Fit(distill="hard", alpha=0.5)),
}
TEACHER_FIT = C.Fit(epochs=30, lr=3e-3, warmup_epochs=1)


def epochs(quick: bool) -> int:
    return 3 if quick else 60


def heads(model, x):
    """Distilled students train on (class-head, distillation-head) logits; plain ones on their one output."""
    return model.forward_distill(x) if hasattr(model, "forward_distill") and model.head_dist is not None else model(x)


def _teacher_fit(quick: bool) -> C.Fit:
    return replace(TEACHER_FIT, epochs=4) if quick else TEACHER_FIT


def teacher_model(out: Path, quick: bool):
    """The CNN teacher (seed 0), trained once per mode and code version; its weights are kept in <out>/cache."""
    import torch

    path = out / "cache" / f"teacher_{'quick' if quick else 'full'}_{C.code_hash(__file__)}.pt"
    model = C.create("resnet_tiny_cifar", seed=0, img_size=IMG, in_chans=1, num_classes=10)
    if path.exists():
        model.load_state_dict(torch.load(path, weights_only=True))
    else:
        C.fit(model, *C.digits("train", IMG), _teacher_fit(quick), seed=0)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(model.state_dict(), path)
    return model.eval()


def teacher_accuracy(out: Path, quick: bool) -> float:
    """The teacher's test top-1 (a measurement of the claim's raw results)."""
    return C.measured(out, {"what": "deit-teacher", "fit": asdict(_teacher_fit(quick))},
                      lambda: {"acc": C.accuracy(teacher_model(out, quick), *C.digits("test", IMG))}, code=__file__)["acc"]


def student(out: Path, arm: str, seed: int, quick: bool) -> dict:
    """One student run (cached): per-epoch test accuracy and, for distilled students, each head's accuracy."""
    name, fit = ARMS[arm]
    fit = replace(fit, epochs=epochs(quick), **({"warmup_epochs": 0.5} if quick else {}))

    def run() -> dict:
        t = teacher_model(out, quick) if fit.distill != "none" else None
        model = C.create(name, seed=seed, **STUDENT)
        test = C.digits("test", IMG)
        r = C.fit(model, *C.digits("train", IMG), fit, seed, teacher=t, test=test, heads=heads)
        r = {"acc": r["history"][-1], "history": r["history"]}
        if model.head_dist is not None:
            r["acc_cls"] = C.accuracy(model, *test, lambda m, x: m.forward_distill(x)[0])
            r["acc_dist"] = C.accuracy(model, *test, lambda m, x: m.forward_distill(x)[1])
        return r

    return C.measured(out, {"what": "deit-student", "arm": arm, "seed": seed, "model": name, "student": STUDENT,
                            "fit": asdict(fit), "teacher": asdict(_teacher_fit(quick))}, run, code=__file__)
