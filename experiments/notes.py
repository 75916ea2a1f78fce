"""Sentences of the report that read a claim's results; they measure nothing, so they are not part of the code
hash that keys the cache (a new sentence leaves the committed raw results current)."""

from __future__ import annotations


def capped(res: dict, cap: int) -> list[str]:
    """Name the rows ({row: [run result with "epochs_run"]}) whose runs the epoch budget ended, not validation:
    their top-1 is a lower bound."""
    counts = {k: sum(r["epochs_run"] >= cap for r in rs) for k, rs in res.items()}
    named = [f"{k} ({n} of {len(res[k])} seeds)" for k, n in counts.items() if n]
    return [f"Ended by the {cap}-epoch budget, not by validation (their top-1 is a lower bound): {', '.join(named)}."] \
        if named else []
