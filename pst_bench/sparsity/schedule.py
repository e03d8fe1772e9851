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
