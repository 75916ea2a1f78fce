"""Sentences of the report that read a claim's results; they measure nothing, so they are not part of the code
hash that keys the cache (a new sentence leaves the committed raw results current)."""

from __future__ import annotations

import statistics


def capped(res: dict, cap: int) -> list[str]:
    """Name the rows ({row: [run result with "epochs_run"]}) whose runs the epoch budget ended, not validation:
    their top-1 is a lower bound."""
    counts = {k: sum(r["epochs_run"] >= cap for r in rs) for k, rs in res.items()}
    named = [f"{k} ({n} of {len(res[k])} seeds)" for k, n in counts.items() if n]
    return [f"Ended by the {cap}-epoch budget, not by validation (their top-1 is a lower bound): {', '.join(named)}."] \
        if named else []


def outliers(res: dict, seeds: list[int], key: str = "acc", gap: float = 15.0) -> list[str]:
    """Name the runs ({row: [run result per seed]}) whose `key` lies more than `gap` points below the median of
    their row's other seeds, with the epochs each ran: a run that validation stopped on a plateau counts in the
    rule, and the reader sees which seed moves a mean."""
    found = []
    for k, rs in res.items():
        for i, r in enumerate(rs):
            rest = [o for j, o in enumerate(rs) if j != i]
            if len(rest) >= 2 and r[key] < statistics.median(o[key] for o in rest) - gap:
                found.append(f"{k}, seed {seeds[i]}: {r[key]:.1f} % after {r['epochs_run']} epochs (its other seeds "
                             f"{min(o[key] for o in rest):.1f}–{max(o[key] for o in rest):.1f} % after "
                             f"{min(o['epochs_run'] for o in rest)}–{max(o['epochs_run'] for o in rest)})")
    return [f"More than {gap:g} points below the rest of their row (counted in the rule): {'; '.join(found)}."] \
        if found else []
