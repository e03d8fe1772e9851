"""The rules every claim check shares (``report.claims``): which cells learned, and how an interval decides.

**A cell learned** when it has at least the claim's minimum number of runs, none of them from
uncommitted code (a cell with a ``git.dirty`` run is *refused*), none a constant predictor and each
one checked for it (a prediction summary on record), and every run

- beats the cell's constant-predictor baseline by ``LEARN_MARGIN`` points on the task's metric
  (values ×100; a regression task such as STS-B stores no baseline: a constant's Pearson is 0), and
- keeps at least ``DENSE_SHARE`` of the mean of the same model and task's Fine-tune cell, which must
  itself have learned by the margin rule.

**A verdict** comes from the Student-t interval (``report.stats``) of a mean of paired per-seed
differences (same seed, both methods): the interval lies on the claim's side of its boundary
(``holds``), wholly on the other side (``does not hold``), or spans it (``inconclusive``).

What every check reads: Table 2's cells of one model (``Table2View``), and the wording of an interval
(``interval_part``, ``own_intervals``, ``count_text``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .cells import CellLine, fmt_number, paired_differences, per_seed_values
from .labels import SPARSEGPT, WANDA, WANDA_ONESHOT
from .stats import Interval, mean_interval
from .tuning import UNEQUAL_FLAG

HOLDS, FAILS, INCONCLUSIVE, TOO_FEW = "holds", "does not hold", "inconclusive", "not enough runs"
LEARN_MARGIN = 2.0  # points: every run beats the constant predictor by at least this much
DENSE_SHARE = 0.6  # every run keeps at least this share of the Fine-tune cell's mean
REGRESSION_COLUMNS = ("STS-B",)  # no stored baseline: a constant prediction's Pearson/Spearman is 0

# The claims' own constants (``report.claims``; claims.md states them all).
MIN_SEEDS = 5  # claims 1-2 and 6-7: runs per cell, and seeds shared by every cell of the claim
MIN_SEEDS_ABLATION = 3  # claims 3-4: runs per variant, and seeds shared with the one it is compared with
TOLERANCE = 1.0  # points: "within 1 point"; also claim 4's least limit
PARAM_SHARE = 0.02  # "with ≤ 2% of MvP's trainable parameters"
CLAIM1_MIN_SPARSITY = 60.0  # percent: claim 1's sparsities (Figure 3's 60-80% and Table 2's 90%)
CLAIM1_CELLS, CLAIM1_TASKS = 3, 2  # (task, sparsity) cells and tasks claim 1 needs
CLAIM2_SPARSITY, CLAIM2_TASKS = "50%", 2
CLAIM4_MIN_PAIRS = 4  # rank pairs compared with the paper's on a task
CLAIM4_REFERENCE = (8, 8)  # the paper's (r1, r2)
CLAIM5_SPARSITY, CLAIM5_MIN_TRIOS = 90.0, 3  # same-seed trios of MaP, MvP and PST masks
DROP_ONE = ("PST[mag+ab]", "PST[mag+rc]", "PST[ab+rc]")
FULL = "PST[mag+ab+rc]"
SPARSE = ("MaP", "MvP", "PST")
# Claims 6-7, beyond the paper (``report.claims_baselines``): at claim 1's sparsities, on ≥ 2 cells.
BEYOND_CELLS = 2
TRAINING_TIME, ONE_SHOT = ("PST", "MvP"), (WANDA_ONESHOT, SPARSEGPT)
CLAIM6_PAIRS = (("PST", WANDA),)  # (first, second): first − second > 0
CLAIM7_PAIRS = tuple((trained, once) for trained in TRAINING_TIME for once in ONE_SHOT)

CLAIMS = {
    1: f"At ≥ {CLAIM1_MIN_SPARSITY:g}% sparsity, PST ≥ MaP and within {TOLERANCE:g} point of MvP, with ≤ "
    f"{100 * PARAM_SHARE:g}% of MvP's trainable parameters (Table 2)",
    2: f"At 50%, MaP is within {TOLERANCE:g} point of Fine-tune, and PST is below MaP (Table 2)",
    3: "Table 5: the full score |W| + AB + (R + C) beats each variant that drops a term",
    4: "Table 4: the rank grid r1 × r2 changes the result by little",
    5: "Figure 5: PST's masks are closer to MaP's than to MvP's",
    6: f"Beyond the paper: at ≥ {CLAIM1_MIN_SPARSITY:g}% sparsity, PST's learned score beats the free data-driven "
    f"score of gradual {WANDA} (Table 2)",
    7: f"Beyond the paper: at ≥ {CLAIM1_MIN_SPARSITY:g}% sparsity, training-time pruning ({', '.join(TRAINING_TIME)}) "
    f"beats prune-once-then-fine-tune ({', '.join(ONE_SHOT)}) at an equal fine-tuning budget (Table 2)",
}


@dataclass
class Verdict:
    """One claim checked for one model."""

    number: int
    model: str
    verdict: str
    summary: str  # the intervals behind the verdict and how many seeds and cells, one line
    details: list[str] = field(default_factory=list)
    # the Table 2 cells (column, sparsity, label) whose runs a decided verdict compared, at the paper's ranks:
    # the convergence caveat (``claims_text``) names those still gaining in their last epoch
    cells: list[tuple[str, str, str]] = field(default_factory=list)


def compared_cells(labels, keys) -> list[tuple[str, str, str]]:
    """(column, sparsity, label) of every label at every (sparsity, column) of ``keys``, in that order."""
    return [(column, sparsity, label) for sparsity, column in keys for label in labels]


def number(value) -> float | None:
    """A cells-table entry (a float, an int or a CSV string, '' when empty) as a finite float, else None."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        result = float(value)
    except (TypeError, ValueError):
        return None
    return result if math.isfinite(result) else None


