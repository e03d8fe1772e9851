"""How many held-out seeds a claim-1 cell needs: Stein's two-stage rule on the paired differences.

The protocol runs every claim-1 cell's winners on the first held-out seeds (``heldout_seeds``, five). Where
the methods' paired per-seed differences spread widely, five give a confidence interval too wide to decide
a claim, so the cell gets more seeds, as many as Stein's two-stage procedure (Stein, 1945) asks for an
interval of half-width ``h``:

    n = max(n1, ceil((t_{1 - a/2, n1 - 1} * s / h)^2)),   at most ``max_seeds``,

with ``s`` the standard deviation of the ``n1`` first-stage paired differences (the largest over the pairs
the spec names). The count depends on the spread alone, never on the mean difference or its sign: for
normal differences the sample mean and variance are independent, so the choice does not steer the verdict
(the rule the issue asks for, "more seeds where the paired effect is small against its spread", without
peeking at the effect). The cap bounds the budget; a cell at the cap may still be inconclusive, and its
verdict says so.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

from scipy import stats


def paired_spread(differences: Sequence[float]) -> float:
    """The first stage's standard deviation of the paired differences (0 with fewer than two)."""
    return statistics.stdev(differences) if len(differences) > 1 else 0.0


def stein_seed_count(spread: float, first: int, half_width: float, max_seeds: int, confidence: float = 0.95) -> int:
    """Seeds the cell needs in all, from the first stage's ``first`` paired differences and their standard
    deviation ``spread`` (``paired_spread``): at least ``first``, at most ``max_seeds``."""
    if first < 2 or half_width <= 0:
        return first
    t = float(stats.t.ppf(1.0 - (1.0 - confidence) / 2.0, first - 1))
    needed = math.ceil((t * spread / half_width) ** 2 - 1e-9)
    return max(first, min(max_seeds, needed))
