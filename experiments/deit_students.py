"""The DeiT runs behind C3, C4 and C5: DeiT Table 3 at small scale, with a teacher that is not the ground truth.

Data: warped views of the bundled digits at 16×16 (`common.deformed_digits`): students and teacher train on views
of the train split (with ±1 pixel shifts on top), the teacher is chosen on views of the val split, and every
accuracy is measured on a large set of views of the test split, so accuracies carry intervals a few tenths wide.

Arms (students: a DeiT-tiny layout, patch 4, D 96, 4 blocks, 3 heads), as DeiT Table 3's rows plus one control:
no distillation (class token only); the distillation token trained on the labels (a second class token, DeiT
§4's control: what the extra token brings without a teacher); soft (τ 3, α 0.1) and hard (α 0.5, Eq. 3)
distillation through the class token (one head: "usual" and "hard" distillation); soft and hard distillation
through the distillation token. Students with two heads report the class head, the distillation head and their
mean (the model's output).

The teacher (declared before anything runs, TEACHER_RULE): a small CNN trained for each budget of a fixed ladder
of step counts; the one whose val accuracy is closest to the undistilled students' mean val accuracy + 1 point
(DeiT: RegNetY-16GF 82.9 over DeiT-B 81.8) teaches every distilled arm. How often its argmax disagrees with the
label on augmented training batches is measured and reported. All three claims read the same runs (cached).
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from pathlib import Path

import common as C
import rules as R

IMG = 16
STUDENT = dict(img_size=IMG, patch_size=4, embed_dim=96, depth=4, num_heads=3, in_chans=1, num_classes=10,
               drop_path_rate=0.1)
PLAIN, TOKEN = "deit_tiny_patch16_224", "deit_tiny_distilled_patch16_224"
SOFT, HARD = dict(distill="soft", alpha=0.1, tau=3.0), dict(distill="hard", alpha=0.5)
ARMS = {  # name: (model, distillation settings, the row's label in the report)
    "none": (PLAIN, dict(distill="none"), "no distillation (class token)"),
    "labels+token": (TOKEN, dict(distill="labels", alpha=0.5), "distillation token, labels only"),
    "soft": (PLAIN, SOFT, "soft, class token"),
    "hard": (PLAIN, HARD, "hard, class token"),
    "soft+token": (TOKEN, SOFT, "soft, distillation token"),
    "hard+token": (TOKEN, HARD, "hard, distillation token"),
}
TEACHER = dict(name="resnet_tiny_cifar", img_size=IMG, in_chans=1, num_classes=10)
TEACHER_MARGIN = 1.0  # points above the undistilled student the teacher should sit (DeiT: 82.9 vs 81.8)
TEACHER_RULE = (f"the teacher is the {TEACHER['name']} whose val top-1 is closest to the undistilled students' mean "
                f"val top-1 + {TEACHER_MARGIN:g} point (ties: the shorter budget), among budgets fixed in advance")


@dataclass(frozen=True)
class Budget:
    """One mode's sizes: generated views per split, training steps, the teacher's ladder of step budgets."""

    train_views: int
    val_views: int
    test_views: int
    curve_views: int              # the test views the per-epoch curve is measured on
    student_steps: int
    teacher_steps: tuple[int, ...]


FULL = Budget(10_000, 4_000, 20_000, 2_000, 1_600, tuple(sorted({round(20 * 2 ** (k / 4)) for k in range(25)})))
QUICK = Budget(10_000, 1_000, 2_000, 500, 100, (25, 50, 100))
STUDENT_FIT = C.Fit(warmup_epochs=0.5)
TEACHER_FIT = C.Fit(lr=3e-3, warmup_epochs=0.1)


def budget(quick: bool) -> Budget:
    return QUICK if quick else FULL


@lru_cache(maxsize=6)
def views(split: str, n: int):
    """n warped views of a split's digits; each split has its own warp seed."""
    return C.deformed_digits(n, IMG, seed={"train": 0, "val": 1, "test": 2}[split], split=split)


def heads(model, x):
    """Two-head students train on (class-head, distillation-head) logits; one-head students on their output."""
    return model.forward_distill(x) if getattr(model, "head_dist", None) is not None else model(x)


# --- the teacher --------------------------------------------------------------------------------------------
def _teacher_key(b: Budget, steps: int) -> dict:
    return {"what": "deit-teacher", "model": TEACHER, "steps": steps, "fit": asdict(TEACHER_FIT),
            "train_views": b.train_views, "val_views": b.val_views, "test_views": b.test_views}


def teacher_model(out: Path, b: Budget, steps: int):
    """The CNN teacher trained for `steps` (seed 0); its weights are kept in <out>/cache."""
    import torch

    path = out / "cache" / f"deit_teacher_{C._digest(_teacher_key(b, steps))}_{C.code_hash(__file__)}.pt"
    model = C.create(TEACHER["name"], seed=0, **{k: v for k, v in TEACHER.items() if k != "name"})
    if path.exists():
        model.load_state_dict(torch.load(path, weights_only=True))
    else:
        C.fit(model, *views("train", b.train_views), replace(TEACHER_FIT, steps=steps), seed=0)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(model.state_dict(), path)
    return model.eval()


def disagreement(model, x, y, seed: int = 0, batch_size: int = 256) -> float:
    """Percent of augmented training images (the students' ±1 pixel shifts) whose teacher argmax is not the label."""
    import torch

    g = torch.Generator().manual_seed(seed)
    wrong = sum(int((C.logits(model, C.shift_augment(xb, g, STUDENT_FIT.max_shift)).argmax(1) != yb).sum())
                for xb, yb in zip(x.split(batch_size), y.split(batch_size)))
    return 100.0 * wrong / len(y)


