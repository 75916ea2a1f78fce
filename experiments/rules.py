"""Verdicts by declared rules. Each claim module declares, as data and before anything runs, the parts of its
statement: what each part measures, how it is compared and the thresholds of its verdict. `judge` turns the
measured numbers into the verdict and generates the sentence that explains it; no claim writes its own.

A part is measured once per seed (a paired difference of two arms trained with the same seed, or a statistic of
one run) or exactly once (a count such as GMACs, or a speed measured on this machine). Its comparison is the mean
over seeds with a two-sided 95 % Student-t interval; with one seed the interval is unbounded, so a one-seed
(quick) run can never reproduce a seeded part. Thresholds, for the claimed side `expect`:

- ">": reproduced when the interval lies above `null` and the mean reaches `effect`; not reproduced when the mean
  is at or below `null`; partly reproduced otherwise (the right side, not resolved or smaller than claimed).
- "<": the mirror image: reproduced when the interval lies below `null` and the mean is at most `effect`; not
  reproduced when the mean is at or above `null`.
- "≈": the claim is that the value stays within `null` ± `effect`: reproduced when the whole interval lies inside
  that band, not reproduced when the whole interval lies outside it, partly reproduced when they overlap.

A claim is reproduced when every part is, not reproduced when every part is not, and partly reproduced otherwise.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

VERDICTS = ("reproduced", "partly reproduced", "not reproduced")
EXPECT = (">", "<", "≈")
# two-sided 95 % quantiles of Student's t for 1..30 degrees of freedom (beyond: 1.96)
_T95 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
        2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


@dataclass(frozen=True)
class Part:
    """One statement of a claim about one measured quantity."""

    name: str                # key of its values in what the claim measures
    measure: str             # the quantity, in words and units, as the why-sentence prints it
    expect: str              # ">", "<" or "≈" (see the module docstring)
    null: float              # the value that means "no effect" (or the centre of the "≈" band)
    effect: float            # the size the claim needs (">"/"<": a level the mean must reach; "≈": the band's half-width)
    exact: bool = False      # measured once (counts, speeds): the value itself, no interval

    def __post_init__(self):
        assert self.expect in EXPECT, self.expect
        ok = {"≈": self.effect > 0, ">": self.effect >= self.null, "<": self.effect <= self.null}[self.expect]
        assert ok, f"{self.name}: effect on the wrong side of null"


@dataclass(frozen=True)
class Rule:
    """A claim's declared rule: its parts, all of which must hold for "reproduced"."""

    parts: tuple[Part, ...]

    def describe(self) -> list[str]:
        """The rule in words, one line per part, for the report (written before any number is known)."""
        return [f"{p.measure}: {_claimed(p)}, {'exact value' if p.exact else 'mean over seeds, 95 % t-interval'}"
                for p in self.parts]


@dataclass(frozen=True)
class Estimate:
    mean: float
    lo: float
    hi: float
    n: int


def estimate(values: list[float], exact: bool = False) -> Estimate:
    """Mean and two-sided 95 % t-interval of per-seed values (one value: unbounded; exact: the value itself)."""
    assert values, "a part needs at least one value"
    m = statistics.fmean(values)
    if exact:
        assert len(values) == 1, "an exact part has one value"
        return Estimate(m, m, m, 1)
    if len(values) == 1:
        return Estimate(m, -math.inf, math.inf, 1)
    q = _T95[len(values) - 2] if len(values) - 1 <= len(_T95) else 1.96
    half = q * statistics.stdev(values) / math.sqrt(len(values))
    return Estimate(m, m - half, m + half, len(values))


def part_verdict(p: Part, e: Estimate) -> str:
    if p.expect == ">":
        return VERDICTS[0] if e.lo > p.null and e.mean >= p.effect else VERDICTS[2] if e.mean <= p.null else VERDICTS[1]
    if p.expect == "<":
        return VERDICTS[0] if e.hi < p.null and e.mean <= p.effect else VERDICTS[2] if e.mean >= p.null else VERDICTS[1]
    lo, hi = p.null - p.effect, p.null + p.effect
    if lo <= e.lo and e.hi <= hi:
        return VERDICTS[0]
    return VERDICTS[2] if e.hi < lo or e.lo > hi else VERDICTS[1]


def combine(verdicts: list[str]) -> str:
    if all(v == VERDICTS[0] for v in verdicts):
        return VERDICTS[0]
    return VERDICTS[2] if all(v == VERDICTS[2] for v in verdicts) else VERDICTS[1]


@dataclass(frozen=True)
class Judgement:
    verdict: str
    why: str
    parts: dict[str, dict]   # per part: mean, lo, hi (None: unbounded), n, verdict (for the raw results)


def judge(rule: Rule, values: dict[str, list[float]]) -> Judgement:
    """The claim's verdict and why-sentence from its measured values ({part name: per-seed values})."""
    missing = [p.name for p in rule.parts if p.name not in values]
    assert not missing, f"no values for {missing}"
    found, clauses = {}, []
    for p in rule.parts:
        e = estimate([float(v) for v in values[p.name]], p.exact)
        v = part_verdict(p, e)
        bound = lambda x: None if math.isinf(x) else x  # JSON has no infinity: an unbounded side is null
        found[p.name] = {"mean": e.mean, "lo": bound(e.lo), "hi": bound(e.hi), "n": e.n, "verdict": v}
        clauses.append(f"{p.measure} is {_number(e, p.exact)}claimed {_claimed(p)}): {v}")
    verdict = combine([f["verdict"] for f in found.values()])
    return Judgement(verdict, "; ".join(clauses) + ".", found)


def _fmt(x: float) -> str:
    return "unbounded" if math.isinf(x) else f"{x:+.2f}"


def _number(e: Estimate, exact: bool) -> str:
    """The value and the opening of its parenthesis, which the claimed side closes."""
    if exact:
        return f"{e.mean:.2f} ("
    if e.n == 1:
        return f"{e.mean:+.2f} (one seed, no interval; "
    return f"{e.mean:+.2f} (95 % CI {_fmt(e.lo)} to {_fmt(e.hi)}, {e.n} seeds; "


def _claimed(p: Part) -> str:
    if p.expect == "≈":
        return f"within {p.null:g} ± {p.effect:g}"
    side = "above" if p.expect == ">" else "below"
    level = "" if p.effect == p.null else f", {'at least' if p.expect == '>' else 'at most'} {p.effect:g}"
    return f"{side} {p.null:g}{level}"
