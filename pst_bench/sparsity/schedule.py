"""Cubic sparsity schedule (Zhu & Gupta, 2018) with warm-up and cool-down.

The sparsity is a plain function of (step, total_steps) so it can be unit-tested
at its knots and recomputed exactly on resume:

    step <= warmup                 -> initial sparsity
    warmup < step < total-cooldown -> final + (initial - final) * (1 - progress)^3
    step >= total - cooldown       -> final sparsity
"""

from __future__ import annotations


def schedule_knots(total_steps: int, warmup_frac: float, cooldown_frac: float) -> tuple[int, int]:
    """Steps where the cubic ramp starts and where the final sparsity is reached."""
    ramp_start = int(round(warmup_frac * total_steps))
    ramp_end = total_steps - int(round(cooldown_frac * total_steps))
    return ramp_start, max(ramp_start, ramp_end)


def cubic_sparsity(
    step: int,
    total_steps: int,
    initial: float,
    final: float,
    warmup_frac: float = 0.1,
    cooldown_frac: float = 0.3,
) -> float:
    """Target sparsity (fraction of pruned weights) at optimizer step ``step``."""
    ramp_start, ramp_end = schedule_knots(total_steps, warmup_frac, cooldown_frac)
    if step >= ramp_end:
        return float(final)
    if step <= ramp_start:
        return float(initial)
    progress = (step - ramp_start) / (ramp_end - ramp_start)
    return float(final + (initial - final) * (1.0 - progress) ** 3)


class CubicSchedule:
    """``cubic_sparsity`` as an object any training loop can call: ``layer_sparsity = schedule(step)``.

    ``total_steps`` is the number of optimizer steps of the run; ``final`` is reached at
    ``ramp_end`` and held to the end (the paper's selection window).
    """

    def __init__(
        self,
        final: float,
        total_steps: int,
        initial: float = 0.0,
        warmup_frac: float = 0.1,
        cooldown_frac: float = 0.3,
    ):
        if total_steps < 1:
            raise ValueError(f"total_steps={total_steps} must be >= 1")
        self.final, self.initial, self.total_steps = float(final), float(initial), int(total_steps)
        self.warmup_frac, self.cooldown_frac = float(warmup_frac), float(cooldown_frac)
        self.ramp_start, self.ramp_end = schedule_knots(self.total_steps, self.warmup_frac, self.cooldown_frac)

    def __call__(self, step: int) -> float:
        return cubic_sparsity(step, self.total_steps, self.initial, self.final, self.warmup_frac, self.cooldown_frac)

    def __repr__(self) -> str:
        return (
            f"CubicSchedule({self.initial:g} -> {self.final:g} over {self.total_steps} steps, "
            f"ramp {self.ramp_start}..{self.ramp_end})"
        )