def teacher_candidate(out: Path, b: Budget, steps: int) -> dict:
    """One rung of the ladder: val and test top-1, and its disagreement with the labels on augmented training data."""
    def run() -> dict:
        t = teacher_model(out, b, steps)
        return {"val": C.accuracy(t, *views("val", b.val_views)), "acc": C.accuracy(t, *views("test", b.test_views)),
                "disagree": disagreement(t, *views("train", b.train_views))}

    return C.measured(out, _teacher_key(b, steps), run, code=__file__)


def choose_teacher(candidates: dict[int, dict], target: float) -> int:
    """TEACHER_RULE: the budget whose val top-1 is closest to `target` (ties: the shorter)."""
    return min(candidates, key=lambda s: (abs(candidates[s]["val"] - target), s))


# --- the students -------------------------------------------------------------------------------------------
def student(out: Path, arm: str, seed: int, b: Budget, teacher_steps: int | None) -> dict:
    """One student run (cached): test top-1 of its output and of each head, val top-1, per-epoch curve."""
    name, distill, _ = ARMS[arm]
    fit = replace(STUDENT_FIT, steps=b.student_steps, **distill)
    teaches = fit.distill in ("soft", "hard")

    def run() -> dict:
        t = teacher_model(out, b, teacher_steps) if teaches else None
        model = C.create(name, seed=seed, **STUDENT)
        test = views("test", b.test_views)
        curve = tuple(v[:b.curve_views] for v in test)
        r = C.fit(model, *views("train", b.train_views), fit, seed, teacher=t, test=curve, heads=heads)
        found = {"acc": C.accuracy(model, *test), "val": C.accuracy(model, *views("val", b.val_views)),
                 "history": r["history"]}
        if model.head_dist is not None:
            found["acc_cls"] = C.accuracy(model, *test, lambda m, x: m.forward_distill(x)[0])
            found["acc_dist"] = C.accuracy(model, *test, lambda m, x: m.forward_distill(x)[1])
        return found

    key = {"what": "deit-student", "arm": arm, "seed": seed, "model": name, "student": STUDENT, "fit": asdict(fit),
           "teacher": _teacher_key(b, teacher_steps) if teaches else None, "train_views": b.train_views,
           "val_views": b.val_views, "test_views": b.test_views, "curve_views": b.curve_views}
    return C.measured(out, key, run, code=__file__)


@dataclass
class Table3:
    """Every run of the three claims: the chosen teacher, the ladder it came from, and each arm's runs by seed."""

    teacher_steps: int
    teacher: dict                       # val, acc (test), disagree (percent of augmented training images)
    target: float                       # the val top-1 the rule aimed the teacher at
    ladder: dict[int, dict]
    runs: dict[str, list[dict]]         # arm -> one result per seed

    def acc(self, arm: str, head: str = "acc") -> list[float]:
        """Per-seed test top-1 of an arm: "acc" (its output; two heads: their mean), "acc_cls" or "acc_dist"."""
        return [r[head] for r in self.runs[arm]]

    def diff(self, a: str, b: str) -> list[float]:
        """Per-seed paired difference of two arms' test top-1 (same seed: same initial weights and batches)."""
        return [x - y for x, y in zip(self.acc(a), self.acc(b))]


def table3(out: Path, quick: bool, seeds: list[int]) -> Table3:
    """Runs (or reads from the cache) the undistilled students, the teacher ladder, then every distilled arm."""
    b = budget(quick)
    runs = {"none": [student(out, "none", s, b, None) for s in seeds]}
    target = statistics.fmean(r["val"] for r in runs["none"]) + TEACHER_MARGIN
    ladder = {steps: teacher_candidate(out, b, steps) for steps in b.teacher_steps}
    chosen = choose_teacher(ladder, target)
    for arm in ARMS:
        if arm != "none":
            runs[arm] = [student(out, arm, s, b, chosen) for s in seeds]
    return Table3(chosen, ladder[chosen], target, ladder, runs)


# --- what the three claims print ----------------------------------------------------------------------------
def interval(values: list[float], signed: bool = False) -> str:
    """Mean and 95 % t-interval of per-seed values (one seed: the value); `signed` for differences."""
    e, f = R.estimate(values), "+.1f" if signed else ".1f"
    return f"{e.mean:{f}}" if e.n == 1 else f"{e.mean:{f}} [{e.lo:{f}}, {e.hi:{f}}]"


def teacher_note(t: Table3) -> str:
    return (f"Teacher: {TEACHER['name']} trained {t.teacher_steps} steps, chosen by the rule declared before the run "
            f"({TEACHER_RULE}; target {t.target:.1f} %, ladder {', '.join(map(str, t.ladder))} steps): val top-1 "
            f"{t.teacher['val']:.1f} %, test top-1 {t.teacher['acc']:.1f} %; its argmax differs from the label on "
            f"{t.teacher['disagree']:.1f} % of augmented training images.")


def design_note(quick: bool) -> str:
    b = budget(quick)
    return (f"Students: DeiT-tiny layout at 16×16, patch 4, D 96, 4 blocks, 3 heads, {b.student_steps} steps of 64 on "
            f"{b.train_views:,} warped views of the 1,257 training digits (±1 pixel shifts on top); soft: τ 3, α 0.1; "
            f"hard: α 0.5; labels: the distillation head learns the labels (α 0.5). Accuracies on {b.test_views:,} "
            "warped views of the 360 test digits; intervals are 95 % t-intervals over seeds, differences paired by "
            "seed.")