def dirty_runs(cell: CellLine) -> int:
    """How many of the cell's runs come from uncommitted code."""
    return int(cell.dirty_runs or 0)


def baseline(cell: CellLine, column: str) -> float | None:
    """The constant predictor's value on the cell's dev set (×100), 0 for a regression task, None if unknown."""
    stored = number(cell.constant_baseline)
    if stored is None and column in REGRESSION_COLUMNS:
        return 0.0
    return stored


def seeds_text(seeds) -> str:
    """`1, 2, 3`."""
    return ", ".join(str(seed) for seed in sorted(seeds))


def learn_failure(cell: CellLine | None, column: str, min_runs: int, dense_mean: float | None = None) -> str | None:
    """Why the cell does not count (None when it learned). ``dense_mean`` is the Fine-tune cell's mean (the
    dense-share rule); None checks the cell without it (the Fine-tune cell itself)."""
    if cell is None:
        return "no run"
    runs = int(number(cell.runs) or 0)  # a held-out cell with no held-out run yet has none
    dirty = dirty_runs(cell)
    if dirty:
        return f"refused: {dirty}/{runs} run(s) from uncommitted code (git.dirty)"
    if runs < min_runs:
        return f"{runs} seed(s) < {min_runs}"
    if int(cell.constant_runs):
        return f"{cell.constant_runs}/{runs} run(s) predict a constant"
    if int(cell.unchecked_runs):
        return f"{cell.unchecked_runs}/{runs} run(s) without a prediction summary"
    floor = baseline(cell, column)
    if floor is None:
        return "no constant-predictor baseline on record: whether it learned is unknown"
    values = per_seed_values(cell)
    short = {seed: v for seed, v in values.items() if v - floor < LEARN_MARGIN}
    if short:
        shown = ", ".join(f"seed {seed}: {fmt_number(v)}" for seed, v in sorted(short.items()))
        return (
            f"did not learn: {len(short)}/{runs} run(s) not {LEARN_MARGIN:g} points above the constant "
            f"predictor's {fmt_number(floor)} ({shown})"
        )
    if dense_mean is None:
        return None
    least = DENSE_SHARE * dense_mean
    low = {seed: v for seed, v in values.items() if v < least}
    if low:
        shown = ", ".join(f"seed {seed}: {fmt_number(v)}" for seed, v in sorted(low.items()))
        return (
            f"below the dense share: {len(low)}/{runs} run(s) under {DENSE_SHARE:g} × Fine-tune's mean "
            f"{fmt_number(dense_mean)} = {fmt_number(least)} ({shown})"
        )
    return None


def dense_reference(cell: CellLine | None, column: str) -> tuple[float | None, str | None]:
    """(the Fine-tune cell's mean over its seeds, None) when it learned by the margin rule, else (None, why)."""
    why = learn_failure(cell, column, 1)
    if why is not None:
        return None, f"Fine-tune: {why}"
    values = list(per_seed_values(cell).values())
    return math.fsum(values) / len(values), None


def pooled_differences(pairs: list[tuple[CellLine, CellLine]]) -> dict[int, float]:
    """{seed: the mean over ``pairs`` of first − second}, on the seeds every pair has (both cells of each)."""
    diffs = [paired_differences(first, second) for first, second in pairs]
    if not diffs:
        return {}
    seeds = set.intersection(*(set(d) for d in diffs))
    return {seed: math.fsum(d[seed] for d in diffs) / len(diffs) for seed in sorted(seeds)}


def shared_seeds(cells: list[CellLine]) -> list[int]:
    """The seeds every cell has."""
    return sorted(set.intersection(*(set(per_seed_values(c)) for c in cells))) if cells else []


# ----------------------------------------------------------------------------- deciding on an interval


def at_least(interval: Interval, boundary: float) -> str:
    """A claim `mean ≥ boundary`: holds when the interval's low end is ≥ boundary, does not when its high end is
    below it."""
    if interval.low is None or interval.high is None:
        return INCONCLUSIVE
    if interval.low >= boundary:
        return HOLDS
    return FAILS if interval.high < boundary else INCONCLUSIVE


def above(interval: Interval, boundary: float) -> str:
    """A claim `mean > boundary`: holds when the whole interval is above it, does not when wholly below."""
    if interval.above(boundary):
        return HOLDS
    return FAILS if interval.below(boundary) else INCONCLUSIVE


