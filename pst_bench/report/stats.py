"""The statistics every report shares: a mean with its 95% confidence interval, over seeds.

Tables show ``mean ± half-width`` beside ``median [min–max]``; claims decide on the interval of
paired per-seed differences. The interval is Student's t (two-sided, 95%): with the 5–10 seeds of
a cell a bootstrap of the mean is too narrow (it cannot see beyond the values it resamples), while
the t interval is exact for normal noise and conservative enough for the small, roughly symmetric
seed-to-seed spread of fine-tuning runs. A single value has no interval (``None`` bounds).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from scipy import stats as _scipy_stats

LEVEL = 0.95
METHOD = "Student's t, two-sided 95%"


@dataclass(frozen=True)
class Interval:
    """The mean of ``n`` values and its confidence interval (``low``/``high`` None when n < 2)."""

    mean: float
    low: float | None
    high: float | None
    n: int

    @property
    def half_width(self) -> float | None:
        return None if self.low is None or self.high is None else (self.high - self.low) / 2

    def above(self, boundary: float) -> bool:
        """The whole interval lies above ``boundary``."""
        return self.low is not None and self.low > boundary

    def below(self, boundary: float) -> bool:
        """The whole interval lies below ``boundary``."""
        return self.high is not None and self.high < boundary

    def text(self, decimals: int = 2, signed: bool = False) -> str:
        """``+1.23 [−0.40, +2.86] (n = 5)``: the mean, the interval and how many values stand behind it."""
        sign = "+" if signed else ""
        mean = f"{self.mean:{sign}.{decimals}f}"
        if self.low is None:
            return f"{mean} (n = {self.n}, no interval)"
        return f"{mean} [{self.low:{sign}.{decimals}f}, {self.high:{sign}.{decimals}f}] (n = {self.n})"


def mean_interval(values: Iterable[float], level: float = LEVEL) -> Interval:
    """The mean of ``values`` with its two-sided Student-t confidence interval."""
    values = [float(v) for v in values]
    if not values:
        raise ValueError("mean_interval needs at least one value")
    n = len(values)
    mean = math.fsum(values) / n
    if n < 2:
        return Interval(mean, None, None, n)
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
    half = float(_scipy_stats.t.ppf(0.5 + level / 2, n - 1)) * sd / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, n)