def below(interval: Interval, boundary: float) -> str:
    """A claim `mean < boundary`: holds when the whole interval is below it, does not when wholly above."""
    if interval.below(boundary):
        return HOLDS
    return FAILS if interval.above(boundary) else INCONCLUSIVE


def within(interval: Interval, limit: float) -> str:
    """An equivalence claim `|mean| < limit`: holds when the interval lies inside (−limit, +limit), does not
    when it lies wholly outside it."""
    if interval.low is None or interval.high is None:
        return INCONCLUSIVE
    if -limit < interval.low and interval.high < limit:
        return HOLDS
    return FAILS if interval.high < -limit or interval.low > limit else INCONCLUSIVE


def combine(verdicts: list[str]) -> str:
    """Parts to one verdict: does not hold if any part does not, holds if all do, else inconclusive."""
    if any(v == FAILS for v in verdicts):
        return FAILS
    return HOLDS if verdicts and all(v == HOLDS for v in verdicts) else INCONCLUSIVE


@dataclass(frozen=True)
class Part:
    """One tested statement of a claim: its interval and what it says."""

    name: str  # e.g. "PST − MaP ≥ 0"
    interval: Interval
    verdict: str

    def text(self) -> str:
        return f"{self.name}: {self.interval.text(signed=True)} → {self.verdict}"


def spread_text(values: list[float]) -> str:
    """`max − min 1.20, SD 0.50` of a cell's seeds (SD only from two values)."""
    spread = max(values) - min(values)
    if len(values) < 2:
        return f"max − min {fmt_number(spread)}"
    mean = math.fsum(values) / len(values)
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1))
    return f"max − min {fmt_number(spread)}, SD {fmt_number(sd)}"


# ----------------------------------------------------------------------------- Table 2's cells, as a claim reads them


def pct(sparsity: str) -> float:
    """`90%` -> 90.0."""
    return float(str(sparsity).rstrip("%"))


class Table2View:
    """Table 2's cells of one model by (method label, sparsity, column)."""

    def __init__(self, cells: list[CellLine], model: str):
        self.by_key = {(c.method, c.sparsity, c.column): c for c in cells if c.model == model}

    def get(self, label: str, sparsity: str, column: str) -> CellLine | None:
        return self.by_key.get((label, sparsity, column))

    def dense(self, column: str) -> tuple[float | None, str | None]:
        """The Fine-tune cell's mean on a task (the dense-share reference), or why there is none."""
        return dense_reference(self.get("Fine-tune", "0%", column), column)

    def problems(self, sparsity: str, column: str, labels, min_runs: int) -> list[str]:
        """Why the (task, sparsity) cell of the claim does not count: empty when every label's cell learned."""
        dense, why = self.dense(column)
        found = [why] if why else []
        for label in labels:
            reason = learn_failure(self.get(label, sparsity, column), column, min_runs, dense)
            if reason:
                found.append(f"{label}: {reason}")
        return found

    def paired(self, first: str, second: str, keys: list[tuple[str, str]]) -> list[tuple[CellLine, CellLine]]:
        """(first's cell, second's cell) for every (sparsity of first, sparsity of second, column) key."""
        return [(self.get(first, a, column), self.get(second, b, column)) for a, b, column in keys]


def count_text(cells: int, tasks: int, seeds: list[int]) -> str:
    return f"{cells} cell(s) over {tasks} task(s), {len(seeds)} shared seed(s) ({seeds_text(seeds) or 'none'})"


def interval_part(name: str, diffs: dict[int, float], seeds: list[int], decide) -> Part:
    """The Part that ``decide`` (e.g. ``above(·, 0)``) makes of the interval of ``diffs`` on ``seeds``."""
    interval = mean_interval(diffs[seed] for seed in seeds)
    return Part(name, interval, decide(interval))


def own_intervals(title: str, pairs: list[tuple[str, CellLine, CellLine]]) -> str:
    """`SST-2 90%: PST − MaP +1.00 [+0.50, +1.50] (n = 5); ...`: one cell's paired intervals on its own seeds."""
    shown = [f"{name} {mean_interval(paired_differences(a, b).values()).text(signed=True)}" for name, a, b in pairs]
    return f"{title}: " + "; ".join(shown) + " (its own seeds)"


def tuning_line(view: Table2View, sparsity: str, column: str, labels) -> str:
    """`SST-2 90% tuning budget: PST 3, Wanda 3 settings`; flagged as the tables
    flag it when unequal (every claim's details carry it for each counted cell)."""
    counts = {label: int(view.get(label, sparsity, column).settings) for label in labels}
    line = f"{column} {sparsity} tuning budget: " + ", ".join(f"{label} {n}" for label, n in counts.items())
    if len(set(counts.values())) == 1:
        return line + " settings"
    return (
        f"{UNEQUAL_FLAG} {line} settings: the methods were not tuned alike, so a difference may be the tuning, "
        "not the method"
    )
